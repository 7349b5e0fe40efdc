"""conv_transpose1d/2d/3d and ConvTranspose1d/2d/3d against torch.nn.functional and torch.nn: the
output and all three gradients (input, weight, bias) over a curated list of geometries, PyTorch's
own OpInfo samples, memory layouts, float64 gradcheck/gradgradcheck, the CPU engine's
batch chunks, argument errors, the modules' constructor, init, state_dict and output_size, and
the no-native-ops rule."""
from __future__ import annotations

import pytest
import torch

import torchconv_impl
from conv_support import (
    LAYOUTS, case, check_batch_chunks, check_case, check_device_and_dtype_kwargs, check_gradcheck_and_gradgradcheck,
    check_module_no_native_ops, check_no_native_ops, check_non_contiguous_layout, check_non_finite_values,
    check_output_memory_format, check_output_takes_inplace_ops, check_parameters_init_and_repr,
    check_rejected_with_argument_error, check_state_dict_round_trip_and_forward, check_subclasses_torch_twin, error, nd,
    opinfo_cases, pair, zeros,
)
from support import DEVICE, DTYPES, check_against_torch

pytestmark = pytest.mark.usefixtures("exact_torch_oracle")

# Every option appears several times: dims 1/2/3, stride, output_padding, int and tuple padding,
# dilation, groups, bias on/off, batch 0/1/N and unbatched inputs.
CASES = [
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

OPINFO_CASES = [
    *opinfo_cases("conv_transpose1d", [
        ((1, 3, 4), (3, 3, 3), (3,), {"stride": (2,), "padding": 2, "output_padding": (1,), "groups": 1}),
        ((2, 2, 4), (2, 2, 4), (4,), {"stride": (3,), "padding": (1,), "output_padding": (2,), "groups": 2, "dilation": (4,)}),
        ((1, 1, 4), (1, 1, 4), (1,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2,)}),
        ((1, 1, 4), (1, 2, 3), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
        ((1, 4, 5), (4, 8, 3), None, {}),
    ]),
    *opinfo_cases("conv_transpose2d", [
        ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "output_padding": (1, 1), "groups": 1}),
        ((2, 2, 4, 4), (2, 2, 4, 5), (4,),
         {"stride": (3, 2), "padding": (1, 2), "output_padding": (2, 3), "groups": 2, "dilation": (4, 4)}),
        ((1, 1, 4, 5), (1, 1, 4, 3), (1,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2, 3)}),
        ((1, 1, 4, 3), (1, 2, 3, 4), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
        ((2, 4, 4, 4), (4, 1, 3, 3), None, {"groups": 4}),
        ((1, 2, 5, 5), (2, 4, 3, 3), None, {}),
    ]),
    *opinfo_cases("conv_transpose3d", [
        ((1, 3, 4, 4, 4), (3, 3, 3, 3, 3), (3,), {"stride": (2, 2, 2), "padding": 2, "output_padding": (1, 1, 1), "groups": 1}),
        ((2, 2, 4, 4, 4), (2, 2, 4, 5, 6), (4,),
         {"stride": (3, 2, 1), "padding": (1, 2, 3), "output_padding": (2, 3, 1), "groups": 2, "dilation": (4, 4, 4)}),
        ((1, 1, 4, 5, 2), (1, 1, 4, 3, 1), (1,),
         {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2, 3, 2)}),
        ((1, 1, 4, 3, 4), (1, 2, 3, 4, 5), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
        ((1, 4, 5, 5, 5), (4, 8, 3, 3, 3), None, {}),
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


# One geometry per op with stride, padding, output_padding, dilation and groups, for the layout tests.
LAYOUT_GEOMETRY = {
    "conv_transpose1d": ((2, 4, 5), (4, 3, 3), dict(stride=2, padding=1, output_padding=1, dilation=2, groups=2)),
    "conv_transpose2d": ((2, 4, 4, 3), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2)),
    "conv_transpose3d": ((2, 4, 2, 3, 2), (4, 3, 2, 2, 3), dict(stride=2, padding=(0, 1, 1), groups=2)),
}


@pytest.mark.parametrize("tensor,layout", LAYOUTS)
@pytest.mark.parametrize("op", LAYOUT_GEOMETRY)
def test_non_contiguous_layouts(backend, op, tensor, layout):
    check_non_contiguous_layout(op, LAYOUT_GEOMETRY[op], tensor, layout)


@pytest.mark.parametrize("stored", ["input", "weight", "both"])
@pytest.mark.parametrize("op", ["conv_transpose2d", "conv_transpose3d"])
def test_output_memory_format_matches_torch(backend, op, stored):
    check_output_memory_format(op, LAYOUT_GEOMETRY[op], stored)


# float64 gradcheck/gradgradcheck: tiny shapes, each with stride, padding, output_padding, dilation or groups, and bias.
GRADCHECK_CASES = [
    case("conv_transpose1d", (1, 2, 4), (2, 1, 3), stride=2, padding=1, output_padding=1, dilation=2, groups=2),
    case("conv_transpose2d", (1, 2, 3, 3), (2, 1, 2, 3),
         stride=(2, 1), padding=(0, 1), output_padding=(1, 0), dilation=(1, 2), groups=2),
    case("conv_transpose3d", (1, 2, 2, 2, 2), (2, 1, 2, 1, 2), stride=(2, 1, 1), output_padding=(1, 0, 0), groups=2),
]


@pytest.mark.parametrize("op,input_shape,weight_shape,bias,kwargs", GRADCHECK_CASES)
def test_gradcheck_and_gradgradcheck(backend, op, input_shape, weight_shape, bias, kwargs):
    check_gradcheck_and_gradgradcheck(op, input_shape, weight_shape, kwargs)


# Unit stride: plane-span columns, whose gap columns the chunks must carry as the whole batch does.
BATCH_CHUNK_GEOMETRY = {**LAYOUT_GEOMETRY, "conv_transpose2d-unit-stride": ((2, 4, 5, 4), (4, 3, 2, 3), dict(padding=(1, 0)))}


@pytest.mark.parametrize("op", BATCH_CHUNK_GEOMETRY)
def test_batch_chunks_sum_like_one_batch(op, monkeypatch):
    check_batch_chunks(op.removesuffix("-unit-stride"), BATCH_CHUNK_GEOMETRY[op], monkeypatch)


@pytest.mark.parametrize("op", LAYOUT_GEOMETRY)
def test_no_native_ops(backend, op):
    check_no_native_ops(op, LAYOUT_GEOMETRY[op])


@pytest.mark.parametrize("op", ["conv_transpose2d"])
def test_output_takes_inplace_ops_like_torch(backend, op):
    check_output_takes_inplace_ops(op)


@pytest.mark.parametrize("op", ["conv_transpose2d"])
@pytest.mark.parametrize("special", ["inf input", "nan weight", "inf grad_output"])
def test_non_finite_values_stay_where_torch_puts_them(backend, op, special):
    check_non_finite_values(op, special)


# ---------------------------------------------------------------------------------------------
# Argument errors: an ArgumentError (a ValueError and a RuntimeError) whose message names the
# argument, raised before any tensor op runs — and, where torch rejects the same call,
# confirmation that torch raises too.

ERRORS = [
    # tensors and their dimensions
    error("transpose-int32-input", "conv_transpose1d", (zeros(1, 2, 4, dtype=torch.int32), zeros(2, 2, 3, dtype=torch.int32)),
          r"expected input to have a floating-point or complex dtype or int64", NotImplementedError),
    error("transpose-input-ndim", "conv_transpose3d", (zeros(2, 4, 4), zeros(2, 2, 3, 3, 3)), r"expected input to be 4-D"),
    error("transpose-weight-ndim", "conv_transpose1d", (zeros(2, 2, 4), zeros(2, 2, 3, 3)),
          r"expected weight to be 3-D \(in_channels, out_channels/groups"),
    error("transpose-kernel-size-zero", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 0)), r"kernel size"),
    error("transpose-input-spatial-size-zero", "conv_transpose1d", (zeros(2, 2, 0), zeros(2, 2, 3)), r"non-zero size in every spatial"),
    # channels and groups
    error("transpose-channel-mismatch", "conv_transpose2d", (zeros(1, 3, 4, 5), zeros(2, 2, 3, 3)),
          r"expected input with 2 channels \(weight.shape\[0\]\)"),
    error("transpose-groups-not-dividing-in-channels", "conv_transpose1d", (zeros(1, 3, 4), zeros(3, 3, 3)),
          r"weight.shape\[0\] \(in_channels=3\) to be a positive multiple of groups=2", groups=2),
    error("transpose-weight-without-out-channels", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 0, 3, 3)),
          r"weight.shape\[1\] \(out_channels/groups\) to be positive"),
    error("groups-negative", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"groups to be a positive int, got -1", groups=-1),
    # stride, dilation, padding, output_padding
    error("stride-negative", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"stride to be positive", stride=(1, -1)),
    error("transpose-dilation-zero", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"dilation to be positive", dilation=0),
    error("transpose-padding-negative", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)), r"padding to be non-negative",
          padding=(0, -1)),
    error("transpose-padding-string", "conv_transpose1d", (zeros(1, 2, 4), zeros(2, 2, 3)), r"padding to be an int or a tuple",
          TypeError, padding="same"),
    error("output-padding-negative", "conv_transpose1d", (zeros(1, 2, 4), zeros(2, 2, 3)), r"output_padding to be non-negative",
          output_padding=-1),
    error("output-padding-equals-stride", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3)),
          r"output_padding to be smaller than either stride or dilation", stride=2, output_padding=(1, 2)),
    error("output-padding-default-stride", "conv_transpose3d", (zeros(1, 2, 2, 2, 2), zeros(2, 2, 2, 2, 2)),
          r"output_padding to be smaller than either stride or dilation", output_padding=1),
    # sizes
    error("transpose-output-too-small", "conv_transpose2d", (zeros(1, 2, 1, 1), zeros(2, 2, 1, 1)),
          r"calculated output size \(-1, -1\) is too small", padding=1),
    # dtypes and devices
    error("transpose-weight-dtype-mismatch", "conv_transpose1d", (zeros(1, 2, 4, dtype=torch.float64), zeros(2, 2, 3)),
          r"weight to have the same dtype as input"),
    error("transpose-bias-dtype-mismatch", "conv_transpose2d", (zeros(1, 2, 4, 5), zeros(2, 2, 3, 3), zeros(2, dtype=torch.float64)),
          r"bias to have the same dtype", None),
    error("transpose-bias-wrong-size", "conv_transpose1d", (zeros(1, 2, 4), zeros(2, 3, 3), zeros(2)),
          r"bias to be 1-D with 6 elements", groups=2),
    error("bias-on-other-device", "conv_transpose1d", (zeros(1, 2, 4), zeros(2, 2, 3), zeros(2, device="meta")),
          r"expected bias to be on the same device as input", None),
]


@pytest.mark.parametrize("op,args,kwargs,match,torch_raises", ERRORS)
def test_rejected_with_argument_error(op, args, kwargs, match, torch_raises):
    check_rejected_with_argument_error(op, args, kwargs, match, torch_raises)


@pytest.mark.parametrize(
    "name,input_shape,output_size,match",
    [
        pytest.param("ConvTranspose1d", (1, 2, 4), [20], r"requested an output size of \[20\], but valid sizes", id="too-large"),
        pytest.param("ConvTranspose2d", (2, 4, 4), [8, 8], r"requested an output size of \[8, 8\]", id="too-small-unbatched"),
        pytest.param("ConvTranspose3d", (1, 2, 3, 3, 3), [7, 7], r"output_size must have 3 or 5 elements \(got 2\)",
                     id="wrong-length"),
    ],
)
def test_conv_transpose_module_bad_output_size(name, input_shape, output_size, match):
    """Valid output sizes range from the default (stride 2: 9 for an input of 4) to default + stride − 1."""
    ours = getattr(torchconv_impl.nn, name)(2, 3, 3, stride=2, device=DEVICE)
    theirs = getattr(torch.nn, name)(2, 3, 3, stride=2, device=DEVICE)
    input = zeros(*input_shape)
    with pytest.raises(torchconv_impl.ArgumentError, match=match) as raised:
        ours(input, output_size=output_size)
    assert str(raised.value).startswith(f"{name}: ")
    with pytest.raises(ValueError, match=match):
        theirs(input, output_size=output_size)


# ---------------------------------------------------------------------------------------------
# ConvTranspose1d/2d/3d against their torch.nn twins: constructor, parameters, default init,
# state_dict, repr, output_size, device/dtype, and the no-native-ops rule.

CONV_TRANSPOSE = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

# Constructor arguments per class: defaults, and every option away from its default.
CONFIGS = [
    *[pytest.param(name, (3, 4, 3), {}, id=f"{name}-defaults") for name in CONV_TRANSPOSE],
    *[
        pytest.param(name, (4, 6, (2, 3, 2)[:nd(name)]),
                     dict(stride=2, padding=1, output_padding=1, groups=2, bias=False, dilation=2), id=f"{name}-options")
        for name in CONV_TRANSPOSE
    ],
]


@pytest.mark.parametrize("name", CONV_TRANSPOSE)
def test_subclasses_torch_twin_with_same_constructor_signature(name):
    check_subclasses_torch_twin(name)


@pytest.mark.parametrize("name,args,kwargs", CONFIGS)
def test_parameters_init_and_repr_match_torch(name, args, kwargs):
    check_parameters_init_and_repr(name, args, kwargs)


@pytest.mark.parametrize("name,args,kwargs", CONFIGS)
def test_state_dict_round_trip_and_forward(backend, name, args, kwargs):
    check_state_dict_round_trip_and_forward(name, args, kwargs)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("name", CONV_TRANSPOSE)
def test_conv_transpose_output_size(backend, name, batched):
    ours, theirs = pair(name, 2, 3, 3, stride=(3, 2, 2)[:nd(name)], padding=1, dtype=torch.float64)
    shape = (2, 2, *(4, 3, 2)[:nd(name)]) if batched else (2, *(4, 3, 2)[:nd(name)])
    input = torch.randn(shape, dtype=torch.float64, device=DEVICE, requires_grad=True)
    largest = [s + 1 for s in theirs(input).shape[-nd(name):]]  # every dimension one above the default
    for output_size in (largest, [*input.shape[:-nd(name) - 1], 3, *largest]):
        compared = check_against_torch(ours, theirs, input, output_size=output_size, msg=str(output_size))
        assert list(compared.actual[0].shape[-nd(name):]) == largest


@pytest.mark.parametrize("name", ["ConvTranspose3d"])
def test_device_and_dtype_kwargs(name):
    check_device_and_dtype_kwargs(name)


@pytest.mark.parametrize("name", CONV_TRANSPOSE)
def test_module_no_native_ops(backend, name):
    check_module_no_native_ops(name)
