"""Conv1d/2d/3d and ConvTranspose1d/2d/3d against their torch.nn twins: constructor,
parameters, default init, state_dict, repr, padding modes, output_size, device/dtype, the
connection_table extension, and the no-native-ops rule."""
from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import torchconv_impl
from support import DEVICE, assert_close, grads, no_native_ops
from torchconv_impl import nn as ours_nn

CONV = ["Conv1d", "Conv2d", "Conv3d"]
CONV_TRANSPOSE = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


def _nd(name):
    return int(name[-2])


def _pair(name, *args, **kwargs):
    """(ours, torch's) module ``name``, constructed from the same seed, on DEVICE."""
    torch.manual_seed(0)
    ours = getattr(ours_nn, name)(*args, device=DEVICE, **kwargs)
    torch.manual_seed(0)
    theirs = getattr(nn, name)(*args, device=DEVICE, **kwargs)
    return ours, theirs


# Constructor arguments per class: defaults, and every option away from its default.
CONFIGS = [
    *[pytest.param(name, (3, 4, 3), {}, id=f"{name}-defaults") for name in CONV + CONV_TRANSPOSE],
    *[
        pytest.param(name, (4, 6, (3, 2, 2)[:_nd(name)]),
                     dict(stride=2, padding=1, dilation=2, groups=2, bias=False), id=f"{name}-options")
        for name in CONV
    ],
    *[
        pytest.param(name, (4, 6, 3), dict(padding="same", padding_mode=mode), id=f"{name}-same-{mode}")
        for name, mode in zip(CONV, ("reflect", "replicate", "circular"))
    ],
    *[
        pytest.param(name, (4, 6, (2, 3, 2)[:_nd(name)]),
                     dict(stride=2, padding=1, output_padding=1, groups=2, bias=False, dilation=2), id=f"{name}-options")
        for name in CONV_TRANSPOSE
    ],
]


def _input_for(module, batch=2, size=6):
    return torch.randn(batch, module.in_channels, *(size,) * len(module.kernel_size), device=DEVICE)


@pytest.mark.parametrize("name", CONV + CONV_TRANSPOSE)
def test_subclasses_torch_twin_with_same_constructor_signature(name):
    ours, theirs = getattr(ours_nn, name), getattr(nn, name)
    assert issubclass(ours, theirs)

    def shape_of(parameters):  # names, kinds and defaults; annotations are torch's business
        return [(p.name, p.kind, p.default) for p in parameters]

    ours_parameters = list(inspect.signature(ours).parameters.values())
    theirs_parameters = list(inspect.signature(theirs).parameters.values())
    if name in CONV:  # our extensions: keyword-only arguments after torch's
        extensions = [ours_parameters.pop() for _ in range(2)][::-1]
        assert shape_of(extensions) == [(n, inspect.Parameter.KEYWORD_ONLY, None) for n in ("connection_table", "activation")]
    assert shape_of(ours_parameters) == shape_of(theirs_parameters)


@pytest.mark.parametrize("name,args,kwargs", CONFIGS)
def test_parameters_init_and_repr_match_torch(name, args, kwargs):
    ours, theirs = _pair(name, *args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    for (_, mine), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert torch.equal(mine, reference)


@pytest.mark.parametrize("name,args,kwargs", CONFIGS)
def test_state_dict_round_trip_and_forward(backend, name, args, kwargs):
    ours, theirs = _pair(name, *args, **kwargs)
    torch.manual_seed(1)
    source = getattr(nn, name)(*args, device=DEVICE, **kwargs)
    ours.load_state_dict(source.state_dict())  # torch → ours
    theirs.load_state_dict(ours.state_dict())  # ours → torch
    assert ours.state_dict().keys() == source.state_dict().keys()
    for key, value in source.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value)
        assert torch.equal(theirs.state_dict()[key], value)
    input = _input_for(ours).requires_grad_()
    actual, expected = ours(input), theirs(input)
    assert_close(actual, expected)
    grad_output = torch.randn_like(expected)
    parameters = [input, *ours.parameters()]
    for got, want in zip(grads(actual, parameters, grad_output), grads(expected, [input, *theirs.parameters()], grad_output)):
        assert_close(got, want)


@pytest.mark.parametrize("padding", [pytest.param(2, id="padding2"), pytest.param((1, 2, 0), id="padding-tuple")])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("name", CONV)
def test_padding_modes(backend, name, mode, padding):
    nd = _nd(name)
    padding = padding if isinstance(padding, int) else padding[:nd]
    ours, theirs = _pair(name, 2, 3, (3, 2, 2)[:nd], stride=2, padding=padding, padding_mode=mode, dtype=torch.float64)
    input = torch.randn(2, 2, *(5, 4, 3)[:nd], dtype=torch.float64, device=DEVICE, requires_grad=True)
    actual, expected = ours(input), theirs(input)
    assert_close(actual, expected)
    grad_output = torch.randn_like(expected)
    for got, want in zip(grads(actual, [input, ours.weight, ours.bias], grad_output),
                         grads(expected, [input, theirs.weight, theirs.bias], grad_output)):
        assert_close(got, want)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("name", CONV_TRANSPOSE)
def test_conv_transpose_output_size(backend, name, batched):
    nd = _nd(name)
    ours, theirs = _pair(name, 2, 3, 3, stride=(3, 2, 2)[:nd], padding=1, dtype=torch.float64)
    shape = (2, 2, *(4, 3, 2)[:nd]) if batched else (2, *(4, 3, 2)[:nd])
    input = torch.randn(shape, dtype=torch.float64, device=DEVICE, requires_grad=True)
    largest = [s + 1 for s in theirs(input).shape[-nd:]]  # every dimension one above the default
    for output_size in (largest, [*input.shape[:-nd - 1], 3, *largest]):
        actual, expected = ours(input, output_size=output_size), theirs(input, output_size=output_size)
        assert list(actual.shape[-nd:]) == largest
        assert_close(actual, expected)
        grad_output = torch.randn_like(expected)
        (input_grad,), (expected_input_grad,) = grads(actual, [input], grad_output), grads(expected, [input], grad_output)
        assert_close(input_grad, expected_input_grad)


@pytest.mark.parametrize("name", ["Conv2d", "ConvTranspose3d"])
def test_device_and_dtype_kwargs(name):
    module = getattr(ours_nn, name)(2, 4, 2, device="meta", dtype=torch.float64)
    assert {(p.device.type, p.dtype) for p in module.parameters()} == {("meta", torch.float64)}
    module = getattr(ours_nn, name)(2, 4, 2, device=DEVICE, dtype=torch.float64)
    assert {(p.device, p.dtype) for p in module.parameters()} == {(DEVICE, torch.float64)}
    output = module(torch.randn(1, 2, *(3,) * _nd(name), dtype=torch.float64, device=DEVICE))
    assert output.dtype == torch.float64 and output.device == DEVICE


# LeNet-5's C3-style table: output map o sees input map c only where True.
TABLE = [[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]]


@pytest.mark.parametrize("name", CONV)
def test_connection_table(backend, name):
    nd = _nd(name)
    mask = torch.tensor(TABLE, dtype=torch.bool, device=DEVICE).view(4, 3, *(1,) * nd)
    theirs = _pair(name, 3, 4, 2)[1]
    torch.manual_seed(0)
    ours = getattr(ours_nn, name)(3, 4, 2, device=DEVICE, connection_table=TABLE)
    # Same init as torch's, with the masked weights zeroed.
    assert torch.equal(ours.weight, theirs.weight * mask)
    assert "connection_table=True" in repr(ours)

    # The forward uses weight·mask even where the weight is not zero (e.g. loaded from elsewhere).
    with torch.no_grad():
        ours.weight.copy_(torch.randn_like(ours.weight))
    input = torch.randn(2, 3, *(4,) * nd, device=DEVICE, requires_grad=True)
    weight, bias = (p.detach().requires_grad_() for p in (ours.weight, ours.bias))
    output = ours(input)
    expected = getattr(nn.functional, f"conv{nd}d")(input, weight * mask, bias)
    assert_close(output, expected)
    # Every gradient is torch's through weight·mask, so the masked weights' is exactly zero.
    delta = torch.randn_like(expected)
    actual_grads = grads(output, [input, ours.weight, ours.bias], delta)
    for what, got, want in zip(("input", "weight", "bias"), actual_grads, grads(expected, [input, weight, bias], delta)):
        assert_close(got, want, msg=what)
    assert torch.count_nonzero(actual_grads[1][~mask.expand_as(ours.weight)]) == 0

    # A buffer in the state_dict, restored on load.
    state = ours.state_dict()
    assert torch.equal(state["connection_table"], mask.view(4, 3))
    restored = getattr(ours_nn, name)(3, 4, 2, device=DEVICE, connection_table=torch.ones(4, 3, dtype=torch.bool))
    restored.load_state_dict(state)
    assert torch.equal(restored.connection_table, ours.connection_table)
    assert_close(restored(input), output)


@pytest.mark.parametrize("shape", [(3, 4), (4, 3, 1), (4,)], ids=str)
def test_connection_table_bad_shape(shape):
    with pytest.raises(torchconv_impl.ArgumentError, match=r"connection_table of shape \(4, 3\)"):
        ours_nn.Conv2d(3, 4, 2, connection_table=torch.ones(shape, dtype=torch.bool))


@pytest.mark.parametrize("name", CONV)
def test_fused_relu_activation(backend, name):
    """Conv(activation="relu") = torch's conv followed by ReLU: output and every gradient;
    the parameters and the state_dict are the plain layer's."""
    nd = _nd(name)
    theirs = _pair(name, 3, 4, 2, padding=1, padding_mode="circular")[1]
    with torch.no_grad():
        theirs.bias[0] = 0.0
    ours = getattr(ours_nn, name)(3, 4, 2, padding=1, padding_mode="circular", device=DEVICE, activation="relu")
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert "activation='relu'" in repr(ours)
    input = torch.randn(2, 3, *(5,) * nd, device=DEVICE)
    input[0] = 0.0  # with bias[0] = 0: sample 0's channel 0 sits exactly at ReLU's kink
    input = input.requires_grad_()
    output, expected = ours(input), torch.relu(theirs(input))
    assert not expected[0, 0].any() and not theirs(input)[0, 0].any()
    assert_close(output, expected)
    delta = torch.randn_like(expected)
    for got, want in zip(grads(output, [input, ours.weight, ours.bias], delta), grads(expected, [input, theirs.weight, theirs.bias], delta)):
        assert_close(got, want)
    with pytest.raises(torchconv_impl.ArgumentError, match="activation to be None or 'relu'"):
        getattr(ours_nn, name)(3, 4, 2, activation="tanh")


@pytest.mark.parametrize("name", CONV + CONV_TRANSPOSE)
def test_module_no_native_ops(backend, name):
    module = getattr(ours_nn, name)(4, 6, 3, stride=2, padding=1, groups=2, device=DEVICE)
    input = _input_for(module).requires_grad_()
    with no_native_ops():
        module(input).sum().backward()
    assert input.grad is not None and module.weight.grad is not None and module.bias.grad is not None
