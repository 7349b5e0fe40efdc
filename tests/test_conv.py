"""conv1d/2d/3d and conv_transpose1d/2d/3d against torch.nn.functional: the output and all
three gradients (input, weight, bias) over a curated list of geometries, PyTorch's own OpInfo
samples, memory layouts, float64 gradcheck/gradgradcheck, and the no-native-ops rule."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import torchconv_impl.functional as F
from support import DEVICE, assert_close, grads, no_native_ops, record_calls
from torchconv_impl import backends
from torchconv_impl._geometry import ConvGeometry
from torchconv_impl.autograd import ConvolutionWeightGrad

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


# Every option appears several times: dims 1/2/3, stride (incl. not dividing the input), int and
# tuple padding, 'same' (incl. even kernels with dilation) and 'valid', dilation, groups
# (grouped, depthwise groups=C, depth multiplier out=2·C), bias on/off, non-square kernels and
# inputs, output_padding, batch 0/1/N and unbatched inputs.
CASES = [
    # conv1d
    case("conv1d", (2, 3, 9), (4, 3, 3)),
    case("conv1d", (2, 4, 11), (6, 2, 3), False, stride=3, padding=1, groups=2),
    case("conv1d", (1, 3, 7), (4, 3, 4), padding="same", dilation=3),
    case("conv1d", (1, 3, 8), (2, 3, 2), False, padding="same"),
    case("conv1d", (2, 3, 8), (2, 3, 3), padding="valid", stride=2),
    case("conv1d", (2, 4, 9), (4, 1, 3), padding=(2,), dilation=2, groups=4),
    case("conv1d", (3, 9), (2, 3, 3), stride=2, padding=1),
    case("conv1d", (0, 3, 8), (2, 3, 3), padding=1),
    # conv2d
    case("conv2d", (2, 3, 6, 5), (4, 3, 3, 2), stride=(2, 1), padding=(1, 0)),
    case("conv2d", (1, 4, 7, 6), (8, 1, 3, 3), padding=1, groups=4),
    case("conv2d", (2, 4, 6, 6), (4, 1, 3, 3), False, stride=2, groups=4),
    case("conv2d", (2, 4, 7, 8), (6, 2, 2, 3), stride=(3, 2), padding=(2, 1), dilation=(2, 1), groups=2),
    case("conv2d", (1, 2, 6, 7), (3, 2, 2, 4), padding="same", dilation=(3, 2)),
    case("conv2d", (1, 2, 5, 6), (3, 2, 4, 2), False, padding="same"),
    case("conv2d", (2, 3, 5, 5), (2, 3, 3, 3), padding="valid", dilation=2),
    case("conv2d", (3, 5, 6), (6, 1, 3, 3), padding="same", groups=3),
    case("conv2d", (1, 3, 4, 5), (2, 3, 4, 5), False),
    case("conv2d", (2, 3, 5, 5), (2, 3, 1, 1), stride=2),
    case("conv2d", (0, 2, 5, 5), (3, 2, 3, 3)),
    # conv3d (tiny)
    case("conv3d", (2, 2, 4, 3, 5), (3, 2, 2, 2, 3), stride=(1, 2, 2), padding=(1, 0, 1)),
    case("conv3d", (1, 4, 3, 4, 4), (4, 2, 1, 2, 3), padding="same", dilation=(1, 2, 1), groups=2),
    case("conv3d", (1, 3, 4, 4, 3), (6, 1, 3, 3, 2), False, stride=2, groups=3),
    case("conv3d", (2, 4, 4, 3), (2, 2, 2, 2, 2), padding="valid", dilation=(2, 1, 1)),
    case("conv3d", (0, 2, 3, 3, 3), (2, 2, 2, 2, 2)),
    # conv_transpose1d
    case("conv_transpose1d", (2, 3, 5), (3, 4, 3)),
    case("conv_transpose1d", (2, 4, 4), (4, 3, 3), stride=2, padding=1, output_padding=1, groups=2),
    case("conv_transpose1d", (1, 2, 5), (2, 2, 4), False, stride=3, output_padding=2, dilation=2),
    case("conv_transpose1d", (2, 4, 5), (4, 1, 3), padding=2, groups=4, dilation=3),
    case("conv_transpose1d", (3, 6), (3, 2, 2), stride=2, padding=(1,)),
    case("conv_transpose1d", (2, 4, 5), (4, 2, 3), False, output_padding=1, groups=2, dilation=2),
    case("conv_transpose1d", (0, 2, 4), (2, 3, 3), stride=2),
    # conv_transpose2d
    case("conv_transpose2d", (2, 3, 4, 3), (3, 2, 3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0)),
    case("conv_transpose2d", (1, 4, 3, 3), (4, 2, 3, 3), False, stride=2, groups=4),
    case("conv_transpose2d", (2, 4, 3, 4), (4, 1, 2, 3), padding=1, dilation=(2, 1), groups=4),
    case("conv_transpose2d", (1, 2, 4, 3), (2, 3, 4, 2), stride=(3, 2), output_padding=(2, 1), dilation=(1, 2)),
    case("conv_transpose2d", (2, 3, 3), (2, 2, 3, 3), stride=2, padding=1, output_padding=1),
    case("conv_transpose2d", (0, 2, 3, 3), (2, 2, 3, 3)),
    # conv_transpose3d (tiny)
    case("conv_transpose3d", (1, 2, 2, 3, 2), (2, 3, 2, 2, 3), stride=2, padding=(0, 1, 1), output_padding=(1, 0, 1)),
    case("conv_transpose3d", (2, 4, 2, 2, 3), (4, 1, 3, 2, 2), False, dilation=(1, 2, 1), groups=2),
    case("conv_transpose3d", (2, 3, 2, 2), (2, 2, 2, 2, 2), stride=(1, 2, 1), padding=(0, 1, 0)),
    case("conv_transpose3d", (0, 2, 2, 2, 2), (2, 2, 2, 2, 2)),
]


def _opinfo(op, samples):
    """PyTorch's OpInfo sample inputs for ``op`` (common_methods_invocations.sample_inputs_<op>), each
    batched and unbatched, as torch yields them."""
    params = []
    for input_shape, weight_shape, bias, kwargs in samples:
        for shape in (input_shape, input_shape[1:]):
            params.append(case(op, shape, weight_shape, bias is not None, **kwargs))
    return params


OPINFO_CASES = [
    *_opinfo("conv1d", [
        ((1, 3, 4), (3, 3, 3), (3,), {"stride": (2,), "padding": 2, "groups": 1}),
        ((2, 4, 8), (2, 2, 3), (2,), {"stride": 3, "padding": 1, "groups": 2, "dilation": 2}),
        ((1, 4, 5), (1, 4, 3), None, {"stride": (2,), "padding": "valid"}),
        ((2, 2, 4), (2, 1, 4), (2,), {"stride": (1,), "padding": "same", "groups": 2, "dilation": (2,)}),
        ((1, 4, 5), (3, 4, 3), None, {}),
    ]),
    *_opinfo("conv2d", [
        ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "groups": 1}),
        ((2, 4, 8, 8), (2, 2, 3, 3), (2,), {"stride": (3, 2), "padding": (2, 1), "groups": 2, "dilation": (4, 4)}),
        ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 2, "padding": 1, "groups": 1, "dilation": (2, 3)}),
        ((1, 2, 4, 3), (4, 2, 3, 4), None, {"stride": 2, "padding": 1, "groups": 1}),
        ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 2, "padding": "valid"}),
        ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 1, "padding": "same", "dilation": 3}),
        ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4}),
        ((2, 4, 6, 6), (8, 1, 3, 3), (8,), {"groups": 4}),
        ((2, 4, 6, 6), (8, 1, 3, 3), None, {"groups": 4}),
        ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "stride": (3, 2)}),
        ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "padding": (1, 1)}),
        ((2, 4, 5, 5), (4, 1, 2, 2), (4,), {"groups": 4, "dilation": (2, 2)}),
        ((2, 4, 6, 5), (6, 2, 3, 2), (6,), {"groups": 2}),
        ((1, 4, 5, 5), (3, 4, 3, 3), None, {}),
    ]),
    *_opinfo("conv3d", [
        ((1, 1, 4, 4, 4), (1, 1, 1, 1, 1), (1,), {"padding": "same"}),
        ((1, 1, 4, 4, 4), (1, 1, 4, 4, 4), (1,), {"stride": (2, 2, 2)}),
        ((1, 1, 5, 5, 5), (1, 1, 3, 3, 3), (1,), {"dilation": 2}),
        ((1, 1, 1, 1, 10), (1, 1, 1, 1, 4), None, {"padding": "valid"}),
        ((1, 1, 10, 11, 12), (1, 1, 1, 2, 5), None, {"padding": "same"}),
        ((1, 1, 10, 11, 12), (1, 1, 1, 2, 5), None, {"padding": "same", "dilation": 2}),
        ((1, 1, 10, 11, 12), (1, 1, 4, 4, 4), None, {"padding": "same", "dilation": 3}),
        ((3, 9, 3, 1, 9), (3, 3, 3, 1, 9), (3,), {"groups": 3}),
        ((3, 9, 3, 1, 9), (3, 3, 3, 1, 9), (3,), {"stride": (2, 2, 2), "dilation": 1, "groups": 3}),
    ]),
    *_opinfo("conv_transpose1d", [
        ((1, 3, 4), (3, 3, 3), (3,), {"stride": (2,), "padding": 2, "output_padding": (1,), "groups": 1}),
        ((2, 2, 4), (2, 2, 4), (4,), {"stride": (3,), "padding": (1,), "output_padding": (2,), "groups": 2, "dilation": (4,)}),
        ((1, 1, 4), (1, 1, 4), (1,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2,)}),
        ((1, 1, 4), (1, 2, 3), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
        ((1, 4, 5), (4, 8, 3), None, {}),
    ]),
    *_opinfo("conv_transpose2d", [
        ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "output_padding": (1, 1), "groups": 1}),
        ((2, 2, 4, 4), (2, 2, 4, 5), (4,),
         {"stride": (3, 2), "padding": (1, 2), "output_padding": (2, 3), "groups": 2, "dilation": (4, 4)}),
        ((1, 1, 4, 5), (1, 1, 4, 3), (1,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2, 3)}),
        ((1, 1, 4, 3), (1, 2, 3, 4), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
        ((2, 4, 4, 4), (4, 1, 3, 3), None, {"groups": 4}),
        ((1, 2, 5, 5), (2, 4, 3, 3), None, {}),
    ]),
    *_opinfo("conv_transpose3d", [
        ((1, 3, 4, 4, 4), (3, 3, 3, 3, 3), (3,), {"stride": (2, 2, 2), "padding": 2, "output_padding": (1, 1, 1), "groups": 1}),
        ((2, 2, 4, 4, 4), (2, 2, 4, 5, 6), (4,),
         {"stride": (3, 2, 1), "padding": (1, 2, 3), "output_padding": (2, 3, 1), "groups": 2, "dilation": (4, 4, 4)}),
        ((1, 1, 4, 5, 2), (1, 1, 4, 3, 1), (1,),
         {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2, 3, 2)}),
        ((1, 1, 4, 3, 4), (1, 2, 3, 4, 5), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
        ((1, 4, 5, 5, 5), (4, 8, 3, 3, 3), None, {}),
    ]),
]

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


@pytest.fixture(autouse=True)
def _exact_torch_oracle():
    """cuDNN's TF32 would make the float32 oracle itself inexact on a GPU."""
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        yield


def _leaf(t):
    return None if t is None else t.detach().requires_grad_()


def _random(shape, dtype):
    return torch.randn(shape, dtype=dtype, device=DEVICE)


def _bias_size(op, weight_shape, kwargs):
    """out_channels: weight.shape[0] for conv, weight.shape[1]·groups for conv_transpose."""
    return weight_shape[1] * kwargs.get("groups", 1) if "transpose" in op else weight_shape[0]


def check_against_torch(op, input, weight, bias=None, grad_output=None, **kwargs):
    """Ours vs torch.nn.functional on the same tensors (same strides): the output, then the
    gradients w.r.t. input, weight and bias for the same grad_output (random if not given).
    Returns (ours, torch's) output and (ours, torch's) input gradient."""
    ours, theirs = [_leaf(t) for t in (input, weight, bias)], [_leaf(t) for t in (input, weight, bias)]
    expected = getattr(TF, op)(*theirs, **kwargs)
    actual = getattr(F, op)(*ours, **kwargs)
    assert actual.shape == expected.shape
    assert_close(actual, expected)
    if grad_output is None:
        grad_output = torch.randn_like(expected)
    actual_grads, expected_grads = grads(actual, ours, grad_output), grads(expected, theirs, grad_output)
    for name, got, want in zip(("input", "weight", "bias"), actual_grads, expected_grads):
        if want is None:
            assert got is None
        else:
            assert_close(got, want, msg=f"{op}: gradient w.r.t. {name} differs")
    return (actual, expected), (actual_grads[0], expected_grads[0])


def _run_case(op, input_shape, weight_shape, bias, kwargs, dtype):
    bias = _random(_bias_size(op, weight_shape, kwargs), dtype) if bias else None
    check_against_torch(op, _random(input_shape, dtype), _random(weight_shape, dtype), bias, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,input_shape,weight_shape,bias,kwargs", CASES)
def test_matches_torch(backend, op, input_shape, weight_shape, bias, kwargs, dtype):
    _run_case(op, input_shape, weight_shape, bias, kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,input_shape,weight_shape,bias,kwargs", OPINFO_CASES)
def test_matches_torch_on_opinfo_samples(backend, op, input_shape, weight_shape, bias, kwargs, dtype):
    _run_case(op, input_shape, weight_shape, bias, kwargs, dtype)


# One geometry per op with stride, padding, dilation and groups, for the layout tests.
LAYOUT_GEOMETRY = {
    "conv1d": ((2, 4, 9), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    "conv2d": ((2, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    "conv3d": ((2, 4, 4, 3, 5), (6, 2, 2, 2, 3), dict(stride=(1, 2, 2), padding=1, groups=2)),
    "conv_transpose1d": ((2, 4, 5), (4, 3, 3), dict(stride=2, padding=1, output_padding=1, dilation=2, groups=2)),
    "conv_transpose2d": ((2, 4, 4, 3), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2)),
    "conv_transpose3d": ((2, 4, 2, 3, 2), (4, 3, 2, 2, 3), dict(stride=2, padding=(0, 1, 1), groups=2)),
}


def _channels_last(t):
    return t.contiguous(memory_format=torch.channels_last if t.dim() == 4 else torch.channels_last_3d)


def _stored(layout, shape, dtype):
    """A random tensor of ``shape`` in a non-contiguous ``layout``."""
    if layout == "transposed":  # first two dimensions swapped in memory
        return _random((shape[1], shape[0], *shape[2:]), dtype).transpose(0, 1)
    if layout == "sliced":  # every other element of a larger tensor, in dims 1 and -1
        return _random((shape[0], 2 * shape[1], *shape[2:-1], 2 * shape[-1]), dtype)[:, ::2, ..., 1::2]
    if layout == "expanded":  # stride 0 along the batch
        return _random((1, *shape[1:]), dtype).expand(shape)
    return _channels_last(_random(shape, dtype))


@pytest.mark.parametrize("tensor,layout", [
    ("input", "transposed"), ("input", "sliced"), ("input", "expanded"), ("input", "channels_last"),
    ("grad_output", "transposed"), ("grad_output", "expanded"),
])
@pytest.mark.parametrize("op", LAYOUT_GEOMETRY)
def test_non_contiguous_layouts(backend, op, tensor, layout):
    if layout == "channels_last" and op.endswith("1d"):
        pytest.skip("no channels_last format for 3-D tensors")
    input_shape, weight_shape, kwargs = LAYOUT_GEOMETRY[op]
    dtype = torch.float64
    input = _stored(layout, input_shape, dtype) if tensor == "input" else _random(input_shape, dtype)
    weight, bias = _random(weight_shape, dtype), _random(_bias_size(op, weight_shape, kwargs), dtype)
    grad_output = None
    if tensor == "grad_output":
        grad_output = _stored(layout, getattr(TF, op)(input, weight, bias, **kwargs).shape, dtype)
    assert not (input if grad_output is None else grad_output).is_contiguous()
    check_against_torch(op, input, weight, bias, grad_output, **kwargs)


FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


@pytest.mark.parametrize("stored", ["input", "weight", "both"])
@pytest.mark.parametrize("op", ["conv2d", "conv3d", "conv_transpose2d", "conv_transpose3d"])
def test_output_memory_format_matches_torch(backend, op, stored):
    # float32: for float64 3-d convolutions torch's CPU fallback (slow_conv3d) ignores memory
    # formats, while its mkldnn/cuDNN kernels (float32) follow them, as we do.
    input_shape, weight_shape, kwargs = LAYOUT_GEOMETRY[op]
    input, weight = _random(input_shape, torch.float32), _random(weight_shape, torch.float32)
    if stored in ("input", "both"):
        input = _channels_last(input)
    if stored in ("weight", "both"):
        weight = _channels_last(weight)
    outputs, input_grads = check_against_torch(op, input, weight, **kwargs)
    channels_last = FORMATS[input.dim()]
    # Output and input gradient (torch: both channels_last here); the weight gradient's layout is not compared.
    for actual, expected in (outputs, input_grads):
        assert expected.is_contiguous(memory_format=channels_last) and not expected.is_contiguous()
        assert actual.is_contiguous(memory_format=channels_last) and not actual.is_contiguous()


# float64 gradcheck/gradgradcheck: tiny shapes, each with stride, padding, dilation or groups, and bias.
GRADCHECK_CASES = [
    case("conv1d", (1, 2, 5), (2, 1, 3), stride=2, padding=1, groups=2),
    case("conv2d", (1, 2, 5, 6), (4, 1, 2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
    case("conv2d", (1, 1, 4, 4), (2, 1, 2, 2), padding="same"),
    case("conv3d", (1, 2, 3, 3, 3), (2, 1, 2, 2, 2), stride=2, padding=1, groups=2),
    case("conv_transpose1d", (1, 2, 4), (2, 1, 3), stride=2, padding=1, output_padding=1, dilation=2, groups=2),
    case("conv_transpose2d", (1, 2, 3, 3), (2, 1, 2, 3),
         stride=(2, 1), padding=(0, 1), output_padding=(1, 0), dilation=(1, 2), groups=2),
    case("conv_transpose3d", (1, 2, 2, 2, 2), (2, 1, 2, 1, 2), stride=(2, 1, 1), output_padding=(1, 0, 0), groups=2),
]


@pytest.mark.parametrize("op,input_shape,weight_shape,bias,kwargs", GRADCHECK_CASES)
def test_gradcheck_and_gradgradcheck(backend, op, input_shape, weight_shape, bias, kwargs):
    inputs = tuple(
        _random(shape, torch.float64).requires_grad_()
        for shape in (input_shape, weight_shape, (_bias_size(op, weight_shape, kwargs),))
    )

    def function(input, weight, bias):
        return getattr(F, op)(input, weight, bias, **kwargs)

    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_zero_input_channels_give_the_bias(backend, nd):
    """A 1×1 convolution over zero input channels is torch's linear with zero in_features:
    every output is the bias (torch.nn.Linear(0, O) agrees). torch's own conv returns zero
    *output* channels here and drops the bias; ours keeps the out_channels its weight asks
    for, as the README states."""
    x = _random((2, 0, *(3,) * nd), torch.float64).requires_grad_()
    weight = _random((4, 0, *(1,) * nd), torch.float64).requires_grad_()
    bias = _random((4,), torch.float64).requires_grad_()
    output = getattr(F, f"conv{nd}d")(x, weight, bias)
    as_linear = TF.linear(x.movedim(1, -1), weight.flatten(1), bias).movedim(-1, 1)
    assert output.shape == as_linear.shape == (2, 4, *(3,) * nd)
    assert_close(output, as_linear)
    grad_output = torch.randn_like(output)
    expected = grads(as_linear, (x, weight, bias), grad_output)
    for name, got, want in zip(("x", "weight", "bias"), grads(output, (x, weight, bias), grad_output), expected):
        assert got.shape == want.shape, name
        assert_close(got, want, msg=name)


# Unit stride: plane-span columns, whose gap columns the chunks must carry as the whole batch does.
UNIT_STRIDE_GEOMETRY = {
    "conv2d-unit-stride": ((2, 3, 6, 7), (4, 3, 3, 2), dict(padding=1)),
    "conv_transpose2d-unit-stride": ((2, 4, 5, 4), (4, 3, 2, 3), dict(padding=(1, 0))),
}


@pytest.mark.parametrize("op", [*LAYOUT_GEOMETRY, *UNIT_STRIDE_GEOMETRY])
def test_batch_chunks_sum_like_one_batch(op, monkeypatch):
    """The CPU engine builds im2col a few samples at a time: with chunks of one sample,
    and of two out of five (a short last chunk), outputs and all gradients are still torch's,
    with one column per output position and (unit stride) with plane-span columns."""
    from torchconv_impl.backends.cpu import conv as cpu_conv

    input_shape, weight_shape, kwargs = {**LAYOUT_GEOMETRY, **UNIT_STRIDE_GEOMETRY}[op]
    op = op.removesuffix("-unit-stride")
    input_shape = (5, *input_shape[1:])
    chosen = record_calls(monkeypatch, cpu_conv, "_choose_columns")
    with backends.use_backend("cpu"):
        for samples in (1, 2):
            monkeypatch.setattr(cpu_conv, "_batch_chunks", _chunks_of(samples))
            bias = _random(_bias_size(op, weight_shape, kwargs), torch.float64)
            check_against_torch(op, _random(input_shape, torch.float64), _random(weight_shape, torch.float64), bias, **kwargs)
        inputs = [_random(shape, torch.float64).requires_grad_() for shape in ((3, *input_shape[1:]), weight_shape)]
        assert torch.autograd.gradgradcheck(lambda x, w: getattr(F, op)(x, w, **kwargs), inputs)
    assert any(columns.has_gaps() for _, _, columns in chosen) == (kwargs.get("stride", 1) == 1)


def test_delta_rows_of_equal_shape_and_other_gaps():
    """The CPU engine keeps δ's row buffers zero between windows by writing only the
    window columns, so each gap layout needs a buffer of its own. Two convolutions whose δ rows
    have the same shape, (4, 2·58), but gaps in other places — 6×10 planes with 1×3 kernels
    (rows of 10, windows of 8) and 3×20 planes (rows of 20, windows of 18) — taken in turn
    must each still give torch's gradients."""
    with backends.use_backend("cpu"):
        for spatial in [(6, 10), (3, 20), (6, 10)]:
            x, w, b = _random((2, 3, *spatial), torch.float64), _random((4, 3, 1, 3), torch.float64), _random((4,), torch.float64)
            check_against_torch("conv2d", x, w, b)


def test_zeroed_scratch_buffers_are_bounded():
    """The zero-kept buffers behind δ's rows: the same key returns the same buffer; beyond 64
    buffers or 64 MiB the least recently used go, so many conv shapes neither thrash nor hoard."""
    from torchconv_impl.backends.cpu._strided import Scratch

    scratch, like = Scratch(), torch.empty(0)
    first = scratch.zeros("rows", (2, 3), like, "layout A")
    for size in range(1, 64):
        scratch.zeros("rows", (size,), like, "layout B")
        assert scratch.zeros("rows", (2, 3), like, "layout A") is first  # kept: the most recently used
    scratch.zeros("rows", (64,), like, "layout B")
    assert len(scratch.zeroed) == 64 and ("rows", torch.float32, (1,), "layout B") not in scratch.zeroed
    scratch.zeros("rows", (20 << 20,), like, "big")  # 80 MiB: over the budget alone, so it stays alone
    assert list(scratch.zeroed) == [("rows", torch.float32, (20 << 20,), "big")]


def _chunks_of(samples):
    return lambda n, per_sample_bytes: [slice(start, min(start + samples, n)) for start in range(0, max(n, 1), samples)]


# (input, grad_output, geometry, kernel size): symmetric and asymmetric ('same', even kernel) padding.
WEIGHT_GRAD_CASES = {
    "1d-stride2-dilation2": ((1, 4, 9), (1, 4, 4), ConvGeometry((2,), ((1, 1),), (2,), 2), (3,)),
    "2d-same-even-kernel": ((1, 1, 3, 4), (1, 2, 3, 4), ConvGeometry((1, 1), ((0, 1), (1, 2)), (1, 3), 1), (2, 2)),
    "3d-groups2": ((1, 2, 2, 3, 3), (1, 2, 2, 3, 1), ConvGeometry((1, 1, 2), ((0, 0), (1, 1), (0, 0)), (1, 1, 1), 2), (1, 3, 2)),
}


@pytest.mark.parametrize("name", WEIGHT_GRAD_CASES)
def test_convolution_weight_grad_function(backend, name):
    """ConvolutionWeightGrad directly: its value is torch's weight gradient, and it passes
    float64 gradcheck and gradgradcheck in both arguments (input and δ)."""
    input_shape, grad_output_shape, geometry, kernel_size = WEIGHT_GRAD_CASES[name]
    input = _random(input_shape, torch.float64).requires_grad_()
    grad_output = _random(grad_output_shape, torch.float64).requires_grad_()
    backend_module = backends.resolve(input)

    def weight_grad(input, grad_output):
        return ConvolutionWeightGrad.apply(input, grad_output, geometry, kernel_size, backend_module)

    nd = len(kernel_size)
    weight = torch.zeros(grad_output_shape[1], input_shape[1] // geometry.groups, *kernel_size,
                         dtype=torch.float64, device=DEVICE, requires_grad=True)
    padded = TF.pad(input.detach(), [p for pair in reversed(geometry.padding) for p in pair])
    output = getattr(TF, f"conv{nd}d")(padded, weight, None, geometry.stride, 0, geometry.dilation, geometry.groups)
    assert output.shape == grad_output.shape
    (expected,) = torch.autograd.grad(output, weight, grad_output.detach())
    assert_close(weight_grad(input, grad_output), expected)
    assert torch.autograd.gradcheck(weight_grad, (input, grad_output))
    assert torch.autograd.gradgradcheck(weight_grad, (input, grad_output))


@pytest.mark.parametrize("op", LAYOUT_GEOMETRY)
def test_no_native_ops(backend, op):
    """Forward, backward and double backward of every conv function dispatch no aten conv op."""
    input_shape, weight_shape, kwargs = LAYOUT_GEOMETRY[op]
    input, weight, bias = (
        _random(shape, torch.float64).requires_grad_()
        for shape in (input_shape, weight_shape, (_bias_size(op, weight_shape, kwargs),))
    )
    with no_native_ops():
        output = getattr(F, op)(input, weight, bias, **kwargs)
        first = torch.autograd.grad(output, (input, weight, bias), torch.randn_like(output), create_graph=True)
        second = torch.autograd.grad(sum((g * g).sum() for g in first), (input, weight, bias), allow_unused=True)
    assert all(g is not None for g in second[:2])


def test_no_native_ops_catches_torch_conv():
    """The dispatch check itself can fail: torch's conv2d under it is reported."""
    with pytest.raises(AssertionError, match="conv"):
        with no_native_ops():
            TF.conv2d(torch.randn(1, 1, 3, 3, device=DEVICE), torch.randn(1, 1, 2, 2, device=DEVICE))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_output_takes_inplace_ops_like_torch(backend, op):
    """torchvision's ReLU(inplace=True) after a conv, at batch 1 where no layout copy happens."""
    x = _random((1, 3, 5, 5), torch.float64).requires_grad_()
    w = _random((3, 3, 3, 3), torch.float64).requires_grad_()
    expected = getattr(torch.nn.functional, op)(x, w).relu_()
    actual = getattr(F, op)(x, w).relu_()
    assert_close(actual, expected)
    delta = torch.randn_like(expected)
    for got, want in zip(grads(actual, (x, w), delta), grads(expected, (x, w), delta)):
        assert_close(got, want)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("special", ["inf input", "nan weight", "inf grad_output"])
def test_non_finite_values_stay_where_torch_puts_them(backend, op, special):
    """The CPU engine computes unit-stride convolutions over plane-span columns, whose
    gaps carry zeros; 0·inf must not leak into the results. An inf at a row's end sits where
    only gap columns reach it for most kernel offsets (the dilation spreads each window over
    rows three apart)."""
    x = _random((2, 2, 8, 9), torch.float64)
    w = _random((2, 2, 2, 3), torch.float64)
    kwargs = dict(dilation=(3, 1)) if op == "conv2d" else dict(dilation=(3, 1), stride=1)
    if special == "inf input":
        x[0, 1, 3, -1] = float("inf")
    if special == "nan weight":
        w[1, 0, 1, 2] = float("nan")
    expected = getattr(TF, op)(x, w, **kwargs)
    grad_output = torch.randn_like(expected)
    if special == "inf grad_output":
        grad_output[1, 0, 2, -1] = float("inf")
    ours, theirs = [t.clone().requires_grad_() for t in (x, w)], [t.clone().requires_grad_() for t in (x, w)]
    actual, expected = getattr(F, op)(*ours, **kwargs), getattr(TF, op)(*theirs, **kwargs)
    torch.testing.assert_close(actual, expected, equal_nan=True)
    for got, want in zip(grads(actual, ours, grad_output), grads(expected, theirs, grad_output)):
        torch.testing.assert_close(got, want, equal_nan=True)
