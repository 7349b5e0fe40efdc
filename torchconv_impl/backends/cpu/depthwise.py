"""The CPU engine's depthwise convolution over flat planes: one input and one output channel per
group, unit stride, an output of the input's size ("same" padding: pad_lo + pad_hi = d·(k − 1)).

Such a convolution is a stencil: y[n, c, p] = Σ_j W[c, j] · x[n, c, p + σ_j] over the kernel
offsets j, where σ_j = j·d − pad_lo per dimension, and a term is kept only where p + σ_j lies
inside the plane (the padding's zeros). The input and the output have the same plane, so in
row-major order σ_j is one flat shift, Σ_d σ_j,d·T_d, and with (channel, position) flattened to one
index each offset is a single elementwise multiply-add over the whole batch, on x and y as they
lie in memory (no padded copy, no layout change):

    y[n, i] += M_j[i] · x[n, i + σ_j],      M_j[c, p] = W[c, j] · valid_j[p],

where valid_j[p] is 1 where p + σ_j is inside the plane and 0 where the flat shift would wrap
into the next row (or plane, or channel): the mask carries both the weight and the padding.
Reads that wrap are multiplied by 0, so the operands must be finite (0·inf is NaN).

The backward passes are the same sums read the other way (the seeds' formulas):
- input gradient: dX = δ correlated with the kernel rotated 180°, padding mirrored — the same
  stencil, dX[q] = Σ_j W[c, K−1−j] · δ[q − σ_j], run by the same code;
- weight gradient: dW[c, j] = Σ_{n, p} valid_j[p] · δ[n, c, p] · x[n, c, p + σ_j], per offset a
  product summed over the batch (S_j = Σ_n δ ⊙ shift(x)) and then over the valid positions.

Every pass works on a block of channels at a time, sized so that its planes of x and y (and
the masks) stay in the core's cache across the K offsets: the K passes then cost cache, not
memory, bandwidth.
"""
from __future__ import annotations

import functools
import itertools

import torch

from ..._geometry import ConvGeometry, prod
from ._strided import all_finite, plane_strides, scratch

# The bytes of the planes one block of channels keeps in the core's cache (x, y and the masks):
# measured on mobilenet_v2's 3×3 layers at b8 (forward), 2 MiB ran 15–30 % faster than 512 KiB
# (more, shorter passes) and up to 15 % faster than the whole batch at once (passes from memory).
_BLOCK_BYTES = 2 << 20

# The weight gradient's flat form makes two passes per offset (a product, then its sum over the
# batch). The channel-major shifted form makes one BLAS product per offset, after copying x and
# δ into that layout in runs of one plane row, which is costly for short rows: measured at b8,
# the flat form ran 5–60 % faster at 4² and 7², and took 1.4–1.8× the time from 14² on.
_WEIGHT_GRAD_MAX_PLANE = 64


def flat_weight_grad(weight_shape, input_size, output_size, geometry: ConvGeometry, *operands: torch.Tensor) -> bool:
    """Whether the weight gradient runs in the flat form: planes of at most ``_WEIGHT_GRAD_MAX_PLANE`` positions."""
    return prod(input_size) <= _WEIGHT_GRAD_MAX_PLANE and flat_form(weight_shape, input_size, output_size, geometry, *operands)


def flat_form(weight_shape, input_size, output_size, geometry: ConvGeometry, *operands: torch.Tensor) -> bool:
    """Whether this convolution runs as a flat-plane stencil: depthwise (one channel per group
    in and out), unit stride, an output the input's size (δ's, in the input gradient: a
    transposed convolution's output_padding may make x larger) with a kernel offset over each
    output position itself (σ = 0: padding a multiple of the dilation), a sample, a channel and
    a position, and finite ``operands`` (the masks' zeros meet every element of x, δ and W)."""
    out_channels, group_channels, *kernel_size = weight_shape
    return (
        group_channels == 1 and out_channels == geometry.groups and out_channels > 0 and prod(input_size) > 0
        and tuple(output_size) == tuple(input_size) and all(s == 1 for s in geometry.stride)
        and all(lo + hi == d * (k - 1) and lo % d == 0 for (lo, hi), d, k in zip(geometry.padding, geometry.dilation, kernel_size))
        and all(t.shape[0] > 0 for t in operands)
        and all(all_finite(t) for t in operands)  # last: each reads a whole operand
    )


@functools.lru_cache(maxsize=64)
def _offsets(plane_size, kernel_size, dilation, padding_low, dtype) -> tuple[tuple[int, ...], int, torch.Tensor]:
    """Per kernel offset j (row-major): its flat shift σ_j; the offset whose σ is 0 in every
    dimension; and valid_j (K, plane) in ``dtype``, 1 where p + σ_j lies inside the plane."""
    position = torch.stack(torch.meshgrid(*(torch.arange(s) for s in plane_size), indexing="ij")).flatten(1)
    shifts, center, valid = [], None, []
    for index, offset in enumerate(itertools.product(*map(range, kernel_size))):
        sigma = [j * d - lo for j, d, lo in zip(offset, dilation, padding_low)]
        shifts.append(sum(s * t for s, t in zip(sigma, plane_strides(plane_size))))
        center = index if not any(sigma) else center
        read = position + torch.tensor(sigma).view(-1, 1)
        valid.append(((read >= 0) & (read < torch.tensor(plane_size).view(-1, 1))).all(0))
    return tuple(shifts), center, torch.stack(valid).to(dtype)


def _channel_blocks(n: int, channels: int, plane: int, taps: int, like: torch.Tensor):
    """Channel ranges whose planes of x and y for the batch and their ``taps`` masks fill about ``_BLOCK_BYTES``."""
    step = max(1, _BLOCK_BYTES // ((2 * n + taps) * plane * like.element_size()))
    return [(start, min(start + step, channels)) for start in range(0, channels, step)]


def stencil(input, weight, bias, padding, dilation, activation=None):
    """y[n, c, p] = Σ_j W[c, j] · x[n, c, p + σ_j] (+ b[c]), terms outside the plane left out:
    the flat form of the depthwise forward (see the module's notes); ``activation="relu"``
    clamps each block at 0 while it is in cache."""
    n, channels, *plane_size = input.shape
    plane, kernel_size = prod(plane_size), tuple(weight.shape[2:])
    shifts, center, valid = _offsets(tuple(plane_size), kernel_size, tuple(dilation), tuple(lo for lo, _ in padding), input.dtype)
    length = channels * plane
    x = input.contiguous().view(n, length)
    w = weight.reshape(channels, -1).t()  # (K, C): W_j per channel
    output = input.new_empty((n, channels, *plane_size))
    y = output.view(n, length)
    for first, last in _channel_blocks(n, channels, plane, len(shifts), input):
        start, stop = first * plane, last * plane
        block, x_block = y[:, start:stop].view(n, last - first, plane), x[:, start:stop].view(n, last - first, plane)
        # The offset of shift 0 reads every position (its mask is all ones): it starts the sum.
        w_center = w[center, first:last, None]
        if bias is None:
            torch.mul(x_block, w_center, out=block)
        else:
            torch.addcmul(bias[first:last, None], x_block, w_center, out=block)
        masks = scratch.get("depthwise masks", (len(shifts), last - first, plane), like=input)
        torch.mul(w[:, first:last, None], valid[:, None, :], out=masks)
        masks = masks.view(len(shifts), -1)
        for j, (mask, shift) in enumerate(zip(masks, shifts)):
            if j == center:
                continue
            # The positions i of the block whose read i + σ_j stays inside the sample's C·plane row.
            lo, hi = max(start, -shift), min(stop, length - shift)
            if lo < hi:  # (a kernel reaching past the plane may read nothing for a block)
                y[:, lo:hi].addcmul_(x[:, lo + shift:hi + shift], mask[lo - start:hi - start])
        if activation == "relu":
            block.clamp_(min=0)
    return output


def input_grad(grad_output, weight, padding, dilation):
    """dX = δ correlated with W rotated 180°, the padding mirrored: the stencil read backward."""
    rotated = weight.flip(list(range(2, weight.dim())))
    return stencil(grad_output, rotated, None, tuple((hi, lo) for lo, hi in padding), dilation)


def weight_grad(input, grad_output, kernel_size, padding, dilation):
    """dW[c, j] = Σ_p valid_j[p] · S_j[c, p], with S_j = Σ_n δ[n] ⊙ x[n, · + σ_j] per block of channels."""
    n, channels, *plane_size = input.shape
    plane = prod(plane_size)
    shifts, _, valid = _offsets(tuple(plane_size), tuple(kernel_size), tuple(dilation), tuple(lo for lo, _ in padding), input.dtype)
    length = channels * plane
    x, delta = input.contiguous().view(n, length), grad_output.contiguous().view(n, length)
    grad = input.new_empty((channels, len(shifts)))
    for first, last in _channel_blocks(n, channels, plane, len(shifts), input):
        start, stop = first * plane, last * plane
        products = scratch.get("depthwise products", (n, stop - start), like=input)
        sums = scratch.get("depthwise sums", (len(shifts), stop - start), like=input)
        for j, shift in enumerate(shifts):
            lo = max(start, -shift)
            hi = max(lo, min(stop, length - shift))
            if lo > start or hi < stop:  # positions whose read leaves the sample's row have no term
                sums[j].zero_()
            product = products[:, :hi - lo]
            torch.mul(delta[:, lo:hi], x[:, lo + shift:hi + shift], out=product)
            torch.sum(product, 0, out=sums[j, lo - start:hi - start])
        # (K, block, plane) @ (K, plane, 1): each offset's sums over its valid positions.
        per_offset = torch.bmm(sums.view(len(shifts), last - first, plane), valid.unsqueeze(-1))
        grad[first:last] = per_offset.squeeze(-1).t()
    return grad.view(channels, 1, *kernel_size)
