"""Pooling: max (values + torch's argmax indices) and average, plain or adaptive, with backward.

As for convolution, tensors are read as (N, C, D, H, W) (``sizes_3d``, ``strides_3d``) through their
strides. Every kernel tiles rows (n, spatial position) × channels: program (r, t) computes rows
r·BLOCK_M… × channels t·BLOCK_N… (channels-last reads are contiguous along the tile's
columns, NCHW ones along its rows). Output p's window, per dimension, starts at
start(p) = p·s − lo (s stride, lo low padding) and has k taps j at start(p) + j·d (d dilation);
torch's adaptive windows (ADAPTIVE) are [⌊p·I/P⌋, ⌈(p+1)·I/P⌉) instead, d = 1, k the longest.
Window elements outside the input are the padding.

max forward   y[n, c, p] = max_j x[n, c, start(p) + j·d] over the in-bounds taps; one pass over
    the taps in scan (row-major) order keeps the best value and its flat plane index
    (i_d·H + i_h)·W + i_w. Like torch, a tap replaces the best when it is greater or NaN, and
    the first in-bounds tap always does, so padding never wins.
max backward  dX[n, c, i] = Σ_{p : indices[n, c, p] = i} δ[n, c, p]: gathered per input
    position i from the windows that may hold it (as average pooling's backward finds them,
    with the dilated span (k − 1)·d + 1 for k), each adding δ[p] where its argmax is i. A fixed
    order of float adds and no atomics: deterministic, as torch.use_deterministic_algorithms asks.
avg forward   y[n, c, p] = Σ_{i ∈ window(p)} x[n, c, i] / divisor(p), padding read as zeros. The
    divisor is divisor_override, else the window's size clipped to the padded input
    (count_include_pad) or to the input.
avg backward  dX[n, c, i] = Σ_{p : i ∈ window(p)} δ[n, c, p] / divisor(p): gathered per input
    position (deterministic, no atomics). The windows holding i are consecutive: per dim at most
    ⌈k/s⌉ of them, ending at p = ⌊(i + lo)/s⌋ (adaptive: ≤ ⌈P/I⌉ + 1, starting at ⌊i·P/I⌋).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .._geometry import longest_adaptive_window
from ._common import (
    accumulator, block, configs, device_guard, empty_like_layout, needs_int64, pad_front, rows_by_channels, sizes_3d, strides_3d,
    traceable, trips, tuning_bucket, unflatten,
)

# (BLOCK_M rows, BLOCK_N channels, num_warps, num_stages): memory-bound, so tiles only need
# enough rows for NCHW and enough channels for channels-last to read whole cache lines.
_CONFIGS = configs([(128, 16, 4, 1), (64, 32, 4, 1), (32, 64, 4, 1), (16, 128, 4, 1), (256, 8, 8, 1)], names=("BLOCK_M", "BLOCK_N"))
_KEY = ["M_BUCKET", "C", "KD", "KH", "KW", "stride_xc"]


@triton.jit
def _window(p, I, P, K, S, LO, ADAPTIVE: tl.constexpr):
    """Window p's input range [start, end) along one dim, for unit dilation (dilated max pooling
    windows use the start only)."""
    if ADAPTIVE:
        return p * I // P, ((p + 1) * I + P - 1) // P
    return p * S - LO, p * S - LO + K


@triton.autotune(configs=_CONFIGS, key=_KEY)
@triton.jit
def max_pool_forward_kernel(
    x, y, indices,
    M, M_BUCKET, C,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, DD, DH, DW,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    stride_yn, stride_yc, stride_yd, stride_yh, stride_yw,
    stride_in, stride_ic, stride_id, stride_ih, stride_iw,
    ADAPTIVE: tl.constexpr, ACC: tl.constexpr, INT64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    # K*: the kernel size, or (ADAPTIVE, unit dilation) the longest window: taps past a window's end are masked.
    rows = block(tl.program_id(0), BLOCK_M, INT64)  # output positions (n, pd, ph, pw)
    chans = block(tl.program_id(1), BLOCK_N, INT64)
    row_mask = rows < M
    chan_mask = chans < C
    n, pd, ph, pw = unflatten(rows, PD, PH, PW)
    start_d, end_d = _window(pd, ID, PD, KD, SD, LD, ADAPTIVE)
    start_h, end_h = _window(ph, IH, PH, KH, SH, LH, ADAPTIVE)
    start_w, end_w = _window(pw, IW, PW, KW, SW, LW, ADAPTIVE)
    # Compared in ACC (exact for every input dtype): the interpreter compares bfloat16 as raw bits.
    best = tl.full((BLOCK_M, BLOCK_N), float("-inf"), ACC)
    argmax = tl.full((BLOCK_M, BLOCK_N), -1, tl.int64)
    for tap in range(trips(KD * KH * KW)):
        _, kd, kh, kw = unflatten(tap, KD, KH, KW)
        id_, ih, iw = start_d + kd * DD, start_h + kh * DH, start_w + kw * DW
        inside = row_mask & (id_ >= 0) & (id_ < ID) & (ih >= 0) & (ih < IH) & (iw >= 0) & (iw < IW)
        if ADAPTIVE:
            inside &= (id_ < end_d) & (ih < end_h) & (iw < end_w)
        value = tl.load(x + (n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw)[:, None]
                        + chans[None, :] * stride_xc, mask=inside[:, None] & chan_mask[None, :], other=float("-inf")).to(ACC)
        take = inside[:, None] & ((value > best) | (value != value) | (argmax < 0))
        best = tl.where(take, value, best)
        argmax = tl.where(take, ((id_ * IH + ih) * IW + iw).to(tl.int64)[:, None], argmax)
    mask = row_mask[:, None] & chan_mask[None, :]
    tl.store(y + (n * stride_yn + pd * stride_yd + ph * stride_yh + pw * stride_yw)[:, None] + chans[None, :] * stride_yc,
             best.to(y.dtype.element_ty), mask=mask)
    tl.store(indices + (n * stride_in + pd * stride_id + ph * stride_ih + pw * stride_iw)[:, None] + chans[None, :] * stride_ic,
             argmax, mask=mask)


@triton.jit
def _counted_size(pd, ph, pw, ID, IH, IW, PD, PH, PW, KD, KH, KW, SD, SH, SW, LD, LH, LW,
                  ADAPTIVE: tl.constexpr, COUNT_PAD: tl.constexpr):
    """The divisor without divisor_override: Π over dims of window p's size clipped to the
    padded input (COUNT_PAD) or to the input (adaptive windows lie inside it: their size)."""
    start_d, end_d = _window(pd, ID, PD, KD, SD, LD, ADAPTIVE)
    start_h, end_h = _window(ph, IH, PH, KH, SH, LH, ADAPTIVE)
    start_w, end_w = _window(pw, IW, PW, KW, SW, LW, ADAPTIVE)
    if COUNT_PAD:
        return (tl.minimum(end_d, ID + LD) - start_d) * (tl.minimum(end_h, IH + LH) - start_h) * (tl.minimum(end_w, IW + LW) - start_w)
    return ((tl.minimum(end_d, ID) - tl.maximum(start_d, 0)) * (tl.minimum(end_h, IH) - tl.maximum(start_h, 0))
            * (tl.minimum(end_w, IW) - tl.maximum(start_w, 0)))


@triton.autotune(configs=_CONFIGS, key=_KEY)
@triton.jit
def avg_pool_forward_kernel(
    x, y,
    M, M_BUCKET, C,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    stride_yn, stride_yc, stride_yd, stride_yh, stride_yw,
    ADAPTIVE: tl.constexpr, COUNT_PAD: tl.constexpr, DIVISOR: tl.constexpr, ACC: tl.constexpr,
    INT64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    # K*: the kernel size, or (ADAPTIVE) the longest window: taps past a window's end are masked.
    rows = block(tl.program_id(0), BLOCK_M, INT64)  # output positions (n, pd, ph, pw)
    chans = block(tl.program_id(1), BLOCK_N, INT64)
    row_mask = rows < M
    chan_mask = chans < C
    n, pd, ph, pw = unflatten(rows, PD, PH, PW)
    start_d, end_d = _window(pd, ID, PD, KD, SD, LD, ADAPTIVE)
    start_h, end_h = _window(ph, IH, PH, KH, SH, LH, ADAPTIVE)
    start_w, end_w = _window(pw, IW, PW, KW, SW, LW, ADAPTIVE)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for tap in range(trips(KD * KH * KW)):
        _, kd, kh, kw = unflatten(tap, KD, KH, KW)
        id_, ih, iw = start_d + kd, start_h + kh, start_w + kw
        inside = (row_mask & (id_ >= 0) & (id_ < tl.minimum(end_d, ID)) & (ih >= 0) & (ih < tl.minimum(end_h, IH))
                  & (iw >= 0) & (iw < tl.minimum(end_w, IW)))
        acc += tl.load(x + (n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw)[:, None]
                       + chans[None, :] * stride_xc, mask=inside[:, None] & chan_mask[None, :], other=0.0).to(ACC)
    if DIVISOR != 0:  # divisor_override
        acc = acc / DIVISOR
    else:
        acc = acc / _counted_size(pd, ph, pw, ID, IH, IW, PD, PH, PW, KD, KH, KW, SD, SH, SW, LD, LH, LW, ADAPTIVE, COUNT_PAD)[:, None]
    tl.store(y + (n * stride_yn + pd * stride_yd + ph * stride_yh + pw * stride_yw)[:, None] + chans[None, :] * stride_yc,
             acc.to(y.dtype.element_ty), mask=row_mask[:, None] & chan_mask[None, :])


@triton.jit
def _last_window(i, t, I, P, S, LO, ADAPTIVE: tl.constexpr):
    """The t-th window that may hold input position i: windows ⌊(i + lo)/s⌋, ⌊(i + lo)/s⌋ − 1, …
    (adaptive: ⌊i·P/I⌋, ⌊i·P/I⌋ + 1, …)."""
    if ADAPTIVE:
        return i * P // I + t
    return (i + LO) // S - t


@triton.autotune(configs=_CONFIGS, key=["M_BUCKET", "C", "TD", "TH", "TW", "stride_xc"])
@triton.jit
def max_pool_backward_kernel(
    dy, indices, dx,
    M, M_BUCKET, C,
    ID, IH, IW, PD, PH, PW,
    SD, SH, SW, LD, LH, LW, TD, TH, TW,
    stride_dn, stride_dc, stride_dd, stride_dh, stride_dw,
    stride_in, stride_ic, stride_id, stride_ih, stride_iw,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    ADAPTIVE: tl.constexpr, ACC: tl.constexpr, INT64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    # T*: how many windows can hold one input position, per dim. A candidate window adds its δ
    # when its argmax is this position, which also proves the window holds it.
    rows = block(tl.program_id(0), BLOCK_M, INT64)  # input positions (n, id, ih, iw)
    chans = block(tl.program_id(1), BLOCK_N, INT64)
    row_mask = rows < M
    chan_mask = chans < C
    n, id_, ih, iw = unflatten(rows, ID, IH, IW)
    flat = (id_ * IH + ih) * IW + iw  # the index max pooling stores
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for t in range(trips(TD * TH * TW)):
        _, td, th, tw = unflatten(t, TD, TH, TW)
        pd = _last_window(id_, td, ID, PD, SD, LD, ADAPTIVE)
        ph = _last_window(ih, th, IH, PH, SH, LH, ADAPTIVE)
        pw = _last_window(iw, tw, IW, PW, SW, LW, ADAPTIVE)
        candidate = (row_mask & (pd >= 0) & (pd < PD) & (ph >= 0) & (ph < PH) & (pw >= 0) & (pw < PW))[:, None] & chan_mask[None, :]
        argmax = tl.load(indices + (n * stride_in + pd * stride_id + ph * stride_ih + pw * stride_iw)[:, None]
                         + chans[None, :] * stride_ic, mask=candidate, other=-1)
        routed = candidate & (argmax == flat[:, None])
        acc += tl.load(dy + (n * stride_dn + pd * stride_dd + ph * stride_dh + pw * stride_dw)[:, None]
                       + chans[None, :] * stride_dc, mask=routed, other=0.0).to(ACC)
    tl.store(dx + (n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw)[:, None] + chans[None, :] * stride_xc,
             acc.to(dx.dtype.element_ty), mask=row_mask[:, None] & chan_mask[None, :])


@triton.autotune(configs=_CONFIGS, key=["M_BUCKET", "C", "TD", "TH", "TW", "stride_xc"])
@triton.jit
def avg_pool_backward_kernel(
    dy, dx,
    M, M_BUCKET, C,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, TD, TH, TW,
    stride_dn, stride_dc, stride_dd, stride_dh, stride_dw,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    ADAPTIVE: tl.constexpr, COUNT_PAD: tl.constexpr, DIVISOR: tl.constexpr, ACC: tl.constexpr,
    INT64: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    # T*: how many windows can hold one input position, per dim.
    rows = block(tl.program_id(0), BLOCK_M, INT64)  # input positions (n, id, ih, iw)
    chans = block(tl.program_id(1), BLOCK_N, INT64)
    row_mask = rows < M
    chan_mask = chans < C
    n, id_, ih, iw = unflatten(rows, ID, IH, IW)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for t in range(trips(TD * TH * TW)):
        _, td, th, tw = unflatten(t, TD, TH, TW)
        pd = _last_window(id_, td, ID, PD, SD, LD, ADAPTIVE)
        ph = _last_window(ih, th, IH, PH, SH, LH, ADAPTIVE)
        pw = _last_window(iw, tw, IW, PW, SW, LW, ADAPTIVE)
        start_d, end_d = _window(pd, ID, PD, KD, SD, LD, ADAPTIVE)
        start_h, end_h = _window(ph, IH, PH, KH, SH, LH, ADAPTIVE)
        start_w, end_w = _window(pw, IW, PW, KW, SW, LW, ADAPTIVE)
        holds = (row_mask & (pd >= 0) & (pd < PD) & (start_d <= id_) & (id_ < end_d) & (ph >= 0) & (ph < PH)
                 & (start_h <= ih) & (ih < end_h) & (pw >= 0) & (pw < PW) & (start_w <= iw) & (iw < end_w))
        grad = tl.load(dy + (n * stride_dn + pd * stride_dd + ph * stride_dh + pw * stride_dw)[:, None]
                       + chans[None, :] * stride_dc, mask=holds[:, None] & chan_mask[None, :], other=0.0).to(ACC)
        if DIVISOR != 0:  # divisor_override
            acc += grad / DIVISOR
        else:
            size = _counted_size(pd, ph, pw, ID, IH, IW, PD, PH, PW, KD, KH, KW, SD, SH, SW, LD, LH, LW, ADAPTIVE, COUNT_PAD)
            acc += grad / tl.where(holds, size, 1)[:, None]  # windows not holding i may have size 0
    tl.store(dx + (n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw)[:, None] + chans[None, :] * stride_xc,
             acc.to(dx.dtype.element_ty), mask=row_mask[:, None] & chan_mask[None, :])


def window_max(input, output_size, kernel_size=None, stride=None, padding=None, dilation=None):
    """(y, indices): the max over each window — the kernel_size/stride/padding/dilation windows,
    or with ``kernel_size`` None torch's adaptive ones — and its flat input-plane index (int64)."""
    batch, channels = input.shape[:2]
    output = empty_like_layout((batch, channels, *output_size), input)
    indices = empty_like_layout((batch, channels, *output_size), input, dtype=torch.int64)
    if output.numel() == 0:
        return output, indices
    adaptive = kernel_size is None
    if adaptive:
        kernel_size, stride, padding, dilation = _adaptive_geometry(input.shape[2:], output_size)
    rows = batch * math.prod(output_size)
    with device_guard(input):
        traceable(max_pool_forward_kernel, input)[rows_by_channels(rows, channels)](
            input, output, indices, rows, tuning_bucket(rows), channels, *sizes_3d(input), *sizes_3d(output), *pad_front(kernel_size, 1),
            *pad_front(stride, 1), *pad_front(padding, 0), *pad_front(dilation, 1),
            *strides_3d(input), *strides_3d(output), *strides_3d(indices),
            ADAPTIVE=adaptive, ACC=accumulator(input.dtype), INT64=needs_int64(input, output),
        )
    return output, indices


def max_pool_backward(grad_output, indices, input_size, kernel_size=None, stride=None, padding=None, dilation=None):
    """dX: δ gathered at each input position from the windows whose argmax it is — the
    kernel_size/stride/padding/dilation windows, or with ``kernel_size`` None torch's adaptive ones."""
    batch, channels = grad_output.shape[:2]
    output_size = grad_output.shape[2:]
    grad_input = empty_like_layout((batch, channels, *input_size), grad_output)
    if grad_input.numel() == 0:
        return grad_input
    if grad_output.numel() == 0:
        return grad_input.zero_()
    adaptive = kernel_size is None
    if adaptive:
        _, stride, padding, _ = _adaptive_geometry(input_size, output_size)
        holders = [longest_adaptive_window(o, i) for i, o in zip(input_size, output_size)]
    else:  # windows ⌊(i + lo)/s⌋ back to the first whose dilated span reaches i
        holders = [triton.cdiv((k - 1) * d + 1, s) for k, s, d in zip(kernel_size, stride, dilation)]
    rows = batch * math.prod(input_size)
    with device_guard(grad_output):
        traceable(max_pool_backward_kernel, grad_output)[rows_by_channels(rows, channels)](
            grad_output, indices, grad_input, rows, tuning_bucket(rows), channels, *sizes_3d(grad_input), *sizes_3d(grad_output),
            *pad_front(stride, 1), *pad_front(padding, 0), *pad_front(holders, 1),
            *strides_3d(grad_output), *strides_3d(indices), *strides_3d(grad_input),
            ADAPTIVE=adaptive, ACC=accumulator(grad_output.dtype), INT64=needs_int64(grad_output, indices, grad_input),
        )
    return grad_input


def _adaptive_geometry(input_size, output_size):
    """kernel_size (the longest window), stride, padding and dilation for ADAPTIVE kernels."""
    unit = (1,) * len(output_size)
    return [longest_adaptive_window(i, o) for i, o in zip(input_size, output_size)], unit, (0,) * len(output_size), unit


def window_average(input, output_size, kernel_size=None, stride=None, padding=None, count_include_pad=True,
                   divisor_override=None):
    """Average over each window: the kernel_size/stride/padding windows, or with ``kernel_size``
    None torch's adaptive ones."""
    batch, channels = input.shape[:2]
    output = empty_like_layout((batch, channels, *output_size), input)
    if output.numel() == 0:
        return output
    adaptive = kernel_size is None
    if adaptive:
        kernel_size, stride, padding, _ = _adaptive_geometry(input.shape[2:], output_size)
    rows = batch * math.prod(output_size)
    with device_guard(input):
        traceable(avg_pool_forward_kernel, input)[rows_by_channels(rows, channels)](
            input, output, rows, tuning_bucket(rows), channels, *sizes_3d(input), *sizes_3d(output), *pad_front(kernel_size, 1),
            *pad_front(stride, 1), *pad_front(padding, 0), *strides_3d(input), *strides_3d(output),
            ADAPTIVE=adaptive, COUNT_PAD=count_include_pad and not adaptive, DIVISOR=divisor_override or 0,
            ACC=accumulator(input.dtype), INT64=needs_int64(input, output),
        )
    return output


def window_average_backward(grad_output, input_size, kernel_size=None, stride=None, padding=None,
                            count_include_pad=True, divisor_override=None):
    """The adjoint of ``window_average``: dX gathered from the windows holding each input element."""
    batch, channels = grad_output.shape[:2]
    output_size = grad_output.shape[2:]
    grad_input = empty_like_layout((batch, channels, *input_size), grad_output)
    if grad_input.numel() == 0:
        return grad_input
    if grad_output.numel() == 0:
        return grad_input.zero_()
    adaptive = kernel_size is None
    if adaptive:
        kernel_size, stride, padding, _ = _adaptive_geometry(input_size, output_size)
        holders = [longest_adaptive_window(o, i) for i, o in zip(input_size, output_size)]
    else:
        holders = [triton.cdiv(k, s) for k, s in zip(kernel_size, stride)]
    rows = batch * math.prod(input_size)
    with device_guard(grad_output):
        traceable(avg_pool_backward_kernel, grad_output)[rows_by_channels(rows, channels)](
            grad_output, grad_input, rows, tuning_bucket(rows), channels, *sizes_3d(grad_input), *sizes_3d(grad_output), *pad_front(kernel_size, 1),
            *pad_front(stride, 1), *pad_front(padding, 0), *pad_front(holders, 1),
            *strides_3d(grad_output), *strides_3d(grad_input),
            ADAPTIVE=adaptive, COUNT_PAD=count_include_pad and not adaptive, DIVISOR=divisor_override or 0,
            ACC=accumulator(grad_output.dtype), INT64=needs_int64(grad_output, grad_input),
        )
    return grad_input
