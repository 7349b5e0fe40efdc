"""Bad arguments to the conv functions and modules: an ArgumentError (a ValueError and a
RuntimeError) whose message names the argument, raised before any tensor op runs — and,
where torch rejects the same call, confirmation that torch raises too."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import torchconv_impl
import torchconv_impl.functional as F
from support import DEVICE, no_native_ops
from torchconv_impl import nn as ours_nn


def t(*shape, dtype=torch.float32, device=DEVICE):
    return torch.zeros(shape, dtype=dtype, device=device)


def error(id, op, args, match, torch_raises=RuntimeError, **kwargs):
    """``op(*args, **kwargs)`` must raise ArgumentError matching ``match``; torch's op must raise
    ``torch_raises`` (None: torch accepts the call, or its verdict depends on the device)."""
    return pytest.param(op, args, kwargs, match, torch_raises, id=id)


ERRORS = [
    # tensors and their dimensions
    error("input-not-tensor", "conv1d", ([[1.0, 2.0]], t(1, 1, 1)), r"expected input to be a Tensor", TypeError),
    error("weight-not-tensor", "conv1d", (t(1, 1, 3), [[[1.0]]]), r"expected weight to be a Tensor", TypeError),
    error("input-ndim-low", "conv1d", (t(4), t(2, 1, 3)), r"expected input to be 2-D \(unbatched\) or 3-D \(batched\)"),
    error("input-ndim-high", "conv2d", (t(1, 1, 4, 5, 6), t(2, 1, 3, 3)), r"expected input to be 3-D .* got 5-D input"),
    error("transpose-input-ndim", "conv_transpose3d", (t(2, 4, 4), t(2, 2, 3, 3, 3)), r"expected input to be 4-D"),
    error("weight-ndim", "conv2d", (t(1, 1, 4, 5), t(2, 1, 3)), r"expected weight to be 4-D .* got 3-D weight"),
    error("transpose-weight-ndim", "conv_transpose1d", (t(2, 2, 4), t(2, 2, 3, 3)),
          r"expected weight to be 3-D \(in_channels, out_channels/groups"),
    error("kernel-size-zero", "conv2d", (t(1, 2, 4, 5), t(2, 2, 0, 3)), r"kernel size \(weight.shape\[2:\]\) to be positive"),
    error("transpose-kernel-size-zero", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 2, 3, 0)), r"kernel size"),
    error("input-spatial-size-zero", "conv2d", (t(1, 2, 0, 5), t(2, 2, 3, 3)), r"input with a non-zero size in every spatial",
          padding=2),
    error("transpose-input-spatial-size-zero", "conv_transpose1d", (t(2, 2, 0), t(2, 2, 3)), r"non-zero size in every spatial"),
    # channels and groups
    error("channel-mismatch", "conv2d", (t(1, 3, 4, 5), t(2, 2, 3, 3)), r"expected input with 2 channels .* got 3 channels"),
    error("channel-mismatch-unbatched", "conv1d", (t(3, 5), t(2, 2, 3)), r"expected input with 2 channels .* got 3 channels"),
    error("transpose-channel-mismatch", "conv_transpose2d", (t(1, 3, 4, 5), t(2, 2, 3, 3)),
          r"expected input with 2 channels \(weight.shape\[0\]\)"),
    error("groups-not-dividing-out-channels", "conv2d", (t(1, 4, 4, 5), t(3, 2, 3, 3)),
          r"weight.shape\[0\] \(out_channels=3\) to be a positive multiple of groups=2", groups=2),
    error("groups-not-dividing-in-channels", "conv3d", (t(1, 3, 3, 3, 3), t(4, 1, 2, 2, 2)),
          r"expected input with 2 channels \(weight.shape\[1\]=1 × groups=2\)", groups=2),
    error("transpose-groups-not-dividing-in-channels", "conv_transpose1d", (t(1, 3, 4), t(3, 3, 3)),
          r"weight.shape\[0\] \(in_channels=3\) to be a positive multiple of groups=2", groups=2),
    error("groups-above-out-channels", "conv1d", (t(2, 2, 4), t(2, 2, 2)), r"positive multiple of groups=3", groups=3),
    error("weight-without-out-channels", "conv2d", (t(1, 2, 4, 5), t(0, 2, 3, 3)), r"out_channels=0\) to be a positive multiple"),
    error("transpose-weight-without-out-channels", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 0, 3, 3)),
          r"weight.shape\[1\] \(out_channels/groups\) to be positive"),
    error("groups-zero", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"expected groups to be a positive int, got 0", groups=0),
    error("groups-negative", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"groups to be a positive int, got -1", groups=-1),
    error("groups-bool", "conv1d", (t(1, 2, 4), t(2, 2, 3)), r"groups to be a positive int, got True", TypeError, groups=True),
    # stride, dilation, padding, output_padding
    error("stride-zero", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"expected stride to be positive, got \(0, 0\)", stride=0),
    error("stride-negative", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride to be positive", stride=(1, -1)),
    error("stride-wrong-length", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride to be an int or a tuple of 2 ints",
          stride=(1, 1, 1)),
    error("dilation-zero", "conv3d", (t(1, 2, 4, 4, 4), t(2, 2, 3, 3, 3)), r"dilation to be positive, got \(1, 0, 1\)",
          dilation=(1, 0, 1)),
    error("transpose-dilation-zero", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"dilation to be positive", dilation=0),
    error("padding-negative", "conv1d", (t(1, 2, 4), t(2, 2, 3)), r"padding to be non-negative, got \(-1,\)", padding=-1),
    error("transpose-padding-negative", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"padding to be non-negative",
          padding=(0, -1)),
    error("padding-wrong-length", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"padding to be an int or a tuple of 2 ints",
          padding=(1, 1, 1)),
    error("padding-bad-string", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"padding to be 'same', 'valid', an int .* 'full'",
          padding="full"),
    error("transpose-padding-string", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3)), r"padding to be an int or a tuple",
          TypeError, padding="same"),
    error("same-with-stride", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"padding='same' is not supported for strided",
          padding="same", stride=(1, 2)),
    error("output-padding-negative", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3)), r"output_padding to be non-negative",
          output_padding=-1),
    error("output-padding-equals-stride", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)),
          r"output_padding to be smaller than either stride or dilation", stride=2, output_padding=(1, 2)),
    error("output-padding-default-stride", "conv_transpose3d", (t(1, 2, 2, 2, 2), t(2, 2, 2, 2, 2)),
          r"output_padding to be smaller than either stride or dilation", output_padding=1),
    # sizes
    error("kernel-larger-than-input", "conv2d", (t(1, 2, 4, 5), t(2, 2, 5, 3)),
          r"padded input size \(4, 5\) to be at least the dilated kernel size \(5, 3\)"),
    error("dilated-kernel-larger-than-padded-input", "conv1d", (t(1, 2, 4), t(2, 2, 3)),
          r"padded input size \(6,\) to be at least the dilated kernel size \(7,\)", padding=1, dilation=3),
    error("transpose-output-too-small", "conv_transpose2d", (t(1, 2, 1, 1), t(2, 2, 1, 1)),
          r"calculated output size \(-1, -1\) is too small", padding=1),
    # dtypes and devices
    error("bool-input", "conv2d", (t(1, 2, 4, 5, dtype=torch.bool), t(2, 2, 3, 3, dtype=torch.bool)),
          r"expected input to have a floating-point, complex or integer dtype, got torch.bool", NotImplementedError),
    error("transpose-int32-input", "conv_transpose1d", (t(1, 2, 4, dtype=torch.int32), t(2, 2, 3, dtype=torch.int32)),
          r"expected input to have a floating-point or complex dtype or int64", NotImplementedError),
    error("weight-dtype-mismatch", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3, dtype=torch.float64)),
          r"expected weight to have the same dtype as input \(torch.float32\), got torch.float64"),
    error("transpose-weight-dtype-mismatch", "conv_transpose1d", (t(1, 2, 4, dtype=torch.float64), t(2, 2, 3)),
          r"weight to have the same dtype as input"),
    error("bias-dtype-mismatch", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3), t(2, dtype=torch.float64)),
          r"expected bias to have the same dtype as input"),
    error("transpose-bias-dtype-mismatch", "conv_transpose2d", (t(1, 2, 4, 5), t(2, 2, 3, 3), t(2, dtype=torch.float64)),
          r"bias to have the same dtype", None),
    error("bias-wrong-size", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3), t(3)),
          r"expected bias to be 1-D with 2 elements \(out_channels\), got size \[3\]"),
    error("bias-2d", "conv3d", (t(1, 2, 3, 3, 3), t(2, 2, 2, 2, 2), t(2, 1)), r"bias to be 1-D with 2 elements"),
    error("transpose-bias-wrong-size", "conv_transpose1d", (t(1, 2, 4), t(2, 3, 3), t(2)),
          r"bias to be 1-D with 6 elements", groups=2),
    error("weight-on-other-device", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3, device="meta")),
          r"expected weight to be on the same device as input", None),
    error("bias-on-other-device", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3), t(2, device="meta")),
          r"expected bias to be on the same device as input", None),
]


@pytest.mark.parametrize("op,args,kwargs,match,torch_raises", ERRORS)
def test_rejected_with_argument_error(op, args, kwargs, match, torch_raises):
    with no_native_ops() as recorded, pytest.raises(torchconv_impl.ArgumentError, match=match) as raised:
        getattr(F, op)(*args, **kwargs)
    assert isinstance(raised.value, RuntimeError) and isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(f"{op}: ")
    assert recorded.ops == [], "arguments must be checked before any tensor op runs"
    if torch_raises is not None:
        with pytest.raises(torch_raises):
            getattr(TF, op)(*args, **kwargs)


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
    ours = getattr(ours_nn, name)(2, 3, 3, stride=2, device=DEVICE)
    theirs = getattr(torch.nn, name)(2, 3, 3, stride=2, device=DEVICE)
    input = t(*input_shape)
    with pytest.raises(torchconv_impl.ArgumentError, match=match) as raised:
        ours(input, output_size=output_size)
    assert str(raised.value).startswith(f"{name}: ")
    with pytest.raises(ValueError, match=match):
        theirs(input, output_size=output_size)


def test_module_rejects_what_functional_rejects():
    """Modules go through the functional checks: a wrongly shaped input is named as such."""
    with pytest.raises(torchconv_impl.ArgumentError, match=r"conv2d: expected input with 3 channels"):
        ours_nn.Conv2d(3, 4, 2, device=DEVICE)(t(1, 2, 5, 5))
