"""Reference convolution: the three core computations in plain tensor ops, N-d and grouped.

Shapes: input x (N, C, *S), weight W (O, C/G, *k), output y (N, O, *P), with G groups.
Every computation goes through ``windows`` — im2col as a strided *view* — and one batched
matrix product, so it reads as the matrix form of the seeds: y = W·cols, dW = δ·colsᵀ.
"""
from __future__ import annotations

import torch

from ..._geometry import ConvGeometry, prod


def pad(x: torch.Tensor, padding) -> torch.Tensor:
    """Zero-pad (negative: crop) each spatial dimension by its (low, high) pair."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    flat = [p for lo_hi in reversed(padding) for p in lo_hi]  # torch.nn.functional.pad wants the last dim first
    return torch.nn.functional.pad(x, flat)


def windows(x: torch.Tensor, kernel_size, geometry: ConvGeometry) -> torch.Tensor:
    """im2col as a view: (N, C, *S) → (N, C, *P, *k), element [n, c, p, j] = x_pad[n, c, p·s + j·d].

    ``Tensor.unfold`` cuts each padded dimension into windows of extent d·(k−1)+1 every s
    elements; keeping every d-th element of a window applies the dilation. Nothing is copied
    except the padding.
    """
    x = pad(x, geometry.padding)
    for dim, (k, s, d) in enumerate(zip(kernel_size, geometry.stride, geometry.dilation)):
        x = x.unfold(2 + dim, d * (k - 1) + 1, s)[..., ::d]
    return x


def _columns(x: torch.Tensor, kernel_size, geometry: ConvGeometry, output_size) -> torch.Tensor:
    """The im2col matrix per group, (N, G, C/G·K, P): rows (channel, kernel offset), columns positions."""
    n, c = x.shape[:2]
    nd = len(kernel_size)
    cols = windows(x, kernel_size, geometry)
    cols = cols[(..., *(slice(0, p) for p in output_size), *(slice(None),) * nd)]
    # (N, C, *P, *k) → (N, C, *k, *P): kernel offsets next to the channel, positions last.
    cols = cols.permute(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))
    return cols.reshape(n, geometry.groups, c // geometry.groups * prod(kernel_size), prod(output_size))


def conv_forward(input, weight, bias, geometry: ConvGeometry):
    """y[n, o, p] = Σ_{c, j} W[o, c, j] · x_pad[n, g·C/G + c, p·s + j·d] + b[o]   (correlation).

    As a matrix product per group g: y_g = W_g · cols_g, with W_g (O/G, C/G·K).
    """
    n, groups = input.shape[0], geometry.groups
    kernel_size = weight.shape[2:]
    output_size = geometry.output_size(input.shape[2:], kernel_size)
    cols = _columns(input, kernel_size, geometry, output_size)
    w = weight.reshape(groups, weight.shape[0] // groups, -1)
    out = torch.matmul(w, cols).reshape(n, weight.shape[0], *output_size)
    if bias is not None:
        out += bias.view(1, -1, *(1,) * len(output_size))
    return out


def conv_input_grad(grad_output, weight, input_size, bias, geometry: ConvGeometry):
    """dX = δ ⋆ᵀ W: the transposed ("full") convolution, built from ``conv_forward``.

    1. zero-insert δ: s−1 zeros between neighbours (only when the stride is > 1),
    2. rotate W by 180° and swap its in/out channels within each group,
    3. correlate with padding d·(k−1) − pad_lo on the low side (negative: crop) and whatever
       the high side needs to give back exactly ``input_size`` (output_padding, stride remainder).
    ``bias`` (for ConvTranspose) is added by the same correlation.
    """
    n, out_channels = grad_output.shape[:2]
    groups, kernel_size = geometry.groups, weight.shape[2:]
    nd = len(kernel_size)
    if any(s > 1 for s in geometry.stride):
        dilated_size = [(p - 1) * s + 1 for p, s in zip(grad_output.shape[2:], geometry.stride)]
        spread = grad_output.new_zeros(n, out_channels, *dilated_size)
        spread[(..., *(slice(None, None, s) for s in geometry.stride))] = grad_output
        grad_output = spread
    w = weight.reshape(groups, out_channels // groups, *weight.shape[1:]).transpose(1, 2)
    w = w.reshape(-1, out_channels // groups, *kernel_size).flip(list(range(2, 2 + nd)))
    padding = []
    for i, length, k, d, (lo, _) in zip(input_size, grad_output.shape[2:], kernel_size, geometry.dilation, geometry.padding):
        low = d * (k - 1) - lo
        padding.append((low, i + d * (k - 1) - low - length))
    full = ConvGeometry(stride=(1,) * nd, padding=tuple(padding), dilation=geometry.dilation, groups=groups)
    return conv_forward(grad_output, w, bias, full)


def conv_weight_grad(input, grad_output, kernel_size, geometry: ConvGeometry):
    """dW[o, c, j] = Σ_{n, p} δ[n, o, p] · x_pad[n, c, p·s + j·d]: the input correlated with δ.

    As a matrix product per group: dW_g = Σ_n δ_{n,g} · cols_{n,g}ᵀ (the seeds' ∂L/∂W = X·∂L/∂Y).
    """
    n, groups = input.shape[0], geometry.groups
    out_channels = grad_output.shape[1]
    output_size = grad_output.shape[2:]
    cols = _columns(input, kernel_size, geometry, output_size)
    delta = grad_output.reshape(n, groups, out_channels // groups, -1)
    # One (O/G × P)·(P × C/G·K) product per sample and group, then the sum over the batch:
    # faster on CPU than letting einsum permute both operands into a single contraction.
    grad = torch.matmul(delta, cols.transpose(-1, -2)).sum(0)
    return grad.reshape(out_channels, input.shape[1] // groups, *kernel_size)
