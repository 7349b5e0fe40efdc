"""conv1d/2d/3d, conv_bias_relu and Conv1d/2d/3d against torch.nn.functional and torch.nn: the
output and all three gradients (input, weight, bias) over a curated list of geometries, PyTorch's
own OpInfo samples, memory layouts, float64 gradcheck/gradgradcheck, the CPU engine's
batch chunks and scratch buffers, the weight-gradient Function, the fused bias+ReLU, argument
errors, the modules' constructor, init, state_dict, padding modes and connection_table, and the
no-native-ops rule."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

import torchconv_impl
import torchconv_impl.functional as F
from conv_support import (
    LAYOUTS, case, check_batch_chunks, check_case, check_device_and_dtype_kwargs,
    check_gradcheck_and_gradgradcheck, check_module_no_native_ops, check_no_native_ops, check_non_contiguous_layout,
    check_non_finite_values, check_op, check_output_memory_format, check_output_takes_inplace_ops,
    check_parameters_init_and_repr, check_rejected_with_argument_error, check_state_dict_round_trip_and_forward,
    check_subclasses_torch_twin, error, nd, opinfo_cases, pair, random, zeros,
)
from support import DEVICE, DTYPES, assert_close, check_against_torch, no_native_ops, record_calls
from torchconv_impl import backends
from torchconv_impl import nn as ours_nn
from torchconv_impl._geometry import ConvGeometry
from torchconv_impl.autograd import ConvolutionWeightGrad

pytestmark = [
    pytest.mark.usefixtures("exact_torch_oracle"),
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]

# Every option appears several times: dims 1/2/3, stride (incl. not dividing the input), int and
# tuple padding, 'same' (incl. even kernels with dilation) and 'valid', dilation, groups
# (grouped, depthwise groups=C, depth multiplier out=2·C), bias on/off, non-square kernels and
# inputs, batch 0/1/N and unbatched inputs.
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
]

OPINFO_CASES = [
    *opinfo_cases("conv1d", [
        ((1, 3, 4), (3, 3, 3), (3,), {"stride": (2,), "padding": 2, "groups": 1}),
        ((2, 4, 8), (2, 2, 3), (2,), {"stride": 3, "padding": 1, "groups": 2, "dilation": 2}),
        ((1, 4, 5), (1, 4, 3), None, {"stride": (2,), "padding": "valid"}),
        ((2, 2, 4), (2, 1, 4), (2,), {"stride": (1,), "padding": "same", "groups": 2, "dilation": (2,)}),
        ((1, 4, 5), (3, 4, 3), None, {}),
    ]),
    *opinfo_cases("conv2d", [
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
    *opinfo_cases("conv3d", [
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
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,input_shape,weight_shape,bias,kwargs", CASES)
def test_matches_torch(backend, op, input_shape, weight_shape, bias, kwargs, dtype):
    check_case(op, input_shape, weight_shape, bias, kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,input_shape,weight_shape,bias,kwargs", OPINFO_CASES)
def test_matches_torch_on_opinfo_samples(backend, op, input_shape, weight_shape, bias, kwargs, dtype):
    check_case(op, input_shape, weight_shape, bias, kwargs, dtype)


# One geometry per op with stride, padding, dilation and groups, for the layout tests.
LAYOUT_GEOMETRY = {
    "conv1d": ((2, 4, 9), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    "conv2d": ((2, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    "conv3d": ((2, 4, 4, 3, 5), (6, 2, 2, 2, 3), dict(stride=(1, 2, 2), padding=1, groups=2)),
}


@pytest.mark.parametrize("tensor,layout", LAYOUTS)
@pytest.mark.parametrize("op", LAYOUT_GEOMETRY)
def test_non_contiguous_layouts(backend, op, tensor, layout):
    check_non_contiguous_layout(op, LAYOUT_GEOMETRY[op], tensor, layout)


@pytest.mark.parametrize("stored", ["input", "weight", "both"])
@pytest.mark.parametrize("op", ["conv2d", "conv3d"])
def test_output_memory_format_matches_torch(backend, op, stored):
    check_output_memory_format(op, LAYOUT_GEOMETRY[op], stored)


# float64 gradcheck/gradgradcheck: tiny shapes, each with stride, padding, dilation or groups, and bias.
GRADCHECK_CASES = [
    case("conv1d", (1, 2, 5), (2, 1, 3), stride=2, padding=1, groups=2),
    case("conv2d", (1, 2, 5, 6), (4, 1, 2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
    case("conv2d", (1, 1, 4, 4), (2, 1, 2, 2), padding="same"),
    case("conv3d", (1, 2, 3, 3, 3), (2, 1, 2, 2, 2), stride=2, padding=1, groups=2),
]


@pytest.mark.parametrize("op,input_shape,weight_shape,bias,kwargs", GRADCHECK_CASES)
def test_gradcheck_and_gradgradcheck(backend, op, input_shape, weight_shape, bias, kwargs):
    check_gradcheck_and_gradgradcheck(op, input_shape, weight_shape, kwargs)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_zero_input_channels_give_the_bias(backend, nd):
    """A 1×1 convolution over zero input channels is torch's linear with zero in_features:
    every output is the bias (torch.nn.Linear(0, O) agrees). torch's own conv returns zero
    *output* channels here and drops the bias; ours keeps the out_channels its weight asks
    for, as the README states."""
    x = random((2, 0, *(3,) * nd), torch.float64).requires_grad_()
    weight = random((4, 0, *(1,) * nd), torch.float64).requires_grad_()
    bias = random((4,), torch.float64).requires_grad_()

    def as_linear(x, weight, bias):
        return TF.linear(x.movedim(1, -1), weight.flatten(1), bias).movedim(-1, 1).contiguous()

    compared = check_against_torch(getattr(F, f"conv{nd}d"), as_linear, x, weight, bias)
    assert compared.actual[0].shape == (2, 4, *(3,) * nd)


# Unit stride: plane-span columns, whose gap columns the chunks must carry as the whole batch does.
BATCH_CHUNK_GEOMETRY = {**LAYOUT_GEOMETRY, "conv2d-unit-stride": ((2, 3, 6, 7), (4, 3, 3, 2), dict(padding=1))}


@pytest.mark.parametrize("op", BATCH_CHUNK_GEOMETRY)
def test_batch_chunks_sum_like_one_batch(op, monkeypatch):
    check_batch_chunks(op.removesuffix("-unit-stride"), BATCH_CHUNK_GEOMETRY[op], monkeypatch)


# The shifted form (no im2col), forced on convolutions too small to take it by themselves:
# stride phases, dilation, groups (depthwise among them), padding, 1-, 2- and 3-d.
SHIFTED_GEOMETRY = {
    **BATCH_CHUNK_GEOMETRY,
    "conv2d-dilated": ((2, 3, 7, 8), (4, 3, 3, 2), dict(padding=(2, 1), dilation=2)),
    "conv2d-depthwise": ((2, 4, 7, 6), (8, 1, 3, 3), dict(stride=2, padding=1, groups=4)),
}


def _force_shifted_form(monkeypatch):
    from torchconv_impl.backends.cpu import conv as cpu_conv

    monkeypatch.setattr(cpu_conv, "_SHIFT_OVERHEAD", float("inf"))
    monkeypatch.setattr(cpu_conv, "_SHIFT_MIN_CHANNELS", 1)
    return cpu_conv


@pytest.mark.parametrize("op", SHIFTED_GEOMETRY)
def test_shifted_form_matches_torch(op, monkeypatch):
    """In chunks of one and of two samples out of five, every computation in the shifted form
    (but a 2-d unit-stride backward, which the row form takes), outputs and all gradients are torch's."""
    cpu_conv = _force_shifted_form(monkeypatch)
    chosen = record_calls(monkeypatch, cpu_conv, "_shift_form")
    input_shape, weight_shape, kwargs = SHIFTED_GEOMETRY[op]
    with backends.use_backend("cpu"):
        for samples in (1, 2):
            monkeypatch.setattr(
                cpu_conv, "_batch_chunks", lambda n, *_, step=samples: [slice(i, min(i + step, n)) for i in range(0, max(n, 1), step)]
            )
            x, w, b = random((5, *input_shape[1:]), torch.float64), random(weight_shape, torch.float64), random(weight_shape[:1], torch.float64)
            check_op(op.split("-")[0], x, w, b, **kwargs)
    assert len(chosen) >= 2 and all(result for _, _, result in chosen)


@pytest.mark.parametrize("special", ["inf input", "nan weight", "inf grad_output"])
def test_shifted_form_keeps_non_finite_values(special, monkeypatch):
    _force_shifted_form(monkeypatch)
    with backends.use_backend("cpu"):
        check_non_finite_values("conv2d", special)


# The flat depthwise form: 1-, 2- and 3-d, dilation, non-square planes, even kernels ('same'
# pads one more on the high side), kernels reaching past the plane, and the transposed
# convolution (whose forward is the input gradient).
FLAT_DEPTHWISE_GEOMETRY = {
    "conv1d-dilated": ((2, 4, 9), (4, 1, 3), dict(padding=2, dilation=2, groups=4)),
    "conv2d": ((2, 3, 5, 6), (3, 1, 3, 3), dict(padding=1, groups=3)),
    "conv2d-even-kernel": ((2, 3, 6, 5), (3, 1, 4, 2), dict(padding="same", groups=3)),
    "conv2d-kernel-past-plane": ((2, 2, 3, 3), (2, 1, 7, 7), dict(padding=3, groups=2)),
    "conv3d": ((2, 2, 3, 4, 5), (2, 1, 3, 3, 3), dict(padding=1, groups=2)),
    "conv_transpose2d": ((2, 3, 5, 6), (3, 1, 3, 3), dict(padding=1, groups=3)),
}


def _flat_depthwise(monkeypatch, block_bytes):
    """The flat form's choices, recorded, with every plane's weight gradient in it and blocks of ``block_bytes``."""
    from torchconv_impl.backends.cpu import depthwise

    monkeypatch.setattr(depthwise, "_WEIGHT_GRAD_MAX_PLANE", float("inf"))
    monkeypatch.setattr(depthwise, "_BLOCK_BYTES", block_bytes)
    return record_calls(monkeypatch, depthwise, "flat_form")


@pytest.mark.parametrize("block_bytes", [1, 2 << 20], ids=["a-channel-a-block", "one-block"])
@pytest.mark.parametrize("op", FLAT_DEPTHWISE_GEOMETRY)
def test_flat_depthwise_form_matches_torch(op, block_bytes, monkeypatch):
    """Depthwise, unit-stride convolutions with an output of the input's size run as a stencil
    over flat planes in all three computations (masks for the padding, blocks of channels), and
    give torch's outputs and gradients."""
    chosen = _flat_depthwise(monkeypatch, block_bytes)
    input_shape, weight_shape, kwargs = FLAT_DEPTHWISE_GEOMETRY[op]
    with backends.use_backend("cpu"):
        x, w = random(input_shape, torch.float64), random(weight_shape, torch.float64)
        check_op(op.split("-")[0], x, w, random((input_shape[1],), torch.float64), **kwargs)
    assert len(chosen) == 3 and all(result for _, _, result in chosen)


def test_flat_depthwise_forward_fuses_relu(monkeypatch):
    chosen = _flat_depthwise(monkeypatch, 1)
    x, w, b = (torch.randn(shape, dtype=torch.float64, requires_grad=True) for shape in ((2, 3, 5, 6), (3, 1, 3, 3), (3,)))
    with backends.use_backend("cpu"):
        check_against_torch(F.conv_bias_relu, _relu_of_torch_conv, x, w, b, padding=1, groups=3)
    assert chosen[0][2]


def test_flat_depthwise_form_declines_a_larger_transposed_output(monkeypatch):
    """A transposed convolution's output_padding (below the dilation at unit stride) makes x one
    row and column larger than δ: padding and dilation alone would pass, the plane sizes differ,
    so the computations with δ (its forward, the weight gradient) take another form."""
    chosen = _flat_depthwise(monkeypatch, 2 << 20)
    x, w, b = random((2, 3, 5, 6), torch.float64), random((3, 1, 3, 3), torch.float64), random((3,), torch.float64)
    with backends.use_backend("cpu"):
        check_op("conv_transpose2d", x, w, b, padding=2, dilation=2, output_padding=1, groups=3)
    assert [result for _, _, result in chosen].count(False) == 2


@pytest.mark.parametrize("special", ["inf input", "nan weight", "inf grad_output"])
def test_flat_depthwise_form_declines_non_finite_values(special, monkeypatch):
    """The masks' zeros meet every element of x, W and δ (0·inf is NaN): with an inf or NaN in
    one, the computations that read it take another form and keep torch's results. The inf
    sits at a row's end, which the next row's first window reads only across the wrap."""
    chosen = _flat_depthwise(monkeypatch, 2 << 20)
    x, w = random((2, 3, 5, 6), torch.float64), random((3, 1, 3, 3), torch.float64)
    if special == "inf input":
        x[0, 1, 2, -1] = float("inf")
    if special == "nan weight":
        w[1, 0, 1, 2] = float("nan")
    grad_output = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    if special == "inf grad_output":
        grad_output[1, 2, 3, -1] = float("inf")
    with backends.use_backend("cpu"):
        check_op("conv2d", x, w, None, grad_output, padding=1, groups=3)
    assert not all(result for _, _, result in chosen)


@pytest.mark.parametrize("op,input_shape,weight_shape", [
    ("conv1d", (3, 4, 7), (5, 4, 1)),
    ("conv2d", (3, 4, 5, 6), (5, 4, 1, 1)),
    ("conv2d", (3, 12, 2, 1), (10, 12, 1, 1)),  # many channels, small planes: dW sample by sample
    ("conv_transpose3d", (3, 4, 2, 3, 2), (4, 5, 1, 1, 1)),
])
def test_pointwise_form_matches_torch(op, input_shape, weight_shape, monkeypatch):
    """1×1 convolutions without padding run as one product per sample in place (the pointwise
    form): all three computations take it, and give torch's outputs and gradients."""
    from torchconv_impl.backends.cpu import conv as cpu_conv

    chosen = record_calls(monkeypatch, cpu_conv, "_pointwise")
    out_channels = weight_shape[1] if "transpose" in op else weight_shape[0]
    with backends.use_backend("cpu"):
        check_op(op, random(input_shape, torch.float64), random(weight_shape, torch.float64), random((out_channels,), torch.float64))
    assert sum(result for _, _, result in chosen) >= 3


def test_delta_rows_of_equal_shape_and_other_gaps(monkeypatch):
    """The CPU engine keeps δ's row buffers zero between windows by writing only the
    window columns, so each gap layout needs a buffer of its own. Two convolutions whose δ rows
    have the same shape, (4, 2·58), but gaps in other places — 6×10 planes with 1×3 kernels
    (rows of 10, windows of 8) and 4×15 planes (rows of 15, windows of 13) — taken in turn
    must each still give torch's gradients."""
    from torchconv_impl.backends.cpu import conv as cpu_conv

    monkeypatch.setattr(cpu_conv, "_ROW_FORM_WIDTHS", 0)  # the backward passes over columns, not rows
    rows = record_calls(monkeypatch, cpu_conv, "_delta_rows")
    with backends.use_backend("cpu"):
        for spatial in [(6, 10), (4, 15), (6, 10)]:
            x, w, b = random((2, 3, *spatial), torch.float64), random((4, 3, 1, 3), torch.float64), random((4,), torch.float64)
            check_op("conv2d", x, w, b)
    assert len(rows) == 6 and all(columns.has_gaps() and delta.shape == (1, 4, 2 * 58) for (_, columns, _), _, delta in rows)


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
    input = random(input_shape, torch.float64).requires_grad_()
    grad_output = random(grad_output_shape, torch.float64).requires_grad_()
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
    check_no_native_ops(op, LAYOUT_GEOMETRY[op])


def test_no_native_ops_catches_torch_conv():
    """The dispatch check itself can fail: torch's conv2d under it is reported."""
    with pytest.raises(AssertionError, match="conv"):
        with no_native_ops():
            TF.conv2d(torch.randn(1, 1, 3, 3, device=DEVICE), torch.randn(1, 1, 2, 2, device=DEVICE))


@pytest.mark.parametrize("op", ["conv2d"])
def test_output_takes_inplace_ops_like_torch(backend, op):
    check_output_takes_inplace_ops(op)


@pytest.mark.parametrize("op", ["conv2d"])
@pytest.mark.parametrize("special", ["inf input", "nan weight", "inf grad_output"])
def test_non_finite_values_stay_where_torch_puts_them(backend, op, special):
    check_non_finite_values(op, special)


# ---------------------------------------------------------------------------------------------
# conv_bias_relu: one operation equal to relu(conv(x, W, b)) in value and every gradient.

FUSED_CASES = [
    ((2, 3, 9), (4, 3, 3), dict(stride=2, padding=1)),
    ((2, 4, 6, 7), (6, 2, 3, 2), dict(padding="same", groups=2)),
    ((3, 5, 5), (2, 3, 3, 3), dict(dilation=2, padding=2)),  # unbatched
    ((1, 2, 3, 4, 4), (3, 2, 2, 2, 2), dict(stride=(1, 2, 1))),
]


def _relu_of_torch_conv(x, w, b, **kwargs):
    return torch.relu(getattr(TF, f"conv{w.dim() - 2}d")(x, w, b, **kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_shape, weight_shape, kwargs", FUSED_CASES)
def test_matches_relu_of_torch_conv(backend, dtype, input_shape, weight_shape, kwargs):
    x, w, b = (torch.randn(shape, dtype=dtype, device=DEVICE, requires_grad=True) for shape in (input_shape, weight_shape, weight_shape[:1]))
    compared = check_against_torch(F.conv_bias_relu, _relu_of_torch_conv, x, w, b, **kwargs)
    expected = compared.expected[0]
    assert (expected == 0).any() and (expected > 0).any(), "the case should exercise both sides of the ReLU"


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("special", [float("inf"), -float("inf"), float("nan")], ids=str)
def test_non_finite_delta_where_relu_is_zero(backend, with_bias, special):
    """δ = ±inf or NaN where y ≤ 0 contributes nothing, exactly as torch's threshold_backward:
    every gradient stays finite and equal to torch's. (The CPU path multiplies δ by a float
    mask, which would turn inf·0 into NaN, so it must notice and take the exact route.)"""
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, device=DEVICE, requires_grad=True) if with_bias else None
    expected = _relu_of_torch_conv(x, w, b, padding=1)
    delta = torch.randn_like(expected)
    delta[expected == 0] = special
    compared = check_against_torch(F.conv_bias_relu, _relu_of_torch_conv, x, w, b, grad_output=delta, padding=1)
    for got in compared.actual_grads:
        assert got is None or got.isfinite().all()


def test_fused_gradcheck_and_gradgradcheck():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def function(x, w, b):
        return F.conv_bias_relu(x, w, b, stride=(2, 1), padding=1, groups=2)

    assert torch.autograd.gradcheck(function, (x, w, b))
    assert torch.autograd.gradgradcheck(function, (x, w, b))


def test_rejects_bad_weight():
    with pytest.raises(torchconv_impl.ArgumentError, match="weight"):
        F.conv_bias_relu(torch.randn(1, 2, 5, 5), torch.randn(3, 2))


def test_triton_backend_fuses_bias_and_relu(monkeypatch):
    """The Triton backend hands the bias and the ReLU to the kernel, whose epilogue applies
    them (interpreter on CPU without a GPU): results against torch."""
    pytest.importorskip("triton")
    from torchconv_impl.backends import triton as triton_backend

    kernel_calls = record_calls(monkeypatch, triton_backend.conv_kernels, "conv_forward")
    x = torch.randn(2, 3, 6, 7, device=DEVICE, requires_grad=True)
    w = torch.randn(5, 3, 3, 3, device=DEVICE, requires_grad=True)
    b = torch.randn(5, device=DEVICE, requires_grad=True)
    with torchconv_impl.use_backend("triton"):
        check_against_torch(F.conv_bias_relu, _relu_of_torch_conv, x, w, b, grad_output=torch.ones(2, 5, 6, 7, device=DEVICE), padding=1)
    # (input, weight, bias, geometry, activation): the forward only; the backward's convolutions have no epilogue
    assert [(args[2] is not None, args[4]) for args, _, _ in kernel_calls] == [(True, "relu")]


# ---------------------------------------------------------------------------------------------
# Argument errors: an ArgumentError (a ValueError and a RuntimeError) whose message names the
# argument, raised before any tensor op runs — and, where torch rejects the same call,
# confirmation that torch raises too.

ERRORS = [
    # tensors and their dimensions
    error("input-not-tensor", "conv1d", ([[1.0, 2.0]], zeros(1, 1, 1)), r"expected input to be a Tensor", TypeError),
    error("weight-not-tensor", "conv1d", (zeros(1, 1, 3), [[[1.0]]]), r"expected weight to be a Tensor", TypeError),
    error("input-ndim-low", "conv1d", (zeros(4), zeros(2, 1, 3)), r"expected input to be 2-D \(unbatched\) or 3-D \(batched\)"),
    error("input-ndim-high", "conv2d", (zeros(1, 1, 4, 5, 6), zeros(2, 1, 3, 3)), r"expected input to be 3-D .* got 5-D input"),
    error("weight-ndim", "conv2d", (zeros(1, 1, 4, 5), zeros(2, 1, 3)), r"expected weight to be 4-D .* got 3-D weight"),
    error("kernel-size-zero", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 0, 3)), r"kernel size \(weight.shape\[2:\]\) to be positive"),
    error("input-spatial-size-zero", "conv2d", (zeros(1, 2, 0, 5), zeros(2, 2, 3, 3)), r"input with a non-zero size in every spatial",
          padding=2),
    # channels and groups
    error("channel-mismatch", "conv2d", (zeros(1, 3, 4, 5), zeros(2, 2, 3, 3)), r"expected input with 2 channels .* got 3 channels"),
    error("channel-mismatch-unbatched", "conv1d", (zeros(3, 5), zeros(2, 2, 3)), r"expected input with 2 channels .* got 3 channels"),
    error("groups-not-dividing-out-channels", "conv2d", (zeros(1, 4, 4, 5), zeros(3, 2, 3, 3)),
          r"weight.shape\[0\] \(out_channels=3\) to be a positive multiple of groups=2", groups=2),
    error("groups-not-dividing-in-channels", "conv3d", (zeros(1, 3, 3, 3, 3), zeros(4, 1, 2, 2, 2)),
          r"expected input with 2 channels \(weight.shape\[1\]=1 × groups=2\)", groups=2),
    error("groups-above-out-channels", "conv1d", (zeros(2, 2, 4), zeros(2, 2, 2)), r"positive multiple of groups=3", groups=3),
    error("weight-without-out-channels", "conv2d", (zeros(1, 2, 4, 5), zeros(0, 2, 3, 3)), r"out_channels=0\) to be a positive multiple"),
    error("groups-zero", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"expected groups to be a positive int, got 0", groups=0),
    error("groups-bool", "conv1d", (zeros(1, 2, 4), zeros(2, 2, 3)), r"groups to be a positive int, got True", TypeError, groups=True),
    # stride, dilation, padding, output_padding
    error("stride-zero", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"expected stride to be positive, got \(0, 0\)", stride=0),
    error("stride-wrong-length", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"stride to be an int or a tuple of 2 ints",
          stride=(1, 1, 1)),
    error("dilation-zero", "conv3d", (zeros(1, 2, 4, 4, 4), zeros(2, 2, 3, 3, 3)), r"dilation to be positive, got \(1, 0, 1\)",
          dilation=(1, 0, 1)),
    error("padding-negative", "conv1d", (zeros(1, 2, 4), zeros(2, 2, 3)), r"padding to be non-negative, got \(-1,\)", padding=-1),
    error("padding-wrong-length", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"padding to be an int or a tuple of 2 ints",
          padding=(1, 1, 1)),
    error("padding-bad-string", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"padding to be 'same', 'valid', an int .* 'full'",
          padding="full"),
    error("same-with-stride", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"padding='same' is not supported for strided",
          padding="same", stride=(1, 2)),
    # sizes
    error("kernel-larger-than-input", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 5, 3)),
          r"padded input size \(4, 5\) to be at least the dilated kernel size \(5, 3\)"),
    error("dilated-kernel-larger-than-padded-input", "conv1d", (zeros(1, 2, 4), zeros(2, 2, 3)),
          r"padded input size \(6,\) to be at least the dilated kernel size \(7,\)", padding=1, dilation=3),
    # dtypes and devices
    error("bool-input", "conv2d", (zeros(1, 2, 4, 5, dtype=torch.bool), zeros(2, 2, 3, 3, dtype=torch.bool)),
          r"expected input to have a floating-point, complex or integer dtype, got torch.bool", NotImplementedError),
    error("weight-dtype-mismatch", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3, dtype=torch.float64)),
          r"expected weight to have the same dtype as input \(torch.float32\), got torch.float64"),
    error("bias-dtype-mismatch", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3), zeros(2, dtype=torch.float64)),
          r"expected bias to have the same dtype as input"),
    error("bias-wrong-size", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3), zeros(3)),
          r"expected bias to be 1-D with 2 elements \(out_channels\), got size \[3\]"),
    error("bias-2d", "conv3d", (zeros(1, 2, 3, 3, 3), zeros(2, 2, 2, 2, 2), zeros(2, 1)), r"bias to be 1-D with 2 elements"),
    error("weight-on-other-device", "conv2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3, device="meta")),
          r"expected weight to be on the same device as input", None),
]


@pytest.mark.parametrize("op,args,kwargs,match,torch_raises", ERRORS)
def test_rejected_with_argument_error(op, args, kwargs, match, torch_raises):
    check_rejected_with_argument_error(op, args, kwargs, match, torch_raises)


def test_module_rejects_what_functional_rejects():
    """Modules go through the functional checks: a wrongly shaped input is named as such."""
    with pytest.raises(torchconv_impl.ArgumentError, match=r"conv2d: expected input with 3 channels"):
        ours_nn.Conv2d(3, 4, 2, device=DEVICE)(zeros(1, 2, 5, 5))


# ---------------------------------------------------------------------------------------------
# Conv1d/2d/3d against their torch.nn twins: constructor, parameters, default init,
# state_dict, repr, padding modes, device/dtype, the connection_table and activation
# extensions, and the no-native-ops rule.

CONV = ["Conv1d", "Conv2d", "Conv3d"]

# Constructor arguments per class: defaults, and every option away from its default.
CONFIGS = [
    *[pytest.param(name, (3, 4, 3), {}, id=f"{name}-defaults") for name in CONV],
    *[
        pytest.param(name, (4, 6, (3, 2, 2)[:nd(name)]),
                     dict(stride=2, padding=1, dilation=2, groups=2, bias=False), id=f"{name}-options")
        for name in CONV
    ],
    *[
        pytest.param(name, (4, 6, 3), dict(padding="same", padding_mode=mode), id=f"{name}-same-{mode}")
        for name, mode in zip(CONV, ("reflect", "replicate", "circular"))
    ],
]


@pytest.mark.parametrize("name", CONV)
def test_subclasses_torch_twin_with_same_constructor_signature(name):
    check_subclasses_torch_twin(name, extensions=("connection_table", "activation"))


@pytest.mark.parametrize("name,args,kwargs", CONFIGS)
def test_parameters_init_and_repr_match_torch(name, args, kwargs):
    check_parameters_init_and_repr(name, args, kwargs)


@pytest.mark.parametrize("name,args,kwargs", CONFIGS)
def test_state_dict_round_trip_and_forward(backend, name, args, kwargs):
    check_state_dict_round_trip_and_forward(name, args, kwargs)


@pytest.mark.parametrize("padding", [pytest.param(2, id="padding2"), pytest.param((1, 2, 0), id="padding-tuple")])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("name", CONV)
def test_padding_modes(backend, name, mode, padding):
    padding = padding if isinstance(padding, int) else padding[:nd(name)]
    ours, theirs = pair(name, 2, 3, (3, 2, 2)[:nd(name)], stride=2, padding=padding, padding_mode=mode, dtype=torch.float64)
    input = torch.randn(2, 2, *(5, 4, 3)[:nd(name)], dtype=torch.float64, device=DEVICE, requires_grad=True)
    check_against_torch(ours, theirs, input)


@pytest.mark.parametrize("name", ["Conv2d"])
def test_device_and_dtype_kwargs(name):
    check_device_and_dtype_kwargs(name)


# LeNet-5's C3-style table: output map o sees input map c only where True.
TABLE = [[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]]


@pytest.mark.parametrize("name", CONV)
def test_connection_table(backend, name):
    mask = torch.tensor(TABLE, dtype=torch.bool, device=DEVICE).view(4, 3, *(1,) * nd(name))
    theirs = pair(name, 3, 4, 2)[1]
    torch.manual_seed(0)
    ours = getattr(ours_nn, name)(3, 4, 2, device=DEVICE, connection_table=TABLE)
    # Same init as torch's, with the masked weights zeroed.
    assert torch.equal(ours.weight, theirs.weight * mask)
    assert "connection_table=True" in repr(ours)

    # The forward uses weight·mask even where the weight is not zero (e.g. loaded from elsewhere).
    with torch.no_grad():
        ours.weight.copy_(torch.randn_like(ours.weight))
    input = torch.randn(2, 3, *(4,) * nd(name), device=DEVICE, requires_grad=True)

    def with_parameters(input, weight, bias):
        return torch.func.functional_call(ours, {"weight": weight, "bias": bias}, (input,))

    def torch_masked(input, weight, bias):
        return getattr(nn.functional, f"conv{nd(name)}d")(input, weight * mask, bias)

    # Every gradient is torch's through weight·mask, so the masked weights' is exactly zero.
    compared = check_against_torch(with_parameters, torch_masked, input, ours.weight, ours.bias)
    assert torch.count_nonzero(compared.actual_grads[1][~mask.expand_as(ours.weight)]) == 0

    # A buffer in the state_dict, restored on load.
    state = ours.state_dict()
    assert torch.equal(state["connection_table"], mask.view(4, 3))
    restored = getattr(ours_nn, name)(3, 4, 2, device=DEVICE, connection_table=torch.ones(4, 3, dtype=torch.bool))
    restored.load_state_dict(state)
    assert torch.equal(restored.connection_table, ours.connection_table)
    assert_close(restored(input), ours(input))


@pytest.mark.parametrize("shape", [(3, 4), (4, 3, 1), (4,)], ids=str)
def test_connection_table_bad_shape(shape):
    with pytest.raises(torchconv_impl.ArgumentError, match=r"connection_table of shape \(4, 3\)"):
        ours_nn.Conv2d(3, 4, 2, connection_table=torch.ones(shape, dtype=torch.bool))


@pytest.mark.parametrize("name", CONV)
def test_fused_relu_activation(backend, name):
    """Conv(activation="relu") = torch's conv followed by ReLU: output and every gradient;
    the parameters and the state_dict are the plain layer's."""
    theirs = pair(name, 3, 4, 2, padding=1, padding_mode="circular")[1]
    with torch.no_grad():
        theirs.bias[0] = 0.0
    ours = getattr(ours_nn, name)(3, 4, 2, padding=1, padding_mode="circular", device=DEVICE, activation="relu")
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert "activation='relu'" in repr(ours)
    input = torch.randn(2, 3, *(5,) * nd(name), device=DEVICE)
    input[0] = 0.0  # with bias[0] = 0: sample 0's channel 0 sits exactly at ReLU's kink
    input = input.requires_grad_()
    assert not theirs(input)[0, 0].any()
    compared = check_against_torch(ours, nn.Sequential(theirs, nn.ReLU()), input)
    assert not compared.expected[0][0, 0].any()
    with pytest.raises(torchconv_impl.ArgumentError, match="activation to be None or 'relu'"):
        getattr(ours_nn, name)(3, 4, 2, activation="tanh")


@pytest.mark.parametrize("name", CONV)
def test_module_no_native_ops(backend, name):
    check_module_no_native_ops(name)
