"""conv1d/2d/3d and conv_transpose1d/2d/3d with torch.nn.functional's signatures.

All argument checking happens here, before any compute; the autograd Functions in
``torchconv_impl.autograd.conv`` receive only valid, explicit geometry.
"""
from __future__ import annotations

import torch

from .. import backends
from .._geometry import ConvGeometry, ntuple, same_padding
from ..autograd.conv import Convolution, ConvolutionTranspose
from ..errors import ArgumentTypeError, check
from ._autocast import lower_precision
from ._checks import (
    COMPLEX, FLOAT, INTEGER, check_dtype, check_float, check_input_dim, check_same_dtype_device, check_tensor, is_int,
    non_negative, positive,
)

# The dtypes torch's CPU convolutions compute: its transposed convolutions take int64 alone
# of the integer dtypes.
CONV_DTYPES = FLOAT | COMPLEX | INTEGER
CONV_TRANSPOSE_DTYPES = FLOAT | COMPLEX | {torch.int64}


def _check_operands(input, weight, bias, nd: int, op: str, weight_layout: str, dtypes, expected_dtype: str) -> bool:
    batched = check_input_dim(input, nd, op)
    check_tensor(weight, "weight", op)
    check_tensor(bias, "bias", op, optional=True)
    check(
        weight.dim() == nd + 2,
        lambda: f"{op}: expected weight to be {nd + 2}-D {weight_layout}, "
        f"got {weight.dim()}-D weight of size {list(weight.shape)}",
    )
    check(
        all(k > 0 for k in weight.shape[2:]),
        lambda: f"{op}: expected every kernel size (weight.shape[2:]) to be positive, got weight of size {list(weight.shape)}",
    )
    # As in torch: an empty input may be empty in its batch or channel dimension only.
    check(
        all(s > 0 for s in input.shape[-nd:]),
        lambda: f"{op}: expected input with a non-zero size in every spatial dimension, got input of size {list(input.shape)}",
    )
    check_dtype(input, "input", op, dtypes, expected_dtype)
    check_same_dtype_device(op, input=input, weight=weight, bias=bias)
    return batched


def _check_bias(bias, out_channels: int, op: str) -> None:
    if bias is not None:
        check(
            bias.dim() == 1 and bias.shape[0] == out_channels,
            lambda: f"{op}: expected bias to be 1-D with {out_channels} elements (out_channels), got size {list(bias.shape)}",
        )


def _check_groups(groups, op: str) -> None:
    message = lambda: f"{op}: expected groups to be a positive int, got {groups!r}"  # noqa: E731
    check(is_int(groups), message, ArgumentTypeError)
    check(groups > 0, message)


def _widened_for_complex32(function, input, weight, bias, *options):
    """``function(input, weight, bias, *options)``; complex32 operands are computed in complex64
    and the result cast back, since torch's matrix products have no complex32 kernel (torch's
    convolution computes complex32). Every other dtype goes straight through."""
    if input.dtype != torch.complex32:
        return function(input, weight, bias, *options)
    widened = (None if t is None else t.to(torch.complex64) for t in (input, weight, bias))
    return function(*widened, *options).to(torch.complex32)


def _conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, nd: int, op: str, activation=None):
    input, weight, bias = lower_precision(input, weight, bias)
    batched = _check_operands(
        input, weight, bias, nd, op, "(out_channels, in_channels/groups, *kernel_size)",
        CONV_DTYPES, "a floating-point, complex or integer dtype",
    )
    stride, dilation = ntuple(stride, nd, "stride", op), ntuple(dilation, nd, "dilation", op)
    positive(stride, "stride", op)
    positive(dilation, "dilation", op)
    _check_groups(groups, op)
    kernel_size = tuple(weight.shape[2:])
    if isinstance(padding, str):
        check(padding in ("same", "valid"), lambda: f"{op}: expected padding to be 'same', 'valid', an int or a tuple, got {padding!r}")
        if padding == "same":
            check(all(s == 1 for s in stride), lambda: f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            pads = same_padding(kernel_size, dilation)
        else:
            pads = ((0, 0),) * nd
    else:
        symmetric = ntuple(padding, nd, "padding", op)
        non_negative(symmetric, "padding", op)
        pads = tuple((p, p) for p in symmetric)
    out_channels = weight.shape[0]
    check(
        out_channels >= groups and out_channels % groups == 0,
        lambda: f"{op}: expected weight.shape[0] (out_channels={out_channels}) to be a positive multiple of groups={groups}",
    )
    channel_dim = 1 if batched else 0
    check(
        input.shape[channel_dim] == weight.shape[1] * groups,
        lambda: f"{op}: expected input with {weight.shape[1] * groups} channels (weight.shape[1]={weight.shape[1]} × groups={groups}), "
        f"got {input.shape[channel_dim]} channels in input of size {list(input.shape)}",
    )
    _check_bias(bias, out_channels, op)
    spatial = input.shape[channel_dim + 1:]
    padded = tuple(i + lo + hi for i, (lo, hi) in zip(spatial, pads))
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation))
    check(
        all(p >= e for p, e in zip(padded, extent)),
        lambda: f"{op}: expected the padded input size {padded} to be at least the dilated kernel size {extent} in every dimension",
    )
    geometry = ConvGeometry(stride=stride, padding=pads, dilation=dilation, groups=groups)
    x = input if batched else input.unsqueeze(0)
    output = _widened_for_complex32(Convolution.apply, x, weight, bias, geometry, backends.resolve(x), activation)
    return output if batched else output.squeeze(0)


def _conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *, nd: int, op: str):
    input, weight, bias = lower_precision(input, weight, bias)
    batched = _check_operands(
        input, weight, bias, nd, op, "(in_channels, out_channels/groups, *kernel_size)",
        CONV_TRANSPOSE_DTYPES, "a floating-point or complex dtype or int64",
    )
    stride, dilation = ntuple(stride, nd, "stride", op), ntuple(dilation, nd, "dilation", op)
    positive(stride, "stride", op)
    positive(dilation, "dilation", op)
    _check_groups(groups, op)
    check(not isinstance(padding, str), lambda: f"{op}: expected padding to be an int or a tuple, got {padding!r}", ArgumentTypeError)
    padding = ntuple(padding, nd, "padding", op)
    output_padding = ntuple(output_padding, nd, "output_padding", op)
    non_negative(padding, "padding", op)
    non_negative(output_padding, "output_padding", op)
    check(
        all(extra < s or extra < d for extra, s, d in zip(output_padding, stride, dilation)),
        lambda: f"{op}: expected output_padding to be smaller than either stride or dilation in every dimension, "
        f"got output_padding={output_padding}, stride={stride}, dilation={dilation}",
    )
    in_channels = weight.shape[0]
    check(
        in_channels >= groups and in_channels % groups == 0,
        lambda: f"{op}: expected weight.shape[0] (in_channels={in_channels}) to be a positive multiple of groups={groups}",
    )
    check(
        weight.shape[1] > 0,
        lambda: f"{op}: expected weight.shape[1] (out_channels/groups) to be positive, got weight of size {list(weight.shape)}",
    )
    channel_dim = 1 if batched else 0
    check(
        input.shape[channel_dim] == in_channels,
        lambda: f"{op}: expected input with {in_channels} channels (weight.shape[0]), "
        f"got {input.shape[channel_dim]} channels in input of size {list(input.shape)}",
    )
    _check_bias(bias, weight.shape[1] * groups, op)
    kernel_size = tuple(weight.shape[2:])
    spatial = input.shape[channel_dim + 1:]
    geometry = ConvGeometry(stride=stride, padding=tuple((p, p) for p in padding), dilation=dilation, groups=groups)
    output_size = geometry.transposed_output_size(spatial, kernel_size, output_padding)
    check(
        all(o > 0 for o in output_size),
        lambda: f"{op}: calculated output size {output_size} is too small for input size {tuple(spatial)} "
        f"(stride={stride}, padding={padding}, dilation={dilation}, kernel_size={kernel_size})",
    )
    x = input if batched else input.unsqueeze(0)
    output = _widened_for_complex32(ConvolutionTranspose.apply, x, weight, bias, geometry, output_size, backends.resolve(x))
    return output if batched else output.squeeze(0)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d correlation over (N, C, L) or (C, L); see ``torch.nn.functional.conv1d``."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, nd=1, op="conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d correlation over (N, C, H, W) or (C, H, W); see ``torch.nn.functional.conv2d``."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, nd=2, op="conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-d correlation over (N, C, D, H, W) or (C, D, H, W); see ``torch.nn.functional.conv3d``."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, nd=3, op="conv3d")


def conv_bias_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """relu(conv{1,2,3}d(input, weight, bias, ...)) as one operation: the Triton backend applies
    the bias and the ReLU in the convolution kernel's epilogue, without a second pass over the
    output. The dimension (1 to 3) follows from ``weight``; arguments as in ``conv2d``."""
    check_tensor(weight, "weight", "conv_bias_relu")
    check(
        3 <= weight.dim() <= 5,
        "conv_bias_relu: expected weight to be a 3-D, 4-D or 5-D Tensor (out_channels, in_channels/groups, *kernel_size)",
    )
    nd = weight.dim() - 2
    return _conv(input, weight, bias, stride, padding, dilation, groups, nd=nd, op="conv_bias_relu", activation="relu")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Adjoint of conv1d; see ``torch.nn.functional.conv_transpose1d``."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nd=1, op="conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Adjoint of conv2d; see ``torch.nn.functional.conv_transpose2d``."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nd=2, op="conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Adjoint of conv3d; see ``torch.nn.functional.conv_transpose3d``."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nd=3, op="conv_transpose3d")


def convolve(input, kernel, mode="full"):
    """True N-d convolution (kernel flipped), with ``scipy.signal.convolve``'s semantics.

    ``input`` and ``kernel`` are plain tensors with the same number of dimensions (1 to 3).
    ``mode``: 'full' (size S + k − 1), 'valid' (size max − min + 1; needs one operand at least
    as large as the other in every dimension) or 'same' (size S, centred on 'full', so an odd
    surplus goes on the *low* side — the mirror image of torch's correlation 'same').
    Differentiable in both arguments: it is ``Convolution`` applied to the flipped kernel.
    """
    op = "convolve"
    check_tensor(input, "input", op)
    check_tensor(kernel, "kernel", op)
    check(mode in ("full", "valid", "same"), lambda: f"{op}: expected mode to be 'full', 'valid' or 'same', got {mode!r}")
    check(
        input.dim() == kernel.dim() and 1 <= input.dim() <= 3,
        lambda: f"{op}: expected input and kernel with the same number of dimensions (1 to 3), got {input.dim()} and {kernel.dim()}",
    )
    check_float(input, "input", op)
    check_same_dtype_device(op, input=input, kernel=kernel)
    if mode == "valid":
        if all(k >= i for i, k in zip(input.shape, kernel.shape)):
            input, kernel = kernel, input  # convolution commutes; scipy swaps the same way
        check(
            all(i >= k for i, k in zip(input.shape, kernel.shape)),
            lambda: f"{op}: mode='valid' needs one of input {list(input.shape)} and kernel {list(kernel.shape)} "
            "to be at least as large as the other in every dimension",
        )
        padding = tuple((0, 0) for _ in kernel.shape)
    elif mode == "full":
        padding = tuple((k - 1, k - 1) for k in kernel.shape)
    else:
        padding = tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in kernel.shape)
    nd = kernel.dim()
    geometry = ConvGeometry(stride=(1,) * nd, padding=padding, dilation=(1,) * nd, groups=1)
    x, w = input[None, None], kernel.flip(list(range(nd)))[None, None]
    return Convolution.apply(x, w, None, geometry, backends.resolve(x), None)[0, 0]
