"""What test_conv.py and test_conv_transpose.py share: pytest ids that spell a case, PyTorch's
OpInfo samples as cases, tensors in chosen memory layouts, and the checks both files run over
their own ops (conv1d/2d/3d there, conv_transpose1d/2d/3d here), each against torch.nn.functional
through support.check_against_torch."""
from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as TF

import torchconv_impl
import torchconv_impl.functional as F
from support import DEVICE, check_against_torch, module_pair, no_native_ops, record_calls, torch_conv_follows_memory_format
from torchconv_impl import backends
from torchconv_impl import nn as ours_nn


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def case(op, input_shape, weight_shape, bias=True, **kwargs):
    """One pytest.param whose id spells the case: op-input-weight-kwargs-bias."""
    parts = [op, "x".join(map(str, input_shape)), "w" + "x".join(map(str, weight_shape))]
    parts += [f"{k}={_text(v)}" for k, v in kwargs.items()]
    parts.append("bias" if bias else "nobias")
    return pytest.param(op, input_shape, weight_shape, bias, kwargs, id="-".join(parts))


def opinfo_cases(op, samples):
    """PyTorch's OpInfo sample inputs for ``op`` (common_methods_invocations.sample_inputs_<op>), each
    batched and unbatched, as torch yields them."""
    params = []
    for input_shape, weight_shape, bias, kwargs in samples:
        for shape in (input_shape, input_shape[1:]):
            params.append(case(op, shape, weight_shape, bias is not None, **kwargs))
    return params


def random(shape, dtype):
    return torch.randn(shape, dtype=dtype, device=DEVICE)


def bias_size(op, weight_shape, kwargs):
    """out_channels: weight.shape[0] for conv, weight.shape[1]·groups for conv_transpose."""
    return weight_shape[1] * kwargs.get("groups", 1) if "transpose" in op else weight_shape[0]


def channels_last(t):
    return t.contiguous(memory_format=torch.channels_last if t.dim() == 4 else torch.channels_last_3d)


def stored(layout, shape, dtype):
    """A random tensor of ``shape`` in a non-contiguous ``layout``."""
    if layout == "transposed":  # first two dimensions swapped in memory
        return random((shape[1], shape[0], *shape[2:]), dtype).transpose(0, 1)
    if layout == "sliced":  # every other element of a larger tensor, in dims 1 and -1
        return random((shape[0], 2 * shape[1], *shape[2:-1], 2 * shape[-1]), dtype)[:, ::2, ..., 1::2]
    if layout == "expanded":  # stride 0 along the batch
        return random((1, *shape[1:]), dtype).expand(shape)
    return channels_last(random(shape, dtype))


def check_op(op, input, weight, bias=None, grad_output=None, layout=True, **kwargs):
    """Ours vs torch.nn.functional's ``op`` on the same tensors (same strides), all three
    differentiated: support.check_against_torch, whose Comparison it returns."""
    leaves = [None if t is None else t.detach().requires_grad_() for t in (input, weight, bias)]
    return check_against_torch(getattr(F, op), getattr(TF, op), *leaves, grad_output=grad_output, layout=layout, msg=op, **kwargs)


def check_case(op, input_shape, weight_shape, bias, kwargs, dtype):
    bias = random(bias_size(op, weight_shape, kwargs), dtype) if bias else None
    check_op(op, random(input_shape, dtype), random(weight_shape, dtype), bias, **kwargs)


LAYOUTS = [
    ("input", "transposed"), ("input", "sliced"), ("input", "expanded"), ("input", "channels_last"),
    ("grad_output", "transposed"), ("grad_output", "expanded"),
]


def check_non_contiguous_layout(op, geometry, tensor, layout):
    """``tensor`` (the input or δ) stored in ``layout``, the others contiguous: torch's results."""
    if layout == "channels_last" and op.endswith("1d"):
        pytest.skip("no channels_last format for 3-D tensors")
    input_shape, weight_shape, kwargs = geometry
    dtype = torch.float64
    input = stored(layout, input_shape, dtype) if tensor == "input" else random(input_shape, dtype)
    weight, bias = random(weight_shape, dtype), random(bias_size(op, weight_shape, kwargs), dtype)
    grad_output = None
    if tensor == "grad_output":
        grad_output = stored(layout, getattr(TF, op)(input, weight, bias, **kwargs).shape, dtype)
    assert not (input if grad_output is None else grad_output).is_contiguous()
    check_op(op, input, weight, bias, grad_output, layout=torch_conv_follows_memory_format(input), **kwargs)


def check_output_memory_format(op, geometry, stored_channels_last):
    """Input, weight or both channels_last: the output and the input gradient are channels_last
    as torch's (the weight gradient's layout is not compared)."""
    # float32: for float64 3-d convolutions torch's CPU fallback (slow_conv3d) ignores memory
    # formats, while its mkldnn/cuDNN kernels (float32) follow them, as we do.
    input_shape, weight_shape, kwargs = geometry
    input, weight = random(input_shape, torch.float32), random(weight_shape, torch.float32)
    if stored_channels_last in ("input", "both"):
        input = channels_last(input)
    if stored_channels_last in ("weight", "both"):
        weight = channels_last(weight)
    compared = check_op(op, input, weight, **kwargs)
    memory_format = {4: torch.channels_last, 5: torch.channels_last_3d}[input.dim()]
    for actual, expected in ((compared.actual[0], compared.expected[0]), (compared.actual_grads[0], compared.expected_grads[0])):
        assert expected.is_contiguous(memory_format=memory_format) and not expected.is_contiguous()
        assert actual.is_contiguous(memory_format=memory_format) and not actual.is_contiguous()


def check_gradcheck_and_gradgradcheck(op, input_shape, weight_shape, kwargs):
    inputs = tuple(
        random(shape, torch.float64).requires_grad_()
        for shape in (input_shape, weight_shape, (bias_size(op, weight_shape, kwargs),))
    )

    def function(input, weight, bias):
        return getattr(F, op)(input, weight, bias, **kwargs)

    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)


def _chunks_of(samples):
    return lambda n, per_sample_bytes, weight_bytes=0: [slice(start, min(start + samples, n)) for start in range(0, max(n, 1), samples)]


def check_batch_chunks(op, geometry, monkeypatch):
    """The CPU engine builds im2col a few samples at a time: with chunks of one sample,
    and of two out of five (a short last chunk), outputs and all gradients are still torch's,
    with one column per output position and (unit stride) with plane-span columns."""
    from torchconv_impl.backends.cpu import conv as cpu_conv

    input_shape, weight_shape, kwargs = geometry
    input_shape = (5, *input_shape[1:])
    chosen = record_calls(monkeypatch, cpu_conv, "_choose_columns")
    with backends.use_backend("cpu"):
        for samples in (1, 2):
            monkeypatch.setattr(cpu_conv, "_batch_chunks", _chunks_of(samples))
            bias = random(bias_size(op, weight_shape, kwargs), torch.float64)
            check_op(op, random(input_shape, torch.float64), random(weight_shape, torch.float64), bias, **kwargs)
        inputs = [random(shape, torch.float64).requires_grad_() for shape in ((3, *input_shape[1:]), weight_shape)]
        assert torch.autograd.gradgradcheck(lambda x, w: getattr(F, op)(x, w, **kwargs), inputs)
    assert any(columns.has_gaps() for _, _, columns in chosen) == (kwargs.get("stride", 1) == 1)


def check_no_native_ops(op, geometry):
    """Forward, backward and double backward dispatch no aten conv op."""
    input_shape, weight_shape, kwargs = geometry
    input, weight, bias = (
        random(shape, torch.float64).requires_grad_()
        for shape in (input_shape, weight_shape, (bias_size(op, weight_shape, kwargs),))
    )
    with no_native_ops():
        output = getattr(F, op)(input, weight, bias, **kwargs)
        first = torch.autograd.grad(output, (input, weight, bias), torch.randn_like(output), create_graph=True)
        second = torch.autograd.grad(sum((g * g).sum() for g in first), (input, weight, bias), allow_unused=True)
    assert all(g is not None for g in second[:2])


def check_output_takes_inplace_ops(op):
    """torchvision's ReLU(inplace=True) after a conv, at batch 1 where no layout copy happens."""
    x, w = random((1, 3, 5, 5), torch.float64).requires_grad_(), random((3, 3, 3, 3), torch.float64).requires_grad_()
    check_against_torch(lambda *args: getattr(F, op)(*args).relu_(), lambda *args: getattr(TF, op)(*args).relu_(), x, w, msg=op)


def check_non_finite_values(op, special):
    """The CPU engine computes unit-stride convolutions over plane-span columns, whose
    gaps carry zeros; 0·inf must not leak into the results. An inf at a row's end sits where
    only gap columns reach it for most kernel offsets (the dilation spreads each window over
    rows three apart)."""
    x = random((2, 2, 8, 9), torch.float64)
    w = random((2, 2, 2, 3), torch.float64)
    kwargs = dict(dilation=(3, 1)) if op == "conv2d" else dict(dilation=(3, 1), stride=1)
    if special == "inf input":
        x[0, 1, 3, -1] = float("inf")
    if special == "nan weight":
        w[1, 0, 1, 2] = float("nan")
    grad_output = torch.randn_like(getattr(TF, op)(x, w, **kwargs))
    if special == "inf grad_output":
        grad_output[1, 0, 2, -1] = float("inf")
    check_op(op, x, w, None, grad_output, **kwargs)


def zeros(*shape, dtype=torch.float32, device=DEVICE):
    return torch.zeros(shape, dtype=dtype, device=device)


def error(id, op, args, match, torch_raises=RuntimeError, **kwargs):
    """``op(*args, **kwargs)`` must raise ArgumentError matching ``match``; torch's op must raise
    ``torch_raises`` (None: torch accepts the call, or its verdict depends on the device)."""
    return pytest.param(op, args, kwargs, match, torch_raises, id=id)


def check_rejected_with_argument_error(op, args, kwargs, match, torch_raises):
    """An ArgumentError (a ValueError and a RuntimeError) whose message names the argument,
    raised before any tensor op runs — and, where torch rejects the same call, torch raises too."""
    with no_native_ops() as recorded, pytest.raises(torchconv_impl.ArgumentError, match=match) as raised:
        getattr(F, op)(*args, **kwargs)
    assert isinstance(raised.value, RuntimeError) and isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(f"{op}: ")
    assert recorded.ops == [], "arguments must be checked before any tensor op runs"
    if torch_raises is not None:
        with pytest.raises(torch_raises):
            getattr(TF, op)(*args, **kwargs)


# Modules: Conv1d/2d/3d and ConvTranspose1d/2d/3d against their torch.nn twins.


def nd(name):
    return int(name[-2])


def pair(name, *args, **kwargs):
    """(ours, torch's) module ``name`` on DEVICE: support.module_pair."""
    return module_pair(getattr(ours_nn, name), getattr(torch.nn, name), *args, device=DEVICE, **kwargs)


def input_for(module, batch=2, size=6):
    return torch.randn(batch, module.in_channels, *(size,) * len(module.kernel_size), device=DEVICE)


def check_subclasses_torch_twin(name, extensions=()):
    """Ours subclasses torch's class, with its constructor signature followed by ``extensions``
    (keyword-only, default None)."""
    ours, theirs = getattr(ours_nn, name), getattr(torch.nn, name)
    assert issubclass(ours, theirs)

    def shape_of(parameters):  # names, kinds and defaults; annotations are torch's business
        return [(p.name, p.kind, p.default) for p in parameters]

    ours_parameters = list(inspect.signature(ours).parameters.values())
    theirs_parameters = list(inspect.signature(theirs).parameters.values())
    assert shape_of(ours_parameters[len(theirs_parameters):]) == [(n, inspect.Parameter.KEYWORD_ONLY, None) for n in extensions]
    assert shape_of(ours_parameters[:len(theirs_parameters)]) == shape_of(theirs_parameters)


def check_parameters_init_and_repr(name, args, kwargs):
    ours, theirs = pair(name, *args, **kwargs)  # same repr and initial state_dict
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]


def check_state_dict_round_trip_and_forward(name, args, kwargs):
    ours, theirs = pair(name, *args, **kwargs)
    torch.manual_seed(1)
    source = getattr(torch.nn, name)(*args, device=DEVICE, **kwargs)
    ours.load_state_dict(source.state_dict())  # torch → ours
    theirs.load_state_dict(ours.state_dict())  # ours → torch
    assert ours.state_dict().keys() == source.state_dict().keys()
    for key, value in source.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value)
        assert torch.equal(theirs.state_dict()[key], value)
    check_against_torch(ours, theirs, input_for(ours).requires_grad_(), msg=name)


def check_device_and_dtype_kwargs(name):
    module = getattr(ours_nn, name)(2, 4, 2, device="meta", dtype=torch.float64)
    assert {(p.device.type, p.dtype) for p in module.parameters()} == {("meta", torch.float64)}
    module = getattr(ours_nn, name)(2, 4, 2, device=DEVICE, dtype=torch.float64)
    assert {(p.device, p.dtype) for p in module.parameters()} == {(DEVICE, torch.float64)}
    output = module(torch.randn(1, 2, *(3,) * nd(name), dtype=torch.float64, device=DEVICE))
    assert output.dtype == torch.float64 and output.device == DEVICE


def check_module_no_native_ops(name):
    module = getattr(ours_nn, name)(4, 6, 3, stride=2, padding=1, groups=2, device=DEVICE)
    input = input_for(module).requires_grad_()
    with no_native_ops():
        module(input).sum().backward()
    assert input.grad is not None and module.weight.grad is not None and module.bias.grad is not None
