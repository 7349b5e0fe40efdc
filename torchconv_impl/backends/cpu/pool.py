"""The CPU engine's pooling: every pooling computation of the backend seam, N-d, tuned for CPUs
(per-offset planes in a scratch buffer, an argmax by float arithmetic, cached index tables).

Adaptive windows, per dim (torch's): output i of O over an input of length L covers
[⌊i·L/O⌋, ⌈(i+1)·L/O⌉). A_d is the (O × L) averaging matrix of those windows.
"""
from __future__ import annotations

import functools
import itertools

import torch

from ..._geometry import ConvGeometry, PoolGeometry, adaptive_window, longest_adaptive_window, prod
from ._strided import all_finite, offset_starts, offset_steps, pad, plane_strides, scratch, windows

__all__ = [
    "max_pool_forward",
    "max_pool_backward",
    "max_unpool_forward",
    "max_unpool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "adaptive_avg_pool_forward",
    "adaptive_avg_pool_backward",
    "adaptive_max_pool_forward",
]


def _window_geometry(input_size, geometry: PoolGeometry) -> ConvGeometry:
    """The geometry that makes ``windows`` cut exactly the pooling's windows."""
    return ConvGeometry(geometry.stride, geometry.window_padding(input_size), geometry.dilation, groups=1)


def _lowest(dtype: torch.dtype):
    return -float("inf") if dtype.is_floating_point else torch.iinfo(dtype).min


def _flatten_windows(t: torch.Tensor, nd: int) -> torch.Tensor:
    """(…, *P, *k) → (…, *P, K): one window per row."""
    return t.reshape(*t.shape[: t.dim() - nd], prod(t.shape[t.dim() - nd:]))


def _select_max(values: torch.Tensor, index: torch.Tensor):
    """Max over the last dim of ``values`` (…, K) with torch's argmax, as (output, indices).

    ``index`` (broadcastable to ``values``) is each element's flat input index, −1 for padding.
    torch scans a window keeping the maximum by ``v > best or isnan(v)``: the first maximum
    wins, but every NaN met replaces the best. So rank NaNs by position (the last wins) above
    in-bounds maxima ranked by reverse position (the first wins); one argmax picks the winner.
    """
    values = torch.where(index >= 0, values, _lowest(values.dtype))
    k = values.shape[-1]
    position = torch.arange(k, device=values.device)
    is_max = (values == values.amax(-1, keepdim=True)) & (index >= 0)
    rank = torch.where(values.isnan(), k + position, torch.where(is_max, k - position, 0))
    winner = rank.argmax(-1, keepdim=True)
    # The winner's own value: torch's, down to the sign of a zero among equal maxima.
    output = values.gather(-1, winner).squeeze(-1)
    indices = index.expand(values.shape).gather(-1, winner).squeeze(-1)
    return output, indices


def max_pool_forward(input, geometry: PoolGeometry):
    """y[n, c, p] = max_j x_pad[n, c, p·s + j·d] over the window's in-bounds elements, with
    torch's argmax: the first maximum in scan order (row-major over the kernel offsets j), or
    the last NaN if the window has one; padding never wins, and a window of −∞ alone reports
    its first in-bounds element.

    One copy first gathers every kernel offset's elements — a strided view of the padded input
    — into K contiguous planes of a scratch buffer (``_offset_planes``); the running maximum
    and the argmax then read contiguous memory, about twice as fast on CPU as K strided views
    each (measured on LeNet's 2×2 pools). Padding reads as the lowest value. When every
    window's maximum is finite — the usual case — the argmax is the first offset whose element
    equals it, found by float arithmetic alone (``_first_maximum_index``): on CPU, ops that
    read a bool mask (``where``, ``masked_fill``) run some 30× slower than float arithmetic.
    Other inputs take torch's scan rule literally (``_scan_max``).

    A flat input index splits into a window's part and an offset's part,
    Σ_d (p_d·s_d − pad_d + j_d·dil_d)·S_{>d} = window_start[p] + offset_index[j].
    """
    input_size = tuple(input.shape[2:])
    kernel_size, stride, padding, dilation = geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation
    output_size = geometry.output_size(input_size)
    index_key = (input_size, output_size, kernel_size, stride, padding, dilation, input.device)
    planes = _offset_planes(input, geometry, output_size)
    per_offset = planes.unbind()
    best = per_offset[0].clone()
    for value in per_offset[1:]:
        torch.maximum(best, value, out=best)
    if input.is_floating_point() and all_finite(best):
        # Every candidate's magnitude is below ∏(S + 2·pad + window extent + s): exact in float32 up to 2²⁴.
        reach = prod(i + 2 * p + d * (k - 1) + 1 + s for i, p, d, k, s in zip(input_size, padding, dilation, kernel_size, stride))
        exact = torch.float64 if input.dtype == torch.float64 or reach > 2**24 else torch.float32
        return best, _first_maximum_index(best, per_offset, _index_candidates(*index_key, exact)).long()
    return _scan_max(per_offset, *_flat_index_parts(*index_key), input_size, kernel_size, stride, padding, dilation)


def _offset_planes(input, geometry: PoolGeometry, output_size) -> torch.Tensor:
    """x_pad[n, c, p·s + j·dil] as (K, N, C, *P): one contiguous plane per kernel offset j
    (row-major), copied in one pass from a strided view of the input padded with its dtype's
    lowest value; in the scratch buffer, valid until the next call in the same thread.

    The high side is padded only as far as ceil mode's last window reaches (never cropped: a
    view simply stops short of a tail no window covers)."""
    x_pad = pad(input, [(lo, max(0, hi)) for lo, hi in geometry.window_padding(input.shape[2:])], value=_lowest(input.dtype))
    spatial_strides = x_pad.stride()[2:]
    view = x_pad.as_strided(
        (*geometry.kernel_size, *x_pad.shape[:2], *output_size),
        (*(d * t for d, t in zip(geometry.dilation, spatial_strides)), *x_pad.stride()[:2],
         *(s * t for s, t in zip(geometry.stride, spatial_strides))),
        x_pad.storage_offset(),
    )
    planes = scratch.get("planes", (prod(geometry.kernel_size), *x_pad.shape[:2], *output_size), like=input)
    planes.view(view.shape).copy_(view)
    return planes


@functools.lru_cache(maxsize=64)
def _flat_index_parts(input_size, output_size, kernel_size, stride, padding, dilation, device):
    """(window_start (*P), offset_index (K,)), int64: the two parts of a flat input index.
    Cached: a network pools the same shapes every step."""
    window_start = sum(
        ((torch.arange(o, device=device) * s - p) * stride_d).view(-1, *(1,) * (len(input_size) - 1 - d))
        for d, (o, s, p, stride_d) in enumerate(zip(output_size, stride, padding, plane_strides(input_size)))
    )
    offset_index = torch.tensor(offset_starts(kernel_size, tuple(offset_steps(input_size, dilation))), device=device)
    return window_start, offset_index


@functools.lru_cache(maxsize=64)
def _index_candidates(input_size, output_size, kernel_size, stride, padding, dilation, device, dtype):
    """window_start + offset_index[j] for each offset j: K planes (*P) of flat indices in ``dtype``."""
    window_start, offset_index = _flat_index_parts(input_size, output_size, kernel_size, stride, padding, dilation, device)
    return (window_start + offset_index.view(-1, *(1,) * window_start.dim())).to(dtype).unbind()


def _first_maximum_index(best: torch.Tensor, per_offset, candidates) -> torch.Tensor:
    """The flat input index of each window's first element equal to ``best``, its finite
    maximum, in the float dtype of ``candidates`` (offset j's flat indices, exact integers);
    ``per_offset`` holds the K offsets' elements x_j, each shaped like ``best``.

    With below_j = sign(best − x_j), 0 at the maximum and 1 below it (padding's −∞ included),
    scanning j from the last offset to the first, index ← lerp(candidate_j, index, below_j)
    keeps the first match: lerp gives exactly candidate_j for weight 0 and ``index`` for
    weight 1. Sign and lerp, not comparisons: ops reading or writing bool masks are several
    times slower on CPU. ``below`` is at least as precise as ``best``, so no difference of two
    distinct values rounds to 0.
    """
    if len(candidates) == 1:
        return candidates[0].expand(best.shape)
    below = torch.empty(best.shape, dtype=candidates[0].dtype, device=best.device)
    index = None  # candidate_{K−1} where no earlier offset matches
    for candidate, value in zip(reversed(candidates[:-1]), reversed(per_offset[:-1])):
        torch.sub(best, value, out=below).sign_()
        index = torch.lerp(candidate, candidates[-1], below) if index is None else torch.lerp(candidate, index, below, out=index)
    return index


def _scan_max(per_offset, window_start, offset_index, input_size, kernel_size, stride, padding, dilation):
    """torch's scan, literally: an element replaces the best so far when it is greater or NaN,
    so the first maximum wins and so does the last NaN. Padding reads as the lowest value and
    never replaces anything; the index starts at the window's first in-bounds element, which
    is what torch reports for a window of −∞ alone."""
    first_inside = 0
    for d, (i, o, k, s, p, dil) in enumerate(zip(input_size, window_start.shape, kernel_size, stride, padding, dilation)):
        # Along dim d, the first window offset whose coordinate p·s − pad + j·dil is ≥ 0.
        start = torch.arange(o, device=window_start.device) * s - p
        first_offset = torch.clamp(torch.div(-start + dil - 1, dil, rounding_mode="floor"), 0, k - 1)
        first_inside = first_inside * i + (start + first_offset * dil).view(-1, *(1,) * (len(input_size) - 1 - d))
    best = torch.full_like(per_offset[0], _lowest(per_offset[0].dtype))
    best_index = first_inside.expand(best.shape)
    for j, value in enumerate(per_offset):
        better = (value > best) | value.isnan()
        best_index = torch.where(better, window_start + offset_index[j], best_index)
        best = torch.maximum(best, value)  # = where(better, value, best), NaN included, but one fast pass
    return best, best_index


def _planes(t: torch.Tensor) -> torch.Tensor:
    """(N, C, *S) → (N, C, ∏S): one row per plane (explicit sizes: −1 is ambiguous for N = 0)."""
    return t.reshape(*t.shape[:2], prod(t.shape[2:]))


def max_pool_backward(grad_output, indices, input_size, windows):
    """dX[n, c, i] = Σ_{p : indices[n, c, p] = i} δ[n, c, p] — δ routed to each window's argmax
    (a scatter-add: ``windows`` is not needed)."""
    n, c = grad_output.shape[:2]
    grad_input = grad_output.new_zeros(n, c, prod(input_size))
    grad_input.scatter_add_(2, _planes(indices), _planes(grad_output))
    return grad_input.view(n, c, *input_size)


def max_unpool_forward(input, indices, output_size):
    """z[n, c, indices[n, c, p]] = x[n, c, p], zero elsewhere (a shared index keeps one value)."""
    n, c = input.shape[:2]
    output = input.new_zeros(n, c, prod(output_size))
    output.scatter_(2, _planes(indices), _planes(input))
    return output.view(n, c, *output_size)


def max_unpool_backward(grad_output, indices):
    """dX[n, c, p] = δ[n, c, indices[n, c, p]]."""
    return _planes(grad_output).gather(2, _planes(indices)).view(indices.shape)


def _avg_divisor(input_size, output_size, geometry: PoolGeometry, count_include_pad, divisor_override, like):
    """torch's divisor per window: ``divisor_override``, else the window's size clipped to the
    padded input (count_include_pad) or to the input. The clipped sizes are per-dim products,
    so the divisor is the outer product of one vector per dim."""
    if divisor_override is not None:
        return divisor_override
    divisor = torch.ones((), dtype=like.dtype, device=like.device)
    for i, o, k, s, p in zip(input_size, output_size, geometry.kernel_size, geometry.stride, geometry.padding):
        start = torch.arange(o, device=like.device) * s - p
        end = torch.clamp(start + k, max=i + p)
        count = end - start if count_include_pad else end.clamp(max=i) - start.clamp(min=0)
        divisor = divisor.unsqueeze(-1) * count.to(like.dtype)
    return divisor


def _divide(total, divisor):
    return total / divisor if total.is_floating_point() else torch.div(total, divisor, rounding_mode="trunc")


def avg_pool_forward(input, geometry: PoolGeometry, count_include_pad, divisor_override):
    """y[n, c, p] = Σ_j x_pad[n, c, p·s + j] / divisor[p]: the sum of each zero-padded window."""
    input_size = input.shape[2:]
    output_size = geometry.output_size(input_size)
    view = windows(input, geometry.kernel_size, _window_geometry(input_size, geometry))
    # One strided add per kernel offset: on CPU several times faster than reducing the
    # window dims of the strided view.
    offsets = itertools.product(*(range(k) for k in geometry.kernel_size))
    total = view[(..., *next(offsets))].clone()
    for offset in offsets:
        total += view[(..., *offset)]
    divisor = _avg_divisor(input_size, output_size, geometry, count_include_pad, divisor_override, total)
    return _divide(total, divisor)


def avg_pool_backward(grad_output, input_size, geometry: PoolGeometry, count_include_pad, divisor_override):
    """dX_pad[n, c, p·s + j] += δ[n, c, p] / divisor[p] for every kernel offset j: each window
    receives δ/divisor on all its elements (transposed windowing, one strided add per offset),
    then the padding is cut away."""
    output_size = grad_output.shape[2:]
    kernel_size, stride, padding = geometry.kernel_size, geometry.stride, geometry.padding
    share = grad_output / _avg_divisor(input_size, output_size, geometry, count_include_pad, divisor_override, grad_output)
    extent = [(o - 1) * s + k for o, s, k in zip(output_size, stride, kernel_size)]
    grad_padded = grad_output.new_zeros(*grad_output.shape[:2], *extent)
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        grad_padded[(..., *(slice(j, j + (o - 1) * s + 1, s) for j, o, s in zip(offset, output_size, stride)))] += share
    return pad(grad_padded, [(-p, i + p - e) for i, p, e in zip(input_size, padding, extent)])


def _adaptive_bounds(input_length: int, output_length: int, device):
    """(start, end) tensors of torch's O adaptive windows over one dim."""
    return adaptive_window(torch.arange(output_length, device=device), input_length, output_length)


def _averaging_matrix(input_length: int, output_length: int, like: torch.Tensor) -> torch.Tensor:
    """A (O × L): A[i, l] = 1/|window i| for l in window i, else 0."""
    start, end = _adaptive_bounds(input_length, output_length, like.device)
    l = torch.arange(input_length, device=like.device)
    inside = (l >= start.unsqueeze(1)) & (l < end.unsqueeze(1))
    return inside.to(like.dtype) / (end - start).unsqueeze(1).to(like.dtype)


def _apply_per_dim(t: torch.Tensor, matrices) -> torch.Tensor:
    """t ×_d M_d for each spatial dim d: contracts dim 2+d of t with the columns of M_d."""
    for d, matrix in enumerate(matrices):
        t = torch.matmul(t.movedim(2 + d, -1), matrix.transpose(0, 1)).movedim(-1, 2 + d)
    return t


def adaptive_avg_pool_forward(input, output_size):
    """y = x ×_d A_d: averaging is separable, one matrix product per spatial dim."""
    return _apply_per_dim(input, [_averaging_matrix(i, o, input) for i, o in zip(input.shape[2:], output_size)])


def adaptive_avg_pool_backward(grad_output, input_size):
    """dX = δ ×_d A_dᵀ (the forward is linear; its adjoint transposes each A_d)."""
    matrices = [_averaging_matrix(i, o, grad_output).transpose(0, 1) for i, o in zip(input_size, grad_output.shape[2:])]
    return _apply_per_dim(grad_output, matrices)


def adaptive_max_pool_forward(input, output_size):
    """y[n, c, p] = max over adaptive window p, with max_pool_forward's index rule.

    The windows differ in length, so they are gathered: per dim a table (O × K) of input
    positions start + j, K the longest window, and positions past a window's end marked −1.
    """
    nd, input_size = len(output_size), input.shape[2:]
    if prod(output_size) == 0:
        empty = input.new_empty(*input.shape[:2], *output_size)
        return empty, empty.long()
    values, index = input, torch.zeros((), dtype=torch.long, device=input.device)
    valid = torch.ones((), dtype=torch.bool, device=input.device)
    for d, (length, o) in enumerate(zip(input_size, output_size)):
        start, end = _adaptive_bounds(length, o, input.device)
        position = start.unsqueeze(1) + torch.arange(longest_adaptive_window(length, o), device=input.device)
        inside = position < end.unsqueeze(1)
        position = position.clamp(max=length - 1)
        # (O_1, K_1, …, O_d, K_d) ⊗ (O_{d+1}, K_{d+1}): the tables of later dims go last.
        values = values.index_select(2 + 2 * d, position.flatten()).unflatten(2 + 2 * d, position.shape)
        index = index.unsqueeze(-1).unsqueeze(-1) * length + position
        valid = valid.unsqueeze(-1).unsqueeze(-1) & inside
    # (…, O_1, K_1, …, O_n, K_n) → (…, O_1, …, O_n, K_1·…·K_n)
    order = [2 * d for d in range(nd)] + [2 * d + 1 for d in range(nd)]
    values = _flatten_windows(values.permute(0, 1, *(2 + i for i in order)), nd)
    index = _flatten_windows(torch.where(valid, index, -1).permute(*order), nd)
    return _select_max(values, index)
