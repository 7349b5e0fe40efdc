"""Pooling with torch.nn.functional's signatures: max, max-unpool, avg, adaptive avg/max; 1/2/3-d.

All argument checking happens here, before any compute, with torch's rules (what torch
accepts, we accept; what it rejects, we reject with an ArgumentError naming the argument):
stride None or [] means the kernel size; padding at most half the kernel (p ≤ k // 2, whatever
the dilation); ceil mode never starts a window in the right padding; inputs are (N, C, *S) or
unbatched (C, *S), a zero batch allowed but no empty channel/spatial dims (adaptive avg
pooling allows zero channels). Max pooling and unpooling take float and integer inputs, avg
pooling float and int64 (as torch's CPU kernels), adaptive pooling float; other dtypes raise
NotImplementedError, as torch's kernels do.
"""
from __future__ import annotations

import torch

from .. import backends
from .._geometry import PoolGeometry, ntuple, prod
from ..autograd.pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, MaxPool, MaxUnpool
from ..errors import ArgumentError, ArgumentIndexError, ArgumentTypeError, check
from ._autocast import float32_for
from ._checks import (
    FLOAT, INTEGER, check_dtype, check_float, check_input_dim, check_tensor, is_int, non_negative, positive,
    values_readable,
)


def _check_input(input, nd: int, op: str, *, empty_channels: bool = False, too_few: type[ArgumentError] = ArgumentError) -> bool:
    """Batched or unbatched input with non-empty non-batch dims; returns whether batched."""
    batched = check_input_dim(input, nd, op, too_few=too_few)
    spatial = input.shape[-nd:]
    channels = input.shape[-nd - 1]
    check(
        all(s > 0 for s in spatial) and (empty_channels or channels > 0),
        lambda: f"{op}: expected input with non-zero {'spatial' if empty_channels else 'channel and spatial'} sizes "
        f"(only the batch may be empty), got input of size {list(input.shape)}",
    )
    return batched


def _check_real(input, op: str) -> None:
    check_dtype(input, "input", op, FLOAT | INTEGER, "a floating-point or integer dtype")


def _check_avg_dtype(input, op: str) -> None:
    check_dtype(input, "input", op, FLOAT | {torch.int64}, "a floating-point dtype or int64")


def _is_empty_sequence(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 0


def _window(kernel_size, stride, padding, dilation, nd: int, op: str):
    """Explicit (kernel_size, stride, padding, dilation) tuples; stride None or [] is the kernel."""
    kernel_size = ntuple(kernel_size, nd, "kernel_size", op)
    positive(kernel_size, "kernel_size", op)
    if stride is None or _is_empty_sequence(stride):
        stride = kernel_size
    else:
        stride = ntuple(stride, nd, "stride", op)
        positive(stride, "stride", op)
    padding = ntuple(padding, nd, "padding", op)
    non_negative(padding, "padding", op)
    check(
        all(p <= k // 2 for p, k in zip(padding, kernel_size)),
        lambda: f"{op}: expected padding to be at most half the kernel size (padding <= kernel_size // 2), "
        f"got padding={padding}, kernel_size={kernel_size}",
    )
    dilation = ntuple(dilation, nd, "dilation", op)
    positive(dilation, "dilation", op)
    return kernel_size, stride, padding, dilation


def _check_pooled_size(input, geometry: PoolGeometry, op: str) -> None:
    spatial = tuple(input.shape[-len(geometry.kernel_size):])
    output_size = geometry.output_size(spatial)
    check(
        all(o > 0 for o in output_size),
        lambda: f"{op}: input of spatial size {spatial} is too small: calculated output size {output_size} "
        f"(kernel_size={geometry.kernel_size}, stride={geometry.stride}, padding={geometry.padding}, "
        f"dilation={geometry.dilation}, ceil_mode={geometry.ceil_mode})",
    )


def _batch(input: torch.Tensor, batched: bool) -> torch.Tensor:
    return input if batched else input.unsqueeze(0)


def _unbatch(outputs, batched: bool):
    return outputs if batched else tuple(t.squeeze(0) for t in outputs)


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, *, nd: int, op: str):
    (input,) = float32_for(op, input)
    batched = _check_input(input, nd, op)
    _check_real(input, op)
    geometry = PoolGeometry(*_window(kernel_size, stride, padding, dilation, nd, op), bool(ceil_mode))
    _check_pooled_size(input, geometry, op)
    x = _batch(input, batched)
    output, indices = _unbatch(MaxPool.apply(x, geometry, backends.resolve(x)), batched)
    return (output, indices) if return_indices else output


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-d max pooling over (N, C, L) or (C, L); see ``torch.nn.functional.max_pool1d``."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd=1, op="max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-d max pooling over (N, C, H, W) or (C, H, W); see ``torch.nn.functional.max_pool2d``."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd=2, op="max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-d max pooling over (N, C, D, H, W) or (C, D, H, W); see ``torch.nn.functional.max_pool3d``."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd=3, op="max_pool3d")


def _unpool_size(input, kernel_size, stride, padding, output_size, nd: int, op: str) -> tuple[int, ...]:
    """torch's rule: default (S−1)·s + k − 2p per dim; a given output_size (nd or nd+2 ints, the
    last nd used) must lie strictly within one stride of it."""
    kernel_size = ntuple(kernel_size, nd, "kernel_size", op)
    stride = kernel_size if stride is None or _is_empty_sequence(stride) else ntuple(stride, nd, "stride", op)
    padding = ntuple(padding, nd, "padding", op)
    default = tuple((i - 1) * s + k - 2 * p for i, s, k, p in zip(input.shape[-nd:], stride, kernel_size, padding))
    if output_size is None:
        size = default
    else:
        check(
            isinstance(output_size, (tuple, list, torch.Size)) and all(is_int(o) for o in output_size),
            lambda: f"{op}: expected output_size to be a sequence of {nd} or {nd + 2} ints, got {output_size!r}",
            ArgumentTypeError,
        )
        check(
            len(output_size) in (nd, nd + 2),
            lambda: f"{op}: expected output_size to be a sequence of {nd} or {nd + 2} ints, got {output_size!r}",
        )
        size = tuple(output_size)[-nd:]
        check(
            all(d - s < o < d + s for o, d, s in zip(size, default, stride)),
            lambda: f"{op}: expected output_size {size} to be within one stride {stride} of the default size {default} "
            f"(strictly between default − stride and default + stride)",
        )
    check(all(o >= 0 for o in size), lambda: f"{op}: expected a non-negative output size, got {size}")
    return size


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, *, nd: int, op: str):
    (input,) = float32_for(op, input)
    batched = _check_input(input, nd, op)
    _check_real(input, op)
    check_tensor(indices, "indices", op)
    check(indices.dtype == torch.int64, lambda: f"{op}: expected indices to be an int64 tensor, got {indices.dtype}")
    check(
        indices.shape == input.shape,
        lambda: f"{op}: expected indices of the input's size {list(input.shape)}, got {list(indices.shape)}",
    )
    check(indices.device == input.device, lambda: f"{op}: expected indices on the input's device ({input.device}), got {indices.device}")
    size = _unpool_size(input, kernel_size, stride, padding, output_size, nd, op)
    if indices.numel() and values_readable(indices):
        low, high = int(indices.min()), int(indices.max())
        check(
            low >= 0 and high < prod(size),
            lambda: f"{op}: expected indices in [0, {prod(size)}) (flat positions in an output plane of size {size}), "
            f"got values in [{low}, {high}]",
        )
    x, idx = _batch(input, batched), _batch(indices, batched)
    (output,) = _unbatch((MaxUnpool.apply(x, idx, size, backends.resolve(x)),), batched)
    return output


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool1d; see ``torch.nn.functional.max_unpool1d``."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, nd=1, op="max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool2d; see ``torch.nn.functional.max_unpool2d``."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, nd=2, op="max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool3d; see ``torch.nn.functional.max_unpool3d``."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, nd=3, op="max_unpool3d")


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, *, nd: int, op: str):
    (input,) = float32_for(op, input)
    # torch's avg_pool2d indexes the input's third-last dim before checking its rank.
    batched = _check_input(input, nd, op, too_few=ArgumentIndexError if nd == 2 else ArgumentError)
    _check_avg_dtype(input, op)
    geometry = PoolGeometry(*_window(kernel_size, stride, padding, 1, nd, op), bool(ceil_mode))
    if divisor_override is not None:
        message = lambda: f"{op}: expected divisor_override to be None or a non-zero int, got {divisor_override!r}"  # noqa: E731
        check(is_int(divisor_override), message, ArgumentTypeError)
        check(divisor_override != 0, message)
    _check_pooled_size(input, geometry, op)
    x = _batch(input, batched)
    output = AvgPool.apply(x, geometry, bool(count_include_pad), divisor_override, backends.resolve(x))
    return output if batched else output.squeeze(0)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-d average pooling over (N, C, L) or (C, L); see ``torch.nn.functional.avg_pool1d``."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, nd=1, op="avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """2-d average pooling over (N, C, H, W) or (C, H, W); see ``torch.nn.functional.avg_pool2d``."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd=2, op="avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """3-d average pooling over (N, C, D, H, W) or (C, D, H, W); see ``torch.nn.functional.avg_pool3d``."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd=3, op="avg_pool3d")


def _adaptive_size(input, output_size, nd: int, op: str) -> tuple[int, ...]:
    """An int, or nd entries each an int or None (None: keep that input size)."""
    if is_int(output_size):
        output_size = (output_size,) * nd
    check(
        isinstance(output_size, (tuple, list, torch.Size)) and all(o is None or is_int(o) for o in output_size),
        lambda: f"{op}: expected output_size to be an int or a tuple of {nd} ints or Nones, got {output_size!r}",
        ArgumentTypeError,
    )
    check(
        len(output_size) == nd,
        lambda: f"{op}: expected output_size to be an int or a tuple of {nd} ints or Nones, got {output_size!r}",
    )
    size = tuple(i if o is None else o for o, i in zip(output_size, input.shape[-nd:]))
    check(all(o >= 0 for o in size), lambda: f"{op}: expected output_size to be non-negative, got {size}")
    return size


def _adaptive_args(input, output_size, nd: int, op: str, *, empty_channels: bool):
    """The checked, batched input, the explicit output size, and whether the input was batched."""
    batched = _check_input(input, nd, op, empty_channels=empty_channels)
    check_float(input, "input", op)
    return _batch(input, batched), _adaptive_size(input, output_size, nd, op), batched


def _adaptive_avg_pool(input, output_size, *, nd: int, op: str):
    (input,) = float32_for(op, input)
    x, size, batched = _adaptive_args(input, output_size, nd, op, empty_channels=True)
    output = AdaptiveAvgPool.apply(x, size, backends.resolve(x))
    return output if batched else output.squeeze(0)


def _adaptive_max_pool(input, output_size, return_indices, *, nd: int, op: str):
    (input,) = float32_for(op, input)
    x, size, batched = _adaptive_args(input, output_size, nd, op, empty_channels=False)
    output, indices = _unbatch(AdaptiveMaxPool.apply(x, size, backends.resolve(x)), batched)
    return (output, indices) if return_indices else output


def adaptive_avg_pool1d(input, output_size):
    """1-d adaptive average pooling; see ``torch.nn.functional.adaptive_avg_pool1d``."""
    return _adaptive_avg_pool(input, output_size, nd=1, op="adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    """2-d adaptive average pooling; see ``torch.nn.functional.adaptive_avg_pool2d``."""
    return _adaptive_avg_pool(input, output_size, nd=2, op="adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    """3-d adaptive average pooling; see ``torch.nn.functional.adaptive_avg_pool3d``."""
    return _adaptive_avg_pool(input, output_size, nd=3, op="adaptive_avg_pool3d")


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """1-d adaptive max pooling; see ``torch.nn.functional.adaptive_max_pool1d``."""
    return _adaptive_max_pool(input, output_size, return_indices, nd=1, op="adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """2-d adaptive max pooling; see ``torch.nn.functional.adaptive_max_pool2d``."""
    return _adaptive_max_pool(input, output_size, return_indices, nd=2, op="adaptive_max_pool2d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """3-d adaptive max pooling; see ``torch.nn.functional.adaptive_max_pool3d``."""
    return _adaptive_max_pool(input, output_size, return_indices, nd=3, op="adaptive_max_pool3d")


__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
]  # fmt: skip
