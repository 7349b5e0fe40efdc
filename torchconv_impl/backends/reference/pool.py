"""Pooling as the seeds write it: a view of every window, then its max or its mean.

x (N, C, *S) input, y (N, C, *P) output. Max pooling also returns where each maximum was:
torch's index, the flat position in the input plane, Σ_d i_d·∏_{e>d} S_e.
"""
from __future__ import annotations

import itertools

import torch

from ..._geometry import PoolGeometry, adaptive_window, prod
from .conv import col2im, pad, windows


def _lowest(dtype: torch.dtype):
    return -float("inf") if dtype.is_floating_point else torch.iinfo(dtype).min


def _plane_index(input_size, device) -> torch.Tensor:
    """(1, 1, *S): each input position's flat index in its plane."""
    return torch.arange(prod(input_size), device=device).view(1, 1, *input_size)


def _scan_max(values: torch.Tensor, index: torch.Tensor):
    """(max, its index) over the last dim, scanned as torch's kernels scan a window: an element
    replaces the best so far when it is greater or NaN (so the first maximum wins, and the
    last NaN); padding (index −1) never does. Where nothing replaced the start (all −∞),
    the index is the window's first in-bounds element."""
    best = torch.full(values.shape[:-1], _lowest(values.dtype), dtype=values.dtype, device=values.device)
    best_index = torch.where(index >= 0, index, torch.iinfo(torch.long).max).amin(-1)
    for j in range(values.shape[-1]):
        value, at = values[..., j], index[..., j]
        better = ((value > best) | value.isnan()) & (at >= 0)
        best, best_index = torch.where(better, value, best), torch.where(better, at, best_index)
    return best, best_index


def max_pool_forward(input, geometry: PoolGeometry):
    """y[n, c, p] = max_j x[n, c, p·s − pad + j·d] over the window's in-bounds elements."""
    nd, padding = input.dim() - 2, geometry.window_padding(input.shape[2:])
    window = geometry.kernel_size, geometry.stride, geometry.dilation
    values = windows(pad(input, padding, _lowest(input.dtype)), *window).flatten(-nd)
    index = windows(pad(_plane_index(input.shape[2:], input.device), padding, -1), *window).flatten(-nd)
    return _scan_max(values, index)


def adaptive_max_pool_forward(input, output_size):
    """y[n, c, p] = max over torch's adaptive window p, with max_pool_forward's index."""
    input_size, plane_index = input.shape[2:], _plane_index(input.shape[2:], input.device)
    output = input.new_empty(*input.shape[:2], *output_size)
    indices = torch.empty(output.shape, dtype=torch.long, device=input.device)
    for p in itertools.product(*map(range, output_size)):
        window = tuple(slice(*adaptive_window(q, i, o)) for q, i, o in zip(p, input_size, output_size))
        output[(..., *p)], indices[(..., *p)] = _scan_max(input[(..., *window)].flatten(2), plane_index[(..., *window)].flatten(2))
    return output, indices


def max_pool_backward(grad_output, indices, input_size):
    """dX[n, c, i] = Σ_{p : indices[n, c, p] = i} δ[n, c, p]: δ routed to each window's maximum."""
    n, c = grad_output.shape[:2]
    grad_input = grad_output.new_zeros(n, c, prod(input_size))
    return grad_input.scatter_add_(2, indices.flatten(2), grad_output.flatten(2)).view(n, c, *input_size)


def max_unpool_forward(input, indices, output_size):
    """z[n, c, indices[n, c, p]] = x[n, c, p], zero elsewhere."""
    n, c = input.shape[:2]
    output = input.new_zeros(n, c, prod(output_size))
    return output.scatter_(2, indices.flatten(2), input.flatten(2)).view(n, c, *output_size)


def max_unpool_backward(grad_output, indices):
    """dX[n, c, p] = δ[n, c, indices[n, c, p]]."""
    return grad_output.flatten(2).gather(2, indices.flatten(2)).view(indices.shape)


def _divisor(input_size, geometry: PoolGeometry, count_include_pad, divisor_override, like):
    """torch's divisor per window: ``divisor_override``, else how many of the window's elements
    lie in the input — or, with count_include_pad, in the input padded by p."""
    if divisor_override is not None:
        return divisor_override
    counted = torch.ones(1, 1, *input_size, dtype=like.dtype, device=like.device)
    if count_include_pad:
        counted = pad(counted, [(p, p) for p in geometry.padding], value=1)
        padding = [(0, high - p) for (_, high), p in zip(geometry.window_padding(input_size), geometry.padding)]
    else:
        padding = geometry.window_padding(input_size)
    view = windows(pad(counted, padding), geometry.kernel_size, geometry.stride, geometry.dilation)
    return view.sum(list(range(-len(input_size), 0)))[0, 0]


def avg_pool_forward(input, geometry: PoolGeometry, count_include_pad, divisor_override):
    """y[n, c, p] = Σ_j x_pad[n, c, p·s + j] / divisor[p]."""
    input_size = input.shape[2:]
    view = windows(pad(input, geometry.window_padding(input_size)), geometry.kernel_size, geometry.stride, geometry.dilation)
    total = view.sum(list(range(-len(input_size), 0)))
    divisor = _divisor(input_size, geometry, count_include_pad, divisor_override, total)
    return total / divisor if total.is_floating_point() else torch.div(total, divisor, rounding_mode="trunc")


def avg_pool_backward(grad_output, input_size, geometry: PoolGeometry, count_include_pad, divisor_override):
    """dX_pad[p·s + j] += δ[p] / divisor[p] for every window p and offset j: each window's share
    goes back to every element it averaged (col2im); then the padding is cut away."""
    share = grad_output / _divisor(input_size, geometry, count_include_pad, divisor_override, grad_output)
    every_offset = share[(..., *(None,) * len(input_size))].expand(*share.shape, *geometry.kernel_size)
    padding = geometry.window_padding(input_size)
    padded_size = [i + low + high for i, (low, high) in zip(input_size, padding)]
    return pad(col2im(every_offset, padded_size, geometry.stride, geometry.dilation), [(-low, -high) for low, high in padding])


def _averaging_matrix(input_length: int, output_length: int, like: torch.Tensor) -> torch.Tensor:
    """A (O × L): A[p, l] = 1/|window p| for l in torch's adaptive window p, else 0."""
    start, end = adaptive_window(torch.arange(output_length, device=like.device), input_length, output_length)
    position = torch.arange(input_length, device=like.device)
    inside = (position >= start.unsqueeze(1)) & (position < end.unsqueeze(1))
    return inside.to(like.dtype) / (end - start).unsqueeze(1).to(like.dtype)


def _along_each_dim(t: torch.Tensor, matrices) -> torch.Tensor:
    """t ×_d M_d: each spatial dim d of t multiplied by its matrix M_d."""
    for d, matrix in enumerate(matrices):
        t = (t.movedim(2 + d, -1) @ matrix.T).movedim(-1, 2 + d)
    return t


def adaptive_avg_pool_forward(input, output_size):
    """y = x ×_d A_d: averaging separates into one matrix product per spatial dim."""
    return _along_each_dim(input, [_averaging_matrix(i, o, input) for i, o in zip(input.shape[2:], output_size)])


def adaptive_avg_pool_backward(grad_output, input_size):
    """dX = δ ×_d A_dᵀ, the adjoint of the forward."""
    return _along_each_dim(grad_output, [_averaging_matrix(i, o, grad_output).T for i, o in zip(input_size, grad_output.shape[2:])])
