"""Reference convolution: the three core computations in plain tensor ops, N-d and grouped.

Shapes: input x (N, C, *S), weight W (O, C/G, *k), output y (N, O, *P), with G groups and
K = ∏k kernel offsets. Each computation is one batched matrix product with the im2col matrix
— the matrix form of the seeds: y = cols·Wᵀ, dW = δᵀ·cols, and ∂L/∂cols = δ·W, which col2im
folds back onto the input.

Layout: cols is (G, K·C/G, N·P) — one row per (input channel, kernel offset), one column
per (sample, output position) — so each GEMM's long side is N·P, the shape CPU BLAS runs
best at even for few channels, its rows match W's memory order, and the gather that builds
it copies runs along the innermost spatial dimension.
"""
from __future__ import annotations

import itertools
import threading

import torch

from ..._geometry import ConvGeometry, prod


def pad(x: torch.Tensor, padding, value=0) -> torch.Tensor:
    """Pad with ``value`` (negative: crop) each spatial dimension by its (low, high) pair."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    flat = [p for lo_hi in reversed(padding) for p in lo_hi]  # torch.nn.functional.pad wants the last dim first
    return torch.nn.functional.pad(x, flat, value=value)


def windows(x: torch.Tensor, kernel_size, geometry: ConvGeometry, value=0) -> torch.Tensor:
    """im2col as a view: (N, C, *S) → (N, C, *P, *k), element [n, c, p, j] = x_pad[n, c, p·s + j·d].

    Nothing is copied except the padding (filled with ``value``).
    """
    return _sliding(pad(x, geometry.padding, value), kernel_size, geometry.stride, geometry.dilation)


def _sliding(x: torch.Tensor, kernel_size, stride, dilation) -> torch.Tensor:
    """``Tensor.unfold`` cuts each spatial dimension into windows of extent d·(k−1)+1 every s
    elements; keeping every d-th element of a window applies the dilation."""
    for dim, (k, s, d) in enumerate(zip(kernel_size, stride, dilation)):
        x = x.unfold(2 + dim, d * (k - 1) + 1, s)[..., ::d]
    return x


class _Scratch(threading.local):
    """One reusable CPU buffer per thread and dtype for the im2col matrix.

    The im2col matrix is K times the input and lives for one matrix product. Freshly allocated
    blocks that large go back to the OS when freed, so each call would pay a page fault per
    4 KiB of it — measured as several times the cost of filling it. Reusing one buffer (grown
    to the largest size seen, as Caffe's col_buffer did) avoids that. On GPUs the caching
    allocator already does this, so the buffer is CPU-only.
    """

    def __init__(self):
        self.buffers = {}

    def get(self, shape, like: torch.Tensor) -> torch.Tensor:
        if like.device.type != "cpu":
            return torch.empty(shape, dtype=like.dtype, device=like.device)
        buffer = self.buffers.get(like.dtype)
        if buffer is None or buffer.numel() < prod(shape):
            buffer = self.buffers[like.dtype] = torch.empty(prod(shape), dtype=like.dtype)
        return buffer[: prod(shape)].view(shape)


_scratch = _Scratch()


def _columns(x: torch.Tensor, kernel_size, geometry: ConvGeometry, output_size) -> torch.Tensor:
    """The im2col matrix per group, (G, C/G·K, N·P): entry [(c, j), (n, p)] = x_pad[n, c, p·s + j·d].

    Valid until the next call in the same thread (it lives in a reused scratch buffer).
    """
    n, c, nd, groups = x.shape[0], x.shape[1], len(kernel_size), geometry.groups
    view = windows(x, kernel_size, geometry)
    view = view[(..., *(slice(0, p) for p in output_size), *(slice(None),) * nd)]
    view = view.permute(1, *range(2 + nd, 2 + 2 * nd), 0, *range(2, 2 + nd))  # (N, C, *P, *k) → (C, *k, N, *P)
    cols = _scratch.get(view.shape, like=x)
    cols.copy_(view)
    return cols.view(groups, c // groups * prod(kernel_size), n * prod(output_size))


def _channel_rows(t: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, G·Co, *P) → (G, Co, N·P): a feature map with one row per channel, per group."""
    return t.transpose(0, 1).reshape(groups, t.shape[1] // groups, -1)


def conv_forward(input, weight, bias, geometry: ConvGeometry, activation=None):
    """y[n, o, p] = Σ_{c, j} W[o, c, j] · x_pad[n, g·C/G + c, p·s + j·d] + b[o]   (correlation).

    As a matrix product per group g: y_g = W_g · cols_g (+ b_g), W_g as (O/G, C/G·K);
    ``activation="relu"`` then clamps y at 0 in place (the epilogue a GPU kernel fuses).
    """
    n, groups = input.shape[0], geometry.groups
    out_channels, kernel_size = weight.shape[0], weight.shape[2:]
    output_size = geometry.output_size(input.shape[2:], kernel_size)
    cols = _columns(input, kernel_size, geometry, output_size)
    w = weight.reshape(groups, out_channels // groups, -1)
    if bias is None:
        out = torch.bmm(w, cols)
    else:
        out = torch.baddbmm(bias.view(groups, -1, 1), w, cols)
    if activation == "relu":
        out.clamp_(min=0)
    # (G, O/G, N·P) → (N, O, *P), a transposed view; the Function picks the final layout.
    return out.view(out_channels, n, *output_size).transpose(0, 1)


def conv_input_grad(grad_output, weight, input_size, bias, geometry: ConvGeometry):
    """dX = δ ⋆ᵀ W, the transposed convolution, as the transpose of the forward's matrix form.

    The forward copied x into cols (im2col) and multiplied: y = W·cols. Backward runs it in
    reverse (seeds 001/003: the backward pass is the transposed matrix):
    1. ∂L/∂cols = Wᵀ·δ per group — every window's share of the gradient, one GEMM;
    2. col2im: each entry of ∂L/∂cols flows back to the input element it was copied from,
       dX_pad[n, c, p·s + j·d] += ∂L/∂cols[(c, j), (n, p)] — one strided add per kernel offset j;
    3. drop the padding.
    This is the same sum as the notes' gather form — zero-insert δ by the stride, pad by
    d·(k−1) − pad, correlate with W rotated 180° with in/out channels swapped
    (``torchconv_impl.explain.input_grad_by_rotation``, tested equal) — but it never reads
    the inserted zeros. ``bias`` (for ConvTranspose) is added at the end.
    """
    n, out_channels = grad_output.shape[:2]
    groups, kernel_size = geometry.groups, weight.shape[2:]
    in_channels, output_size = weight.shape[1] * groups, grad_output.shape[2:]
    delta = _channel_rows(grad_output, groups)  # (G, O/G, N·P)
    w = weight.reshape(groups, out_channels // groups, -1)
    cols_grad = _scratch.get((groups, w.shape[2], delta.shape[2]), like=grad_output)
    torch.bmm(w.transpose(1, 2), delta, out=cols_grad)
    cols_grad = cols_grad.view(in_channels, *kernel_size, n, *output_size)
    padded_size = [i + lo + hi for i, (lo, hi) in zip(input_size, geometry.padding)]
    grad = grad_output.new_zeros(in_channels, n, *padded_size)
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        reached = (slice(j * d, j * d + (p - 1) * s + 1, s) for j, d, p, s in zip(offset, geometry.dilation, output_size, geometry.stride))
        grad[(slice(None), slice(None), *reached)] += cols_grad[(slice(None), *offset)]
    grad = grad[(..., *(slice(lo, lo + i) for i, (lo, _) in zip(input_size, geometry.padding)))].transpose(0, 1)
    return grad if bias is None else grad + bias.view(1, -1, *(1,) * len(input_size))


def conv_weight_grad(input, grad_output, kernel_size, geometry: ConvGeometry):
    """dW[o, c, j] = Σ_{n, p} δ[n, o, p] · x_pad[n, c, p·s + j·d]: the input correlated with δ.

    As a matrix product per group: dW_g = δ_g · cols_gᵀ (the seeds' ∂L/∂W = ∂L/∂Y·Xᵀ), the sum
    over the batch and positions being the GEMM's reduction dimension.
    """
    groups, out_channels = geometry.groups, grad_output.shape[1]
    cols = _columns(input, kernel_size, geometry, grad_output.shape[2:])
    grad = torch.bmm(_channel_rows(grad_output, groups), cols.transpose(1, 2))  # (G, O/G, C/G·K)
    return grad.view(out_channels, input.shape[1] // groups, *kernel_size)
