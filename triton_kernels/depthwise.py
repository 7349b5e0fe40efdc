"""Convolutions with one input channel per group (C_G = 1): depthwise layers (groups = C, as in
MobileNet) and single-channel inputs (LeNet's first layer, a grey-scale stem), as pooling-like
kernels rather than GEMMs.

With C_G = 1 the implicit GEMM's reduction is the K taps alone: a 16- or 32-wide tile of them
would be mostly padding, and each output channel o reads only input channel c(o) = o // M, M =
O/C the channel multiplier. Here every program computes a tile of rows × channels (rows: output
positions (n, p) forward, input positions (n, i) for the input gradient), walking the taps with
element-wise multiply-adds; channels-last tensors make the channel axis contiguous. Per
dimension s is the stride, d the dilation, lo the low padding, j a tap:

forward      y[n, o, p] = Σ_j x[n, c(o), p·s − lo + j·d] · W[o, 0, j] + b[o]
    Positions outside [0, I) are the padding (masked to 0). Epilogue: + b, optional ReLU.

input-grad   dX[n, c, i] = Σ_{r < M} Σ_{j : i + lo − j·d = p·s, 0 ≤ p < P} δ[n, c·M + r, p] · W[c·M + r, 0, j]
    Gathered per input position (the transposed convolution; the minus sign on j·d is the
    kernel's 180° rotation): a tap contributes where i + lo − j·d is a non-negative multiple of s
    below P·s. Epilogue: + b[c] (ConvTranspose's bias).

weight-grad  dW[o, 0, j] = Σ_{n, p} δ[n, o, p] · x[n, c(o), p·s − lo + j·d]
    Program (tap, channel block, split) sums one tap's products over split's chunk of the N·P
    rows; each split stores its partial sums in a (split, O, taps) buffer summed afterwards
    (deterministic, unlike atomics).

Accumulation is in float32 (float64 for float64 inputs).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    accumulator, block, configs, device_guard, empty_like_layout, geometry_3d, needs_int64, pad_front, rows_by_channels, sizes_3d,
    split_count, strides_3d, traceable, trips, tuning_bucket, unflatten,
)

# (BLOCK_M rows, BLOCK_N channels, num_warps, num_stages): memory-bound like pooling; wide channel
# tiles for channels-last, tall row tiles for few channels.
_CONFIGS = configs([(32, 64, 4, 1), (64, 32, 4, 1), (128, 16, 4, 1), (16, 128, 4, 1), (256, 4, 4, 1)], names=("BLOCK_M", "BLOCK_N"))


@triton.autotune(configs=_CONFIGS, key=["M_BUCKET", "O", "MULTIPLIER", "KD", "KH", "KW", "stride_yc"])
@triton.jit
def depthwise_forward_kernel(
    x, w, bias, y,
    M, M_BUCKET, O, MULTIPLIER,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, DD, DH, DW,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    stride_wo, stride_wd, stride_wh, stride_ww,
    stride_yn, stride_yc, stride_yd, stride_yh, stride_yw,
    HAS_BIAS: tl.constexpr, ACTIVATION: tl.constexpr, ACC: tl.constexpr, INT64: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = block(tl.program_id(0), BLOCK_M, INT64)  # output positions (n, pd, ph, pw)
    outs = block(tl.program_id(1), BLOCK_N, INT64)  # output channels
    row_mask = rows < M
    out_mask = outs < O
    n, pd, ph, pw = unflatten(rows, PD, PH, PW)
    x_rows = x + n * stride_xn
    x_chans = (outs // MULTIPLIER) * stride_xc
    first_d, first_h, first_w = pd * SD - LD, ph * SH - LH, pw * SW - LW
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for tap in range(trips(KD * KH * KW)):
        _, kd, kh, kw = unflatten(tap, KD, KH, KW)
        id_, ih, iw = first_d + kd * DD, first_h + kh * DH, first_w + kw * DW
        inside = row_mask & (id_ >= 0) & (id_ < ID) & (ih >= 0) & (ih < IH) & (iw >= 0) & (iw < IW)
        a = tl.load(x_rows[:, None] + (id_ * stride_xd + ih * stride_xh + iw * stride_xw)[:, None] + x_chans[None, :],
                    mask=inside[:, None] & out_mask[None, :], other=0.0)
        weight = tl.load(w + outs * stride_wo + kd * stride_wd + kh * stride_wh + kw * stride_ww, mask=out_mask, other=0.0)
        acc += a.to(ACC) * weight.to(ACC)[None, :]
    if HAS_BIAS:
        acc += tl.load(bias + outs, mask=out_mask, other=0.0).to(ACC)[None, :]
    if ACTIVATION == "relu":
        acc = tl.maximum(acc, 0.0)
    y_rows = y + n * stride_yn + pd * stride_yd + ph * stride_yh + pw * stride_yw
    tl.store(y_rows[:, None] + outs[None, :] * stride_yc, acc.to(y.dtype.element_ty), mask=row_mask[:, None] & out_mask[None, :])


@triton.jit
def _source_position(i, j, LO, S, DIL, P):
    """p with p·s = i + lo − j·d, and whether there is one in [0, P) (``%`` truncates like C:
    the test of a negative numerator is separate)."""
    ps = i + LO - j * DIL
    return ps // S, (ps >= 0) & (ps % S == 0) & (ps < P * S)


@triton.autotune(configs=_CONFIGS, key=["M_BUCKET", "C", "MULTIPLIER", "KD", "KH", "KW", "stride_xc"])
@triton.jit
def depthwise_input_grad_kernel(
    dy, w, bias, dx,
    M, M_BUCKET, C, MULTIPLIER,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, DD, DH, DW,
    stride_dn, stride_dc, stride_dd, stride_dh, stride_dw,
    stride_wo, stride_wd, stride_wh, stride_ww,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    HAS_BIAS: tl.constexpr, ACC: tl.constexpr, INT64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = block(tl.program_id(0), BLOCK_M, INT64)  # input positions (n, id, ih, iw)
    chans = block(tl.program_id(1), BLOCK_N, INT64)  # input channels
    row_mask = rows < M
    chan_mask = chans < C
    n, id_, ih, iw = unflatten(rows, ID, IH, IW)
    dy_rows = dy + n * stride_dn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for tap in range(trips(KD * KH * KW)):
        _, kd, kh, kw = unflatten(tap, KD, KH, KW)
        pd, from_d = _source_position(id_, kd, LD, SD, DD, PD)
        ph, from_h = _source_position(ih, kh, LH, SH, DH, PH)
        pw, from_w = _source_position(iw, kw, LW, SW, DW, PW)
        source = (row_mask & from_d & from_h & from_w)[:, None] & chan_mask[None, :]
        positions = (pd * stride_dd + ph * stride_dh + pw * stride_dw)[:, None]
        for r in range(trips(MULTIPLIER)):
            outs = chans * MULTIPLIER + r
            grad = tl.load(dy_rows[:, None] + positions + outs[None, :] * stride_dc, mask=source, other=0.0)
            weight = tl.load(w + outs * stride_wo + kd * stride_wd + kh * stride_wh + kw * stride_ww, mask=chan_mask, other=0.0)
            acc += grad.to(ACC) * weight.to(ACC)[None, :]
    if HAS_BIAS:
        acc += tl.load(bias + chans, mask=chan_mask, other=0.0).to(ACC)[None, :]
    dx_rows = dx + n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw
    tl.store(dx_rows[:, None] + chans[None, :] * stride_xc, acc.to(dx.dtype.element_ty), mask=row_mask[:, None] & chan_mask[None, :])


@triton.autotune(configs=_CONFIGS, key=["NP_BUCKET", "O", "MULTIPLIER", "KD", "KH", "KW", "stride_dc"])
@triton.jit
def depthwise_weight_grad_kernel(
    x, dy, dw,
    NP, NP_BUCKET, CHUNK, O, MULTIPLIER,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, DD, DH, DW,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    stride_dn, stride_dc, stride_dd, stride_dh, stride_dw,
    stride_ws, stride_wo, stride_wt,
    ACC: tl.constexpr, INT64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    out_blocks = tl.cdiv(O, BLOCK_N)
    tap = tl.program_id(0) // out_blocks
    outs = block(tl.program_id(0) % out_blocks, BLOCK_N, INT64)  # output channels
    split = tl.program_id(1)
    if INT64:
        split = split.to(tl.int64)
    _, kd, kh, kw = unflatten(tap, KD, KH, KW)
    out_mask = outs < O
    x_chans = (outs // MULTIPLIER) * stride_xc
    start = split * CHUNK
    end = tl.minimum(start + CHUNK, NP)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for first in range(trips(start), trips(end), BLOCK_M):
        rows = first + tl.arange(0, BLOCK_M)  # reduction index (n, pd, ph, pw)
        row_mask = rows < end
        n, pd, ph, pw = unflatten(rows, PD, PH, PW)
        id_, ih, iw = pd * SD - LD + kd * DD, ph * SH - LH + kh * DH, pw * SW - LW + kw * DW
        inside = row_mask & (id_ >= 0) & (id_ < ID) & (ih >= 0) & (ih < IH) & (iw >= 0) & (iw < IW)
        grad = tl.load(dy + (n * stride_dn + pd * stride_dd + ph * stride_dh + pw * stride_dw)[:, None] + outs[None, :] * stride_dc,
                       mask=row_mask[:, None] & out_mask[None, :], other=0.0)
        a = tl.load(x + (n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw)[:, None] + x_chans[None, :],
                    mask=inside[:, None] & out_mask[None, :], other=0.0)
        acc += grad.to(ACC) * a.to(ACC)
    tl.store(dw + split * stride_ws + outs * stride_wo + tap * stride_wt, tl.sum(acc, axis=0), mask=out_mask)


def _weight_strides_3d(weight: torch.Tensor) -> tuple:
    """(o, d, h, w) strides of a (O, 1, *k) kernel (its single input channel needs none)."""
    return (weight.stride(0), *pad_front(weight.stride()[2:], 0))


def conv_forward(input, weight, bias, geometry, activation=None):
    """y = activation(x ⋆ W + b) for C_G = 1, stored like ``input``."""
    batch, out_channels, kernel_size = input.shape[0], weight.shape[0], weight.shape[2:]
    output_size = geometry.output_size(input.shape[2:], kernel_size)
    output = empty_like_layout((batch, out_channels, *output_size), input)
    if output.numel() == 0:
        return output
    stride, low, dilation = geometry_3d(geometry)
    rows = batch * math.prod(output_size)
    with device_guard(input):
        traceable(depthwise_forward_kernel, input)[rows_by_channels(rows, out_channels)](
            input, weight, bias, output, rows, tuning_bucket(rows), out_channels, out_channels // input.shape[1],
            *sizes_3d(input), *sizes_3d(output), *sizes_3d(weight), *stride, *low, *dilation,
            *strides_3d(input), *_weight_strides_3d(weight), *strides_3d(output),
            HAS_BIAS=bias is not None, ACTIVATION=activation or "", ACC=accumulator(input.dtype),
            INT64=needs_int64(input, weight, output),
        )
    return output


def conv_input_grad(grad_output, weight, input_size, bias, geometry):
    """dX = δ ⋆ᵀ W (+ b) for C_G = 1: ConvTranspose's forward too. ``input_size``: dX's spatial size."""
    batch, out_channels = grad_output.shape[:2]
    in_channels = geometry.groups
    grad_input = empty_like_layout((batch, in_channels, *input_size), grad_output)
    if grad_input.numel() == 0:
        return grad_input
    stride, low, dilation = geometry_3d(geometry)
    rows = batch * math.prod(input_size)
    with device_guard(grad_output):
        traceable(depthwise_input_grad_kernel, grad_output)[rows_by_channels(rows, in_channels)](
            grad_output, weight, bias, grad_input, rows, tuning_bucket(rows), in_channels, out_channels // in_channels,
            *sizes_3d(grad_input), *sizes_3d(grad_output), *sizes_3d(weight), *stride, *low, *dilation,
            *strides_3d(grad_output), *_weight_strides_3d(weight), *strides_3d(grad_input),
            HAS_BIAS=bias is not None, ACC=accumulator(grad_output.dtype), INT64=needs_int64(grad_output, weight, grad_input),
        )
    return grad_input


# Each split of the weight gradient's N·P rows keeps at least this many (``split_count``).
_ROWS_PER_SPLIT = 4096


def conv_weight_grad(input, grad_output, kernel_size, geometry, split_k=None):
    """dW = x ⋆ δ for C_G = 1, shaped (O, 1, *kernel_size). ``split_k``: number of N·P chunks
    (default: enough programs to fill a GPU twice over)."""
    out_channels, taps = grad_output.shape[1], math.prod(kernel_size)
    rows = grad_output.shape[0] * math.prod(grad_output.shape[2:])
    weight_grad = input.new_empty((out_channels, 1, *kernel_size))
    if weight_grad.numel() == 0 or rows == 0:
        return weight_grad.zero_()
    if split_k is None:
        split_k = split_count(taps * triton.cdiv(out_channels, 64), rows, _ROWS_PER_SPLIT, input.device)
    chunk = triton.cdiv(rows, split_k)
    partial = input.new_empty((triton.cdiv(rows, chunk), out_channels, taps), dtype=torch.promote_types(input.dtype, torch.float32))
    stride, low, dilation = geometry_3d(geometry)
    grid = lambda meta: (taps * triton.cdiv(out_channels, meta["BLOCK_N"]), partial.shape[0])
    with device_guard(input):
        traceable(depthwise_weight_grad_kernel, input)[grid](
            input, grad_output, partial, rows, tuning_bucket(rows), chunk, out_channels, out_channels // input.shape[1],
            *sizes_3d(input), *sizes_3d(grad_output), *pad_front(kernel_size, 1), *stride, *low, *dilation,
            *strides_3d(input), *strides_3d(grad_output), *partial.stride(),
            ACC=accumulator(input.dtype), INT64=needs_int64(input, grad_output, partial),
        )
    return weight_grad.copy_(partial.sum(0).view_as(weight_grad))
