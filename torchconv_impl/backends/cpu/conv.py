"""The CPU engine's convolution: the three core computations, N-d and grouped, tuned for CPUs.

Shapes: input x (N, C, *S), weight W (O, C/G, *k), output y (N, O, *P), with G groups and
K = ∏k kernel offsets. Each computation is one batched matrix product with the im2col matrix
— the matrix form of the seeds: y = W·cols, dW = δ·colsᵀ, and ∂L/∂cols = Wᵀ·δ, which col2im
folds back onto the input — taken over a few samples of the batch at a time (``_batch_chunks``),
so that the K-times-larger im2col matrix stays small enough for the core's cache.

Layout: cols is (G, C/G·K, N·L) — one row per (input channel, kernel offset), L columns per
sample — so each GEMM's long side is N·L, the shape CPU BLAS runs best at even for few
channels, and its rows match W's memory order. Every view is taken with ``as_strided`` on
the zero-padded input x_pad (N, C, *S'), whose plane has row-major strides T_d:
cols[(c, j), (n, q)] = x_pad[n, c, q + Σ_d j_d·dil_d·T_d] for a column's plane offset q.

Which columns (``_Columns``): normally one per output position, q = Σ_d p_d·s_d·T_d. With
unit stride and short output rows, instead one per plane position from the first window's
corner to the last's,
L = Σ_d (P_d − 1)·T_d + 1: each im2col row is then one contiguous slice of a plane, copied
several times faster than runs of P_last elements, and col2im adds contiguous runs. The
columns between windows (a window straddling a row's end) are computed and ignored in the
forward and carry δ = 0 backward.

Row form (``_row_form``): the backward passes of a 2-d convolution over short rows — LeNet's,
32 and 14 wide under 5×5 kernels — run instead as products with whole input rows. The row
matrix A holds, per sample n and output row p, the kh input rows p … p + kh − 1 of every
channel, A[(n, p), (c, i, t)] = x_pad[n, c, p + i, t], kh times the input (im2col: kh·kw
times); the kernel becomes the banded (Toeplitz) matrix B[(c, i, t), (o, q)] = W[o, c, i, t − q]
for 0 ≤ t − q < kw, zero elsewhere (``_band``). Then dW = the band of Aᵀ·δ, and ∂L/∂A = δ·Bᵀ,
added back onto the input one kernel row at a time. These products do Wp/kw times the
multiply-adds of im2col's, but over a reduction of C·kh·Wp rather than C·kh·kw and with a
fifth of the copying, which pays for few channels and short rows. (The forward, y = A·B, ran
no faster than im2col's on LeNet: its product is the larger share of its time.)

Shifted form (``_shift_form``): a convolution needs no im2col at all. Laid out channel-major,
x_cm (C, N, *S'), the input holds one column per plane position of every sample, and with unit
stride kernel offset j's im2col rows are that matrix shifted by the offset's start s_j — a
strided view (row stride N·S') that BLAS reads in place. So each computation is a sum of K
products over a contraction of C/G (forward) or O/G (input gradient), or one product per offset:
    y = Σ_j W_j · x_cm[:, s_j + q],   dX_cm[:, s_j + q] += W_jᵀ · δ,   dW_j = δ · x_cm[:, s_j + q]ᵀ,
with W_j = W[:, :, j] (O, C/G) per group and q over (n, plane position) columns, those
between windows being the gaps, as in plane-span columns. A stride s first splits the padded
plane into its phases, x_pad[…, r·s + φ] for each φ < s: offset j reads phase (j·d) mod s from
r = p + ⌊j·d / s⌋ for window p, a unit-stride view again. It does the GEMM work of K·(C/G) ×
(phase) plane columns against im2col's copy of K times the input, so it is used while the phase
plane is at most ``_SHIFT_OVERHEAD`` times the output, or with one input channel per group
(depthwise), whose im2col product is G one-row products; there each product has a contraction
of one, an outer product, done elementwise (``_product_into``).

Pointwise form (``_pointwise``): a 1×1 convolution with unit stride, no padding and one group
needs neither columns nor a channel-major copy — each sample's plane is already a (C, P)
matrix, so y_n = W·x_n is one batched product written straight into the output, and likewise
dX_n = Wᵀ·δ_n and dW = Σ_n δ_n·x_nᵀ.

Flat depthwise form (``depthwise.py``): a depthwise convolution with unit stride and an output
of the input's size is a stencil over the planes as they lie in memory, one masked multiply-add
per kernel offset (its weight gradient for small planes; larger ones take the shifted form's).
"""
from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import torch

from ..._geometry import ConvGeometry, prod
from . import depthwise
from ._strided import all_finite, offset_starts, offset_steps, pad, plane_strides, scratch


# Unit-stride convolutions use plane-span columns while they cost at most this many times
# the output positions in GEMM work (measured on LeNet's C3, 1.36×: the faster copies win),
# and while the extra work per copied element, (overhead − 1)·O/G multiply-adds, is at most
# _SPAN_EXTRA_WORK: the copies' saving is per element, the gaps' cost grows with the GEMM's
# other side. C3: 0.36·16 ≈ 6. resnet18's 3×3 layers at b8 ran 2–21 % faster with one column per
# output position (512 channels at 4², 0.38·512; 256 at 7², 0.24·256; 128 at 14², 0.13·128).
_SPAN_OVERHEAD = 1.5
_SPAN_EXTRA_WORK = 12

# Plane-span columns pay for themselves by copying whole plane rows where one column per output
# position copies runs of an output row; they are used for output rows shorter than this. Rows
# this long already copy in whole cache lines, and the gaps' copies and products are a loss:
# one column per position ran 10–17 % faster on LeNet's C1 (rows of 28) and vgg11's first layer
# (112) forward, 7–10 % on their forward and backward; LeNet's C3 (rows of 10) keeps its spans.
_SPAN_ROW_LENGTH = 16

# Each computation builds (or folds back) the im2col matrix for a chunk of the batch at a time,
# about this many bytes of it. The matrix is K times the input: whole, it streams through the
# cache the cores share (5.7 MB for LeNet's C1 at batch 64); in chunks it stays near the core.
# Measured on the LeNet training step beside the torch twin on a shared 2-core machine: 2 MiB
# chunks 5–15 % faster than none, 512 KiB no faster (more, smaller GEMMs), 4 MiB no gain; for
# col2im (K strided adds per chunk) too, 2 MiB beat 1 MiB by 3 % and 8 MiB by 6 %.
_CHUNK_BYTES = 2 << 20

# Each chunk's product reads all of W again (the weight gradient's updates all of dW), so a
# chunk holds at least this many times W's bytes, which keeps W's traffic a small part of the
# chunk's own (resnet18's 3×3 layers at b8: 512 channels at 4², W 9.4 MB, 9–17 % faster in one
# chunk than in 2 MiB ones; 256 channels at 7², W 2.4 MB, about 10 %).
_WEIGHT_SHARE = 4

# The row form is used for rows of at most this many kernel widths (its products' extra work;
# measured on LeNet's C1 and C3, 6.4 and 2.8, whose backward passes run 10–15 % faster in it),
# and while its banded kernel matrix, which every row of its products reads, fits the core's cache.
_ROW_FORM_WIDTHS = 8
_ROW_FORM_BAND_BYTES = 1 << 20

# Convolutions take the shifted form while the (phase) plane is at most this many times the
# output positions (resnet18's 3×3 layers, b8: at 28², 1.15, the forward 15–25 % faster; at
# 14², 1.31, the weight gradient 20 % slower), and with at least this many input channels per
# group (vgg11's 3-channel first layer, whose K products of contraction 3 ran 2–3× slower than
# im2col's one of 27; with 64 to 256 channels a wash on its GEMM-bound layers). Depthwise layers
# take it at any size: mobilenet_v2's unit-stride ones ran their forward 1.8–3.5× faster in it.
_SHIFT_OVERHEAD = 1.2
_SHIFT_MIN_CHANNELS = 16


def _batch_chunks(n: int, per_sample_bytes: int, weight_bytes: int = 0):
    """Slices of the batch, each with at most ``_CHUNK_BYTES`` of im2col matrix, or
    ``_WEIGHT_SHARE`` times the ``weight_bytes`` of W where that is more, but at least one sample;
    one empty slice for an empty batch (its weight-gradient is then a GEMM's zeros).
    Chunks are whole samples, so every chunk's columns are laid out as the whole batch's."""
    step = max(1, max(_CHUNK_BYTES, _WEIGHT_SHARE * weight_bytes) // max(1, per_sample_bytes))
    return [slice(start, min(start + step, n)) for start in range(0, max(n, 1), step)]


class _Columns(NamedTuple):
    """The columns of one sample: ``sizes`` (a column grid, L = ∏sizes) and their steps
    in the padded plane; and where output position p sits in the grid (``output_strides``)."""

    sizes: tuple[int, ...]
    plane_steps: tuple[int, ...]
    output_strides: tuple[int, ...]

    @property
    def length(self) -> int:
        return prod(self.sizes)

    def has_gaps(self) -> bool:
        return self.sizes != () and len(self.sizes) != len(self.output_strides)


def _choose_columns(padded_size, output_size, geometry: ConvGeometry, group_out_channels: int, gap_operand: torch.Tensor | None = None) -> _Columns:
    """Plane-span columns for unit stride, short output rows and a small overhead, otherwise
    one per output position. Backward passes name the operand that meets the gaps' zeros
    (``gap_operand``); gaps are allowed only when it is finite, as 0·inf would leak."""
    t = plane_strides(padded_size)
    span = sum((p - 1) * t_d for p, t_d in zip(output_size, t)) + 1
    positions = prod(output_size)
    if (
        positions > 0 and all(s == 1 for s in geometry.stride) and output_size[-1] < _SPAN_ROW_LENGTH
        and span <= _SPAN_OVERHEAD * positions
        and (span - positions) * group_out_channels <= _SPAN_EXTRA_WORK * positions
        and (gap_operand is None or all_finite(gap_operand))  # last: it reads the whole operand
    ):
        return _Columns((span,), (1,), tuple(t))
    return _Columns(tuple(output_size), tuple(s * t_d for s, t_d in zip(geometry.stride, t)), tuple(plane_strides(output_size)))


def _columns(x_pad: torch.Tensor, kernel_size, geometry: ConvGeometry, columns: _Columns) -> torch.Tensor:
    """The im2col matrix per group, (G, C/G·K, N·L), copied from x_pad (contiguous) into the
    scratch buffer; valid until the next call in the same thread."""
    n, c, plane = x_pad.shape[0], x_pad.shape[1], prod(x_pad.shape[2:])
    steps = offset_steps(x_pad.shape[2:], geometry.dilation)
    view = x_pad.as_strided(
        (c, *kernel_size, n, *columns.sizes), (plane, *steps, c * plane, *columns.plane_steps), x_pad.storage_offset()
    )
    cols = scratch.get("cols", view.shape, like=x_pad)
    cols.copy_(view)
    return cols.view(geometry.groups, c // geometry.groups * prod(kernel_size), n * columns.length)


def _bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _columns_bytes(channels: int, kernel_size, columns: _Columns, like: torch.Tensor) -> int:
    """The im2col matrix's bytes per sample: C·K rows of L columns of ``like``'s dtype."""
    return channels * prod(kernel_size) * columns.length * like.element_size()


def _outputs(rows: torch.Tensor, shape, columns: _Columns) -> torch.Tensor:
    """The (N, O, *P) = ``shape`` view of a contiguous (O, N·L) matrix of output rows."""
    n, length = shape[0], columns.length
    return rows.as_strided(shape, (length, n * length, *columns.output_strides), rows.storage_offset())


def _delta_rows(grad_output: torch.Tensor, columns: _Columns, groups: int) -> torch.Tensor:
    """δ (N, O, *P) as (G, O/G, N·L) rows, zero in the columns between windows; in the scratch
    buffer, valid until the next call in the same thread."""
    n, out_channels = grad_output.shape[:2]
    shape = (out_channels, n * columns.length)
    # Only the window columns are ever written here, so the gaps of a buffer of their own stay zero.
    rows = scratch.zeros("delta rows", shape, grad_output, columns) if columns.has_gaps() else scratch.get("rows", shape, grad_output)
    _outputs(rows, grad_output.shape, columns).copy_(grad_output)
    return rows.view(groups, out_channels // groups, -1)


def _padded(x: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    return pad(x, geometry.padding).contiguous()


def _interior(padded: torch.Tensor, input_size, geometry: ConvGeometry) -> torch.Tensor:
    """The part of a padded (…, *S') tensor where x lies, of ``input_size``."""
    return padded[(..., *(slice(lo, lo + i) for i, (lo, _) in zip(input_size, geometry.padding)))]


def _row_form(in_channels, out_channels, kernel_size, padded_size, output_size, like: torch.Tensor, geometry: ConvGeometry) -> bool:
    """Whether the row form computes this convolution's backward passes (see the module's notes):
    2-d, one group, channels in and out, unit stride and dilation, float32 or float64, more than
    one output column (with one the row form is im2col), rows of at most ``_ROW_FORM_WIDTHS``
    kernel widths and a banded matrix of at most ``_ROW_FORM_BAND_BYTES``."""
    if (
        len(padded_size) != 2 or geometry.groups != 1 or like.dtype not in (torch.float32, torch.float64)
        or in_channels == 0 or out_channels == 0
    ):
        return False
    (kh, kw), (hp, wp), (p, q) = kernel_size, padded_size, output_size
    band_bytes = in_channels * kh * wp * out_channels * q * like.element_size()
    return (
        geometry.stride == (1, 1) and geometry.dilation == (1, 1) and (hp, wp) == (p + kh - 1, q + kw - 1)
        and q > 1 and wp <= _ROW_FORM_WIDTHS * kw and band_bytes <= _ROW_FORM_BAND_BYTES
    )


def _band(matrix: torch.Tensor, in_channels: int, kernel_size, out_channels: int) -> torch.Tensor:
    """The band of a (C·kh·Wp, O·Q) matrix as a (C, kh, kw, O, Q) view: [c, i, j, o, q] is
    entry ((c, i, q + j), (o, q)), where B holds W[o, c, i, j]."""
    (kh, kw), columns = kernel_size, matrix.shape[1]
    q = columns // out_channels
    row_length = q + kw - 1
    return matrix.as_strided(
        (in_channels, kh, kw, out_channels, q), (kh * row_length * columns, row_length * columns, columns, q, columns + 1),
        matrix.storage_offset(),
    )


def _banded_kernel(weight: torch.Tensor, q: int) -> torch.Tensor:
    """B (C·kh·Wp, O·Q): W[o, c, i, t − q] at ((c, i, t), (o, q)) for 0 ≤ t − q < kw, zero
    elsewhere. Only the band is written, so a buffer kept zero outside it is reused."""
    out_channels, in_channels, kh, kw = weight.shape
    shape = (in_channels * kh * (q + kw - 1), out_channels * q)
    band = scratch.zeros("band", shape, weight, (in_channels, kh, kw))
    per_offset = weight.permute(1, 2, 3, 0).unsqueeze(-1).expand(in_channels, kh, kw, out_channels, q)
    _band(band, in_channels, (kh, kw), out_channels).copy_(per_offset)
    return band


def _row_matrix(x_pad: torch.Tensor, kh: int, output_rows: int) -> torch.Tensor:
    """A (N·P, C·kh·Wp): A[(n, p), (c, i, t)] = x_pad[n, c, p + i, t], copied from x_pad
    (contiguous) into the scratch buffer; valid until the next call in the same thread."""
    n, c, hp, wp = x_pad.shape
    view = x_pad.as_strided((n, output_rows, c, kh, wp), (c * hp * wp, wp, hp * wp, wp, 1), x_pad.storage_offset())
    rows = scratch.get("cols", view.shape, like=x_pad)
    rows.copy_(view)
    return rows.view(n * output_rows, c * kh * wp)


def _delta_matrix(grad_output: torch.Tensor) -> torch.Tensor:
    """δ (N, O, P, Q) as the row form's (N·P, O·Q) matrix, in the scratch buffer."""
    n, o, p, q = grad_output.shape
    rows = scratch.get("rows", (n, p, o, q), like=grad_output)
    rows.copy_(grad_output.permute(0, 2, 1, 3))
    return rows.view(n * p, o * q)


def _row_bytes(in_channels: int, kh: int, padded_size, output_rows: int, like: torch.Tensor) -> int:
    """The row matrix's bytes per sample: P rows of C·kh·Wp elements of ``like``'s dtype."""
    return output_rows * in_channels * kh * padded_size[1] * like.element_size()


def conv_forward(input, weight, bias, geometry: ConvGeometry, activation=None):
    """y[n, o, p] = Σ_{c, j} W[o, c, j] · x_pad[n, g·C/G + c, p·s + j·d] + b[o]   (correlation).

    As a matrix product per group g: y_g = W_g · cols_g (+ b_g), W_g as (O/G, C/G·K), or in the
    pointwise, flat depthwise or shifted form (see the module's notes); ``activation="relu"``
    clamps y at 0 while copying it out (the epilogue a GPU kernel fuses).
    """
    if _pointwise(weight.shape, geometry, input.shape[2:], input):
        return _conv_forward_pointwise(input, weight, bias, activation)
    output_size = geometry.output_size(input.shape[2:], weight.shape[2:])
    if depthwise.flat_form(weight.shape, input.shape[2:], output_size, geometry, input, weight):
        return depthwise.stencil(input, weight, bias, geometry.padding, geometry.dilation, activation)
    if _shift_form(input.shape[:2], weight.shape, input.shape[2:], output_size, geometry):
        return _conv_forward_shifted(input, weight, bias, geometry, activation)
    n, groups = input.shape[0], geometry.groups
    out_channels, kernel_size = weight.shape[0], weight.shape[2:]
    x_pad = _padded(input, geometry)
    columns = _choose_columns(x_pad.shape[2:], output_size, geometry, out_channels // groups)
    w = weight.reshape(groups, out_channels // groups, -1)
    output = input.new_empty((n, out_channels, *output_size))
    for chunk in _batch_chunks(n, _columns_bytes(x_pad.shape[1], kernel_size, columns, x_pad), _bytes(weight)):
        cols = _columns(x_pad[chunk], kernel_size, geometry, columns)
        rows = scratch.get("rows", (groups, out_channels // groups, cols.shape[2]), like=cols)
        if bias is None:
            torch.bmm(w, cols, out=rows)
        else:
            torch.baddbmm(bias.view(groups, -1, 1), w, cols, out=rows)
        # One pass from the GEMM's (O, N·L) rows to the (N, O, *P) output, the ReLU epilogue in it.
        output_part = output[chunk]
        if activation == "relu":
            torch.clamp(_outputs(rows, output_part.shape, columns), min=0, out=output_part)
        else:
            output_part.copy_(_outputs(rows, output_part.shape, columns))
    return output


def conv_input_grad(grad_output, weight, input_size, bias, geometry: ConvGeometry):
    """dX = δ ⋆ᵀ W, the transposed convolution, as the transpose of the forward's matrix form
    (or in the pointwise, flat depthwise, row or shifted form, see the module's notes).

    The forward copied x into cols (im2col) and multiplied: y = W·cols. Backward runs it in
    reverse (seeds 001/003: the backward pass is the transposed matrix):
    1. ∂L/∂cols = Wᵀ·δ per group — every window's share of the gradient, one GEMM;
    2. col2im: each entry of ∂L/∂cols flows back to the input element it was copied from,
       dX_pad[n, c, p·s + j·d] += ∂L/∂cols[(c, j), (n, p)] — one strided add per kernel
       offset j, or a single copy when no two windows overlap (1×1 kernels, stride ≥ extent,
       a single window);
    3. drop the padding.
    This is the same sum as the notes' gather form — zero-insert δ by the stride, pad by
    d·(k−1) − pad, correlate with W rotated 180° with in/out channels swapped
    (``torchconv_impl.explain.input_grad_by_rotation``, tested equal) — but it never reads
    the inserted zeros. Plane-span columns need a finite W (gap columns hold Wᵀ·0). The row
    form computes ∂L/∂A = δ·Bᵀ instead and adds it back one kernel row at a time; it needs a
    finite δ (B's zeros meet every element of δ).
    ``bias`` (for ConvTranspose) is added at the end.
    """
    n, out_channels = grad_output.shape[:2]
    groups, kernel_size = geometry.groups, weight.shape[2:]
    in_channels, output_size = weight.shape[1] * groups, grad_output.shape[2:]
    padded_size = [i + lo + hi for i, (lo, hi) in zip(input_size, geometry.padding)]
    if _pointwise(weight.shape, geometry, input_size, grad_output):
        grad = torch.bmm(_per_sample(weight.flatten(1).t(), n), grad_output.flatten(2)).view(n, in_channels, *input_size)
    elif depthwise.flat_form(weight.shape, input_size, output_size, geometry, grad_output, weight):
        grad = depthwise.input_grad(grad_output, weight, geometry.padding, geometry.dilation)
    elif _row_form(in_channels, out_channels, kernel_size, padded_size, output_size, grad_output, geometry) and all_finite(grad_output):
        grad = _interior(_conv_input_grad_by_rows(grad_output, weight, padded_size), input_size, geometry)
    elif _shift_form((n, in_channels), weight.shape, input_size, output_size, geometry, gap_operand=weight):
        grad = _conv_input_grad_shifted(grad_output, weight, input_size, geometry)
    else:
        grad = _interior(_conv_input_grad_by_columns(grad_output, weight, padded_size, geometry), input_size, geometry)
    return grad if bias is None else grad + bias.view(1, -1, *(1,) * len(input_size))


def _conv_input_grad_by_columns(grad_output, weight, padded_size, geometry: ConvGeometry):
    """dX_pad by ∂L/∂cols = Wᵀ·δ and col2im (``conv_input_grad``'s steps 1 and 2)."""
    n, out_channels = grad_output.shape[:2]
    groups, kernel_size = geometry.groups, weight.shape[2:]
    in_channels, output_size = weight.shape[1] * groups, grad_output.shape[2:]
    columns = _choose_columns(padded_size, output_size, geometry, out_channels // groups, gap_operand=weight)
    w_t = weight.reshape(groups, out_channels // groups, -1).transpose(1, 2)
    grad = grad_output.new_zeros(n, in_channels, *padded_size)
    plane, steps = prod(padded_size), offset_steps(padded_size, geometry.dilation)
    disjoint = all(p == 1 or s >= d * (k - 1) + 1 for p, s, d, k in zip(output_size, geometry.stride, geometry.dilation, kernel_size))
    for chunk in _batch_chunks(n, _columns_bytes(in_channels, kernel_size, columns, grad), _bytes(weight)):
        delta = _delta_rows(grad_output[chunk], columns, groups)
        cols_grad = scratch.get("cols", (groups, w_t.shape[1], delta.shape[2]), like=grad_output)
        torch.bmm(w_t, delta, out=cols_grad)
        grad_part, samples = grad[chunk], delta.shape[2] // columns.length
        cols_grad = cols_grad.view(in_channels, prod(kernel_size), samples, *columns.sizes)
        offset_view = (in_channels, samples, *columns.sizes), (plane, in_channels * plane, *columns.plane_steps)  # one offset's elements
        if disjoint:
            # Every input element receives from at most one (window, offset).
            every_offset = grad_part.as_strided(
                (in_channels, *kernel_size, samples, *columns.sizes), (plane, *steps, in_channels * plane, *columns.plane_steps)
            )
            every_offset.copy_(cols_grad.view(every_offset.shape))
        else:
            for start, offset_grad in zip(offset_starts(tuple(kernel_size), tuple(steps)), cols_grad.unbind(1)):
                grad_part.as_strided(*offset_view, grad_part.storage_offset() + start).add_(offset_grad)
    return grad


def _conv_input_grad_by_rows(grad_output, weight, padded_size):
    """dX_pad by the row form: ∂L/∂A = δ·Bᵀ, whose (n, p, c, i, ·) row goes back onto input row
    p + i of channel c — one add per kernel row i."""
    n, out_channels, p, q = grad_output.shape
    in_channels, kh = weight.shape[1:3]
    band = _banded_kernel(weight, q)
    grad = grad_output.new_zeros(n, in_channels, *padded_size)
    for chunk in _batch_chunks(n, _row_bytes(in_channels, kh, padded_size, p, grad)):
        delta = _delta_matrix(grad_output[chunk])
        rows_grad = scratch.get("cols", (delta.shape[0], band.shape[0]), like=delta)
        torch.mm(delta, band.t(), out=rows_grad)
        grad_part = grad[chunk]
        rows_grad = rows_grad.view(grad_part.shape[0], p, in_channels, kh, padded_size[1])
        for i in range(kh):
            grad_part[:, :, i:i + p].add_(rows_grad[:, :, :, i].transpose(1, 2))
    return grad


def conv_weight_grad(input, grad_output, kernel_size, geometry: ConvGeometry):
    """dW[o, c, j] = Σ_{n, p} δ[n, o, p] · x_pad[n, c, p·s + j·d]: the input correlated with δ.

    As a matrix product per group: dW_g = δ_g · cols_gᵀ (the seeds' ∂L/∂W = ∂L/∂Y·Xᵀ), the sum
    over the batch and positions being the GEMM's reduction dimension. Plane-span columns
    need a finite x (gap columns hold 0·x), as does the shifted form, one product per kernel
    offset; the pointwise form sums δ_n·x_nᵀ. In the row form dW is the band of Aᵀ·δ; the
    entries off the band, which B's zeros would meet, are computed and dropped.
    """
    groups = geometry.groups
    if _pointwise((grad_output.shape[1], input.shape[1], *kernel_size), geometry, input.shape[2:], input, grad_output):
        return _conv_weight_grad_pointwise(input, grad_output)
    weight_shape = (grad_output.shape[1], input.shape[1] // groups, *kernel_size)
    if depthwise.flat_weight_grad(weight_shape, input.shape[2:], grad_output.shape[2:], geometry, input, grad_output):
        return depthwise.weight_grad(input, grad_output, kernel_size, geometry.padding, geometry.dilation)
    padded_size = [i + lo + hi for i, (lo, hi) in zip(input.shape[2:], geometry.padding)]
    if _row_form(input.shape[1], grad_output.shape[1], kernel_size, padded_size, grad_output.shape[2:], input, geometry):
        return _conv_weight_grad_by_rows(_padded(input, geometry), grad_output, kernel_size)
    if _shift_form(input.shape[:2], weight_shape, input.shape[2:], grad_output.shape[2:], geometry, gap_operand=input):
        return _conv_weight_grad_shifted(input, grad_output, kernel_size, geometry)
    x_pad = _padded(input, geometry)
    columns = _choose_columns(x_pad.shape[2:], grad_output.shape[2:], geometry, grad_output.shape[1] // groups, gap_operand=input)
    grad = None  # (G, O/G, C/G·K), summed over the batch's chunks
    weight_bytes = grad_output.shape[1] * x_pad.shape[1] // groups * prod(kernel_size) * x_pad.element_size()
    for chunk in _batch_chunks(input.shape[0], _columns_bytes(x_pad.shape[1], kernel_size, columns, x_pad), weight_bytes):
        cols_t = _columns(x_pad[chunk], kernel_size, geometry, columns).transpose(1, 2)
        delta = _delta_rows(grad_output[chunk], columns, groups)
        grad = torch.bmm(delta, cols_t) if grad is None else grad.baddbmm_(delta, cols_t)
    return grad.view(grad_output.shape[1], input.shape[1] // groups, *kernel_size)


def _conv_weight_grad_by_rows(x_pad, grad_output, kernel_size):
    """dW[o, c, i, j] = Σ_q (Aᵀ·δ)[(c, i, q + j), (o, q)]: the row form's product, summed along its band."""
    n, out_channels, p, q = grad_output.shape
    in_channels, kh = x_pad.shape[1], kernel_size[0]
    grad = None  # Aᵀ·δ (C·kh·Wp, O·Q), summed over the batch's chunks
    for chunk in _batch_chunks(n, _row_bytes(in_channels, kh, x_pad.shape[2:], p, x_pad)):
        a_t, delta = _row_matrix(x_pad[chunk], kh, p).t(), _delta_matrix(grad_output[chunk])
        grad = torch.mm(a_t, delta) if grad is None else grad.addmm_(a_t, delta)
    return _band(grad, in_channels, kernel_size, out_channels).sum(-1).permute(3, 0, 1, 2)


def _shift_form(batch_and_channels, weight_shape, input_size, output_size, geometry: ConvGeometry, gap_operand: torch.Tensor | None = None) -> bool:
    """Whether the shifted form computes this convolution (see the module's notes): a sample,
    channels in and out and an output; and one input channel in each of several groups (im2col's
    product is then G one-row products), or at least ``_SHIFT_MIN_CHANNELS`` with phase planes of
    at most ``_SHIFT_OVERHEAD`` times the output. Backward passes name the operand that meets the
    gap columns' zeros (``gap_operand``), which must then be finite, as 0·inf would leak."""
    (n, in_channels), (out_channels, group_channels, *kernel_size) = batch_and_channels, weight_shape
    one_channel_groups = group_channels == 1 and geometry.groups > 1
    if n == 0 or in_channels == 0 or out_channels == 0 or prod(output_size) == 0 or not (one_channel_groups or group_channels >= _SHIFT_MIN_CHANNELS):
        return False
    return (
        (one_channel_groups or prod(_phase_size(input_size, geometry)) <= _SHIFT_OVERHEAD * prod(output_size))
        and (gap_operand is None or all_finite(gap_operand))  # last: it reads the whole operand
    )


def _phase_size(input_size, geometry: ConvGeometry) -> tuple[int, ...]:
    """The size of each stride phase of the padded plane: ⌈(I + lo + hi) / s⌉ per dim."""
    return tuple(-(-(i + lo + hi) // s) for i, (lo, hi), s in zip(input_size, geometry.padding, geometry.stride))


class _Shifted(NamedTuple):
    """The shifted form's numbers for one convolution. The padded plane is split by the stride
    into phase planes of ``phase_size`` (``plane`` elements, row-major strides ``plane_strides``):
    phase φ holds x_pad[…, r·s + φ] at r. Kernel offset j reads phase ``offsets[j][0]`` (an index
    into ``phases``, the phases some offset reads) from ``offsets[j][1]`` on: window p reads
    x_pad[p·s + j·d], phase (j·d) mod s at r = p + ⌊j·d / s⌋. ``span`` is a sample's columns
    from the first window's corner to the last's; ``input_size`` and ``padding`` place x."""

    input_size: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    stride: tuple[int, ...]
    phase_size: tuple[int, ...]
    plane: int
    plane_strides: tuple[int, ...]
    output_size: tuple[int, ...]
    phases: tuple[tuple[int, ...], ...]
    offsets: tuple[tuple[int, int], ...]
    span: int

    def columns(self, samples: int) -> int:
        """Columns of ``samples`` consecutive samples: whole planes but the last sample's span."""
        return (samples - 1) * self.plane + self.span

    def outputs(self, rows: torch.Tensor, samples: int) -> torch.Tensor:
        """The (n, O, *P) view of (G, O/G, columns) rows: output position p of sample n is
        column n·plane + Σ_d p_d·T_d."""
        out_channels = rows.shape[0] * rows.shape[1]
        return rows.as_strided((samples, out_channels, *self.output_size), (self.plane, rows.shape[2], *self.plane_strides), rows.storage_offset())

    def fills_input(self) -> bool:
        """Whether x fills the phase planes (no padding, unit stride): then no position stays zero."""
        return all(lo == 0 and hi == 0 for lo, hi in self.padding) and all(s == 1 for s in self.stride)

    def phase_parts(self):
        """Per phase that some offset reads, (its index, where x's elements sit in the phase
        plane, which elements of x): x[…, i] with i + pad_lo ≡ φ (mod s), i = i₀ + m·s, sits at
        r = (i + pad_lo − φ) / s. Phases holding no element of x are left out."""
        for index, phase in enumerate(self.phases):
            plane_part, input_part = [], []
            for size, (lo, _), s, f in zip(self.input_size, self.padding, self.stride, phase):
                first = (f - lo) % s
                count = len(range(first, size, s))
                plane_part.append(slice((first + lo - f) // s, (first + lo - f) // s + count))
                input_part.append(slice(first, size, s))
            if all(part.start < part.stop for part in plane_part):
                yield index, tuple(plane_part), tuple(input_part)


@functools.lru_cache(maxsize=256)
def _shifted(input_size, kernel_size, output_size, geometry: ConvGeometry) -> _Shifted:
    """The shifted form's numbers; ``output_size`` is δ's in the input gradient, which may
    hold fewer windows than fit (a transposed convolution's output_padding ≥ stride)."""
    phase_size = _phase_size(input_size, geometry)
    strides = plane_strides(phase_size)
    phases, offsets = [], []
    for offset in itertools.product(*map(range, kernel_size)):
        reach = [j * d for j, d in zip(offset, geometry.dilation)]
        phase = tuple(r % s for r, s in zip(reach, geometry.stride))
        if phase not in phases:
            phases.append(phase)
        offsets.append((phases.index(phase), sum(r // s * t for r, s, t in zip(reach, geometry.stride, strides))))
    span = sum((p - 1) * t for p, t in zip(output_size, strides)) + 1
    return _Shifted(
        tuple(input_size), geometry.padding, geometry.stride, phase_size, prod(phase_size), tuple(strides),
        tuple(output_size), tuple(phases), tuple(offsets), span,
    )


def _shifted_input(x: torch.Tensor, shifted: _Shifted, groups: int) -> torch.Tensor:
    """x_cm (G, C/G, phases, n·plane): x zero-padded, split into the phases that offsets read and
    laid out channel-major, in a scratch buffer kept zero where no element of x goes (only
    those positions are ever written; the zero-kept buffers are few, so one that x fills is a
    plain one); valid until the next call in the same thread."""
    n, channels = x.shape[:2]
    shape = (channels, len(shifted.phases), n, *shifted.phase_size)
    if shifted.fills_input():
        buffer = scratch.get("shifted input", shape, like=x)
    else:
        buffer = scratch.zeros("shifted input", shape, x, shifted)
    for index, plane_part, input_part in shifted.phase_parts():
        buffer[(slice(None), index, slice(None), *plane_part)].copy_(x[(slice(None), slice(None), *input_part)].transpose(0, 1))
    return buffer.view(groups, channels // groups, len(shifted.phases), n * shifted.plane)


def _shifted_delta(grad_output: torch.Tensor, shifted: _Shifted, groups: int) -> torch.Tensor:
    """δ (n, O, *P) as (G, O/G, columns) rows, zero in the columns between windows; in a scratch
    buffer whose gaps, never written, stay zero (a plain one where there are none)."""
    n, out_channels = grad_output.shape[:2]
    shape = (groups, out_channels // groups, shifted.columns(n))
    if shifted.plane == prod(shifted.output_size):  # no gaps
        rows = scratch.get("rows", shape, like=grad_output)
    else:
        rows = scratch.zeros("shifted delta", shape, grad_output, (shifted.plane, shifted.plane_strides, shifted.output_size))
    shifted.outputs(rows, n).copy_(grad_output)
    return rows


def _by_offset(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """W (O, C/G, *k) as (K, G, O/G, C/G): W_j per group, each contiguous."""
    out_channels, group_channels = weight.shape[:2]
    return weight.reshape(groups, out_channels // groups, group_channels, -1).permute(3, 0, 1, 2).contiguous()


def _product_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, accumulate: bool, bias: torch.Tensor | None = None):
    """out = a·b (+ bias), or out += a·b with ``accumulate``, batched over groups. A product over
    a contraction of one (depthwise kernels) is the outer product, done elementwise: BLAS runs
    such products far below memory speed."""
    if a.shape[-1] == 1:
        if accumulate:
            out.addcmul_(a, b)
        elif bias is None:
            torch.mul(a, b, out=out)
        else:
            torch.addcmul(bias, a, b, out=out)
    elif accumulate:
        out.baddbmm_(a, b)
    elif bias is None:
        torch.bmm(a, b, out=out)
    else:
        torch.baddbmm(bias, a, b, out=out)


def _shift_chunk_bytes(channels: int, shifted: _Shifted, like: torch.Tensor) -> int:
    """The shifted form's working set per sample: the phase planes of every input and output channel."""
    return channels * len(shifted.phases) * shifted.plane * like.element_size()


def _conv_forward_shifted(input, weight, bias, geometry: ConvGeometry, activation):
    """y = Σ_j W_j · x_cm[:, s_j + q] (+ b), the shifted form of ``conv_forward``."""
    n, in_channels = input.shape[:2]
    out_channels, groups = weight.shape[0], geometry.groups
    shifted = _shifted(tuple(input.shape[2:]), tuple(weight.shape[2:]), geometry.output_size(input.shape[2:], weight.shape[2:]), geometry)
    w = _by_offset(weight, groups)
    bias = None if bias is None else bias.view(groups, -1, 1)
    output = input.new_empty((n, out_channels, *shifted.output_size))
    for chunk in _batch_chunks(n, _shift_chunk_bytes(in_channels + out_channels, shifted, input), _bytes(weight)):
        x_cm = _shifted_input(input[chunk], shifted, groups)
        samples = x_cm.shape[3] // shifted.plane
        rows = scratch.get("rows", (groups, out_channels // groups, shifted.columns(samples)), like=input)
        for j, (phase, start) in enumerate(shifted.offsets):
            _product_into(rows, w[j], x_cm[:, :, phase, start:start + rows.shape[2]], accumulate=j > 0, bias=bias)
        output_part = output[chunk]
        if activation == "relu":
            torch.clamp(shifted.outputs(rows, samples), min=0, out=output_part)
        else:
            output_part.copy_(shifted.outputs(rows, samples))
    return output


def _conv_input_grad_shifted(grad_output, weight, input_size, geometry: ConvGeometry):
    """dX by dX_cm[:, s_j + q] += W_jᵀ · δ, the shifted form of ``conv_input_grad``; the gap
    columns carry δ = 0 (so W must be finite). Elements of x in no phase that an offset reads
    (a stride beyond the kernel's reach) get 0."""
    n, out_channels = grad_output.shape[:2]
    groups, in_channels = geometry.groups, weight.shape[1] * geometry.groups
    shifted = _shifted(tuple(input_size), tuple(weight.shape[2:]), tuple(grad_output.shape[2:]), geometry)
    w_t = _by_offset(weight, groups).transpose(2, 3)
    every_phase_read = len(shifted.phases) == prod(geometry.stride)
    grad = (grad_output.new_empty if every_phase_read else grad_output.new_zeros)((n, in_channels, *input_size))
    for chunk in _batch_chunks(n, _shift_chunk_bytes(in_channels + out_channels, shifted, grad_output), _bytes(weight)):
        delta = _shifted_delta(grad_output[chunk], shifted, groups)
        grad_part = grad[chunk]
        grad_cm = scratch.get("shifted grad", (in_channels, len(shifted.phases), grad_part.shape[0], *shifted.phase_size), like=grad_output)
        grad_cm.zero_()
        grad_flat = grad_cm.view(groups, in_channels // groups, len(shifted.phases), -1)
        for j, (phase, start) in enumerate(shifted.offsets):
            _product_into(grad_flat[:, :, phase, start:start + delta.shape[2]], w_t[j], delta, accumulate=True)
        for index, plane_part, input_part in shifted.phase_parts():
            grad_part[(slice(None), slice(None), *input_part)].copy_(grad_cm[(slice(None), index, slice(None), *plane_part)].transpose(0, 1))
    return grad


def _conv_weight_grad_shifted(input, grad_output, kernel_size, geometry: ConvGeometry):
    """dW_j = δ · x_cm[:, s_j + q]ᵀ, the shifted form of ``conv_weight_grad``; the gap columns
    carry δ = 0 (so x must be finite)."""
    n, in_channels = input.shape[:2]
    out_channels, groups = grad_output.shape[1], geometry.groups
    shifted = _shifted(tuple(input.shape[2:]), tuple(kernel_size), tuple(grad_output.shape[2:]), geometry)
    grad = input.new_empty((len(shifted.offsets), groups, out_channels // groups, in_channels // groups))  # dW_j, summed over chunks
    for index, chunk in enumerate(_batch_chunks(n, _shift_chunk_bytes(in_channels + out_channels, shifted, input), _bytes(grad))):
        x_cm = _shifted_input(input[chunk], shifted, groups)
        delta = _shifted_delta(grad_output[chunk], shifted, groups)
        for j, (phase, start) in enumerate(shifted.offsets):
            _product_into(grad[j], delta, x_cm[:, :, phase, start:start + delta.shape[2]].transpose(1, 2), accumulate=index > 0)
    return grad.permute(1, 2, 3, 0).reshape(out_channels, in_channels // groups, *kernel_size)


def _pointwise(weight_shape, geometry: ConvGeometry, input_size, *operands: torch.Tensor) -> bool:
    """Whether this is a pointwise convolution — a 1×1 kernel, unit stride, no padding, one
    group, channels in and out — of a sample or more, whose ``operands`` (x forward, δ for the
    input gradient, both for the weight gradient) lie contiguous with x's ``input_size`` (a
    transposed convolution's output_padding may make x larger): then y_n = W·x_n (O×C by C×P,
    P the positions), dX_n = Wᵀ·δ_n and dW = Σ_n δ_n·x_nᵀ read and write every sample's (C, P)
    and (O, P) planes in place, with no layout copy."""
    return (
        all(k == 1 for k in weight_shape[2:]) and geometry.groups == 1 and all(s == 1 for s in geometry.stride)
        and all(lo == 0 and hi == 0 for lo, hi in geometry.padding) and weight_shape[0] > 0 and weight_shape[1] > 0
        and all(t.shape[0] > 0 and tuple(t.shape[2:]) == tuple(input_size) and t.is_contiguous() for t in operands)
    )


def _per_sample(matrix: torch.Tensor, n: int) -> torch.Tensor:
    """``matrix`` as the first operand of every sample's product: a stride-0 batch, which the
    batched product reads without copying it."""
    return matrix.expand(n, *matrix.shape)


def _conv_forward_pointwise(input, weight, bias, activation):
    """y_n = W·x_n (+ b), the pointwise form of ``conv_forward``."""
    n, out_channels = input.shape[0], weight.shape[0]
    output = input.new_empty((n, out_channels, *input.shape[2:]))
    rows, w = output.view(n, out_channels, -1), _per_sample(weight.flatten(1), n)
    if bias is None:
        torch.bmm(w, input.flatten(2), out=rows)
    else:
        torch.baddbmm(bias.view(1, -1, 1), w, input.flatten(2), out=rows)
    return output.clamp_(min=0) if activation == "relu" else output


def _conv_weight_grad_pointwise(input, grad_output):
    """dW = Σ_n δ_n·x_nᵀ, the pointwise form of ``conv_weight_grad``. Where the N partial dW_n
    are no larger than the planes they come from (O·C ≤ P·(O + C)), one batched product writes
    them and a sum adds them up, which ran 5–70 % faster on planes of 7² and more; where they
    are larger (many channels over small planes), one product per sample accumulates in place."""
    out_channels, in_channels = grad_output.shape[1], input.shape[1]
    deltas, xs = grad_output.flatten(2), input.flatten(2)
    if out_channels * in_channels <= xs.shape[2] * (out_channels + in_channels):
        grad = torch.bmm(deltas, xs.transpose(1, 2)).sum(0)
    else:
        grad = torch.mm(deltas[0], xs[0].t())
        for delta, x in zip(deltas[1:], xs[1:]):
            grad.addmm_(delta, x.t())
    return grad.view(*grad.shape, *(1,) * (input.dim() - 2))
