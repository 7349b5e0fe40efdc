"""Pooling as the seeds write it: a view of every window, then its max or its mean. Max pooling's
indices are torch's: a flat position in the input plane (N, C, *S), Σ_d i_d·∏_{e>d} S_e."""
import itertools

import torch

from ..._geometry import PoolGeometry, adaptive_window, prod
from .conv import col2im, pad, windows


def _lowest(dtype: torch.dtype):
    return -float("inf") if dtype.is_floating_point else torch.iinfo(dtype).min


def _scan_max(values: torch.Tensor, index: torch.Tensor):
    """(max, its index) over the last dim as torch scans a window: an element replaces the best if
    greater or NaN (so the first maximum wins, and the last NaN); padding (index −1) never does."""
    best = torch.full(values.shape[:-1], _lowest(values.dtype), dtype=values.dtype, device=values.device)
    best_index = torch.where(index >= 0, index, torch.iinfo(torch.long).max).amin(-1)  # all −∞: the first inside
    for value, at in zip(values.unbind(-1), index.unbind(-1)):
        better = ((value > best) | value.isnan()) & (at >= 0)
        best, best_index = torch.where(better, value, best), torch.where(better, at, best_index)
    return best, best_index


def max_pool_forward(input, geometry: PoolGeometry):
    """y[n, c, p] = max_j x[n, c, p·s − pad + j·d] over the window's in-bounds elements."""
    nd, padding = input.dim() - 2, geometry.window_padding(input.shape[2:])
    window = geometry.kernel_size, geometry.stride, geometry.dilation
    plane_index = torch.arange(prod(input.shape[2:]), device=input.device).view(1, 1, *input.shape[2:])  # torch's indices
    values = windows(pad(input, padding, _lowest(input.dtype)), *window).flatten(-nd)
    index = windows(pad(plane_index, padding, -1), *window).flatten(-nd)
    return _scan_max(values, index)


def _adaptive_windows(input_size, output_size):
    """(p, slices of torch's adaptive window p) for every output position p."""
    for p in itertools.product(*map(range, output_size)):
        yield p, [slice(*adaptive_window(q, i, o)) for q, i, o in zip(p, input_size, output_size)]


def adaptive_max_pool_forward(input, output_size):
    """y[n, c, p] = max over torch's adaptive window p, with max_pool_forward's index."""
    output = input.new_empty(*input.shape[:2], *output_size)
    plane_index = torch.arange(prod(input.shape[2:]), device=input.device).view(1, 1, *input.shape[2:])
    indices = torch.empty(output.shape, dtype=torch.long, device=input.device)
    for p, window in _adaptive_windows(input.shape[2:], output_size):
        output[(..., *p)], indices[(..., *p)] = _scan_max(input[(..., *window)].flatten(2), plane_index[(..., *window)].flatten(2))
    return output, indices


def max_pool_backward(grad_output, indices, input_size, windows):
    """dX[n, c, i] = Σ_{p : indices[n, c, p] = i} δ[n, c, p]: δ routed to each window's maximum
    (the indices say where; ``windows`` is not needed)."""
    grad_input = grad_output.new_zeros(*grad_output.shape[:2], prod(input_size))
    return grad_input.scatter_add_(2, indices.flatten(2), grad_output.flatten(2)).view(*grad_output.shape[:2], *input_size)


def max_unpool_forward(input, indices, output_size):
    """z[n, c, indices[n, c, p]] = x[n, c, p], zero elsewhere."""
    output = input.new_zeros(*input.shape[:2], prod(output_size))
    return output.scatter_(2, indices.flatten(2), input.flatten(2)).view(*input.shape[:2], *output_size)


def max_unpool_backward(grad_output, indices):
    """dX[n, c, p] = δ[n, c, indices[n, c, p]]."""
    return grad_output.flatten(2).gather(2, indices.flatten(2)).view(indices.shape)


def _divisor(input_size, geometry: PoolGeometry, count_include_pad, divisor_override, like):
    """``divisor_override``, else how many of the window's elements lie in the input (padded by p if count_include_pad)."""
    if divisor_override is not None:
        return divisor_override
    counted, padding = like.new_ones(1, 1, *input_size), geometry.window_padding(input_size)
    if count_include_pad:
        counted = pad(counted, [(p, p) for p in geometry.padding], value=1)
        padding = [(0, high - p) for (_, high), p in zip(padding, geometry.padding)]
    view = windows(pad(counted, padding), geometry.kernel_size, geometry.stride, geometry.dilation)
    return view.flatten(-len(input_size)).sum(-1)[0, 0]


def avg_pool_forward(input, geometry: PoolGeometry, count_include_pad, divisor_override):
    """y[n, c, p] = Σ_j x_pad[n, c, p·s + j] / divisor[p]."""
    input_size = input.shape[2:]
    view = windows(pad(input, geometry.window_padding(input_size)), geometry.kernel_size, geometry.stride, geometry.dilation)
    total = view.flatten(-len(input_size)).sum(-1)
    divisor = _divisor(input_size, geometry, count_include_pad, divisor_override, total)
    return total / divisor if total.is_floating_point() else torch.div(total, divisor, rounding_mode="trunc")


def avg_pool_backward(grad_output, input_size, geometry: PoolGeometry, count_include_pad, divisor_override):
    """dX_pad[p·s + j] += δ[p] / divisor[p] for every window p and offset j (col2im), padding cut away."""
    share = grad_output / _divisor(input_size, geometry, count_include_pad, divisor_override, grad_output)
    every_offset = share[(..., *(None,) * len(input_size))].expand(*share.shape, *geometry.kernel_size)
    padding = geometry.window_padding(input_size)
    padded_size = [i + low + high for i, (low, high) in zip(input_size, padding)]
    return pad(col2im(every_offset, padded_size, geometry.stride, geometry.dilation), [(-low, -high) for low, high in padding])


def adaptive_avg_pool_forward(input, output_size):
    """y[n, c, p] = the mean of torch's adaptive window p."""
    output = input.new_empty(*input.shape[:2], *output_size)
    for p, window in _adaptive_windows(input.shape[2:], output_size):
        output[(..., *p)] = input[(..., *window)].flatten(2).mean(-1)
    return output


def adaptive_avg_pool_backward(grad_output, input_size):
    """dX[n, c, window p] += δ[n, c, p] / |window p|: each mean's share to every element it averaged."""
    grad = grad_output.new_zeros(*grad_output.shape[:2], *input_size)
    for p, window in _adaptive_windows(input_size, grad_output.shape[2:]):
        share = grad_output[(..., *p)] / prod(w.stop - w.start for w in window)
        grad[(..., *window)] += share[(..., *(None,) * len(input_size))]
    return grad
