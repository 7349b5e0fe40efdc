"""Convolution as the seeds write it: im2col, one matrix product, col2im.

x (N, C, *S) input, W (O, C/G, *k) kernel, y (N, O, *P) output, G groups, K = ∏k offsets.
The im2col matrix holds, for every output position p, the window x_pad[p·s + j·d] (over
channels c and kernel offsets j) as one row: cols (N, G, ∏P, C/G·K). Then per group
y_g = cols_g · W_gᵀ, one matrix product.
"""
from __future__ import annotations

import itertools

import torch

from ..._geometry import ConvGeometry, prod


def pad(x: torch.Tensor, padding, value=0) -> torch.Tensor:
    """``x`` padded with ``value`` by a (low, high) pair per spatial dim; a negative pair crops."""
    return torch.nn.functional.pad(x, [p for pair in reversed(padding) for p in pair], value=value)


def windows(x: torch.Tensor, kernel_size, stride, dilation) -> torch.Tensor:
    """im2col as a view: (N, C, *S) → (N, C, *P, *k), [n, c, p, j] = x[n, c, p·s + j·d]."""
    for dim, (k, s, d) in enumerate(zip(kernel_size, stride, dilation)):
        x = x.unfold(2 + dim, d * (k - 1) + 1, s)[..., ::d]
    return x


def col2im(values: torch.Tensor, size, stride, dilation) -> torch.Tensor:
    """The transpose of ``windows``: (N, C, *P, *k) values, each added back onto the element
    of an (N, C, *size) tensor that window p's offset j views, p·s + j·d."""
    nd = len(size)
    output_size, kernel_size = values.shape[2:2 + nd], values.shape[2 + nd:]
    result = values.new_zeros(*values.shape[:2], *size)
    for offset in itertools.product(*map(range, kernel_size)):
        reached = tuple(slice(j * d, j * d + (p - 1) * s + 1, s) for j, d, p, s in zip(offset, dilation, output_size, stride))
        result[(..., *reached)] += values[(..., *offset)]
    return result


def im2col(x: torch.Tensor, kernel_size, output_size, geometry: ConvGeometry) -> torch.Tensor:
    """The im2col matrix (N, G, ∏P, C/G·K): one row per output position, its window's values.
    (A transposed convolution's output_padding leaves windows past ``output_size``: unused.)"""
    n, channels, nd, groups = x.shape[0], x.shape[1], x.dim() - 2, geometry.groups
    view = windows(pad(x, geometry.padding), kernel_size, geometry.stride, geometry.dilation)
    view = view[(slice(None), slice(None), *map(slice, output_size))]
    view = view.reshape(n, groups, channels // groups, *output_size, *kernel_size).movedim(2, 2 + nd)
    return view.reshape(n, groups, prod(output_size), channels // groups * prod(kernel_size))


def conv_forward(input, weight, bias, geometry: ConvGeometry, activation=None):
    """y[n, o, p] = Σ_{c, j} W[o, c, j] · x_pad[n, c, p·s + j·d] + b[o]   (correlation).

    Per group: y_g = cols_g · W_gᵀ + b_g.  ``activation="relu"`` then clamps y at 0."""
    n, out_channels, groups = input.shape[0], weight.shape[0], geometry.groups
    output_size = geometry.output_size(input.shape[2:], weight.shape[2:])
    cols = im2col(input, weight.shape[2:], output_size, geometry)
    rows = cols @ weight.reshape(groups, out_channels // groups, cols.shape[3]).transpose(1, 2)  # (N, G, ∏P, O/G)
    output = rows.movedim(-1, 2).reshape(n, out_channels, *output_size)
    if bias is not None:
        output = output + bias.view(-1, *(1,) * len(output_size))
    return output.clamp(min=0) if activation == "relu" else output


def conv_input_grad(grad_output, weight, input_size, bias, geometry: ConvGeometry):
    """dX = δ ⋆ᵀ W: the transpose of the forward's matrix form y_g = cols_g · W_gᵀ.

    1. ∂L/∂cols_g = δ_g · W_g: every window's share of the gradient, one matrix product;
    2. col2im: each entry flows back to the element of x_pad it was copied from;
    3. the padding is cut away. ``bias`` (ConvTranspose's) is added to the result.
    The same sum as the notes' "full" convolution of δ, zero-inserted by the stride, with W
    rotated by 180° and its channels swapped (``explain.input_grad_by_rotation``, tested
    equal) — but it multiplies no inserted or padded zero, which 0·inf would turn into NaN.
    """
    n, out_channels, output_size = grad_output.shape[0], grad_output.shape[1], grad_output.shape[2:]
    groups, kernel_size, nd = geometry.groups, weight.shape[2:], len(input_size)
    in_channels = weight.shape[1] * groups
    delta = grad_output.reshape(n, groups, out_channels // groups, prod(output_size)).transpose(2, 3)  # (N, G, ∏P, O/G)
    cols_grad = delta @ weight.reshape(groups, out_channels // groups, weight.shape[1] * prod(kernel_size))  # (N, G, ∏P, C/G·K)
    values = cols_grad.reshape(n, groups, *output_size, in_channels // groups, *kernel_size).movedim(2 + nd, 2)
    padded_size = [i + low + high for i, (low, high) in zip(input_size, geometry.padding)]
    padded = col2im(values.reshape(n, in_channels, *output_size, *kernel_size), padded_size, geometry.stride, geometry.dilation)
    grad = pad(padded, [(-low, -high) for low, high in geometry.padding])
    return grad if bias is None else grad + bias.view(-1, *(1,) * nd)


def conv_weight_grad(input, grad_output, kernel_size, geometry: ConvGeometry):
    """dW[o, c, j] = Σ_{n, p} δ[n, o, p] · x_pad[n, c, p·s + j·d]: the input correlated with δ.

    Per group: dW_g = Σ_n δ_gᵀ · cols_g, summed over the batch."""
    n, out_channels, groups = grad_output.shape[0], grad_output.shape[1], geometry.groups
    cols = im2col(input, kernel_size, grad_output.shape[2:], geometry)  # (N, G, ∏P, C/G·K)
    delta = grad_output.reshape(n, groups, out_channels // groups, cols.shape[2])  # (N, G, O/G, ∏P)
    grad = torch.einsum("ngop,ngpk->gok", delta, cols)
    return grad.reshape(out_channels, input.shape[1] // groups, *kernel_size)
