"""Convolution as implicit GEMM: forward, input-gradient (transposed convolution), weight-gradient.

Every kernel works on three spatial dims (D, H, W); 1-d and 2-d problems are read as 3-d ones
with unit dims in front (``sizes_3d``, ``strides_3d``: the tensors themselves, no copies), for
which Triton's specialisation on the value 1 removes the extra arithmetic. Every tensor is addressed through its own strides (NCHW,
channels-last and other views alike), never an im2col buffer: each kernel computes, per tile,
the input addresses its GEMM operand would hold. Per group g of G, with C_G = C/G input and
O_G = O/G output channels, taps j = (jd, jh, jw) over the kernel, s stride, d dilation, lo the
low padding, all per dimension:

forward      y[n, o, p] = Σ_{c, j} x[n, c, p·s − lo + j·d] · W[o, c, j] + b[o]
    GEMM rows (n, p) (M = N·P), columns o (O_G), reduction (j, c). Program (g·R + r, t) computes
    rows r·BLOCK_M… × output channels g·O_G + t·BLOCK_N…. One loop walks (tap, channel block):
    for tap j, row (n, p) reads input position i = p·s − lo + j·d (outside [0, I): padding,
    masked to 0), and the channel block is A[(n, p), c] = x[n, g·C_G + c, i], B[c, o] = W[o, c, j].
    With fewer than 16 channels per group (the stem's 3, LeNet's 6: ``JOINT``) the loop walks
    the flattened reduction r = tap·C_G + c instead, BLOCK_K of it per step, each element with
    its own tap and so its own padding mask.
    Epilogue: + b[o], optional ReLU, store in y's dtype.

input-grad   dX[n, c, i] = Σ_{o, j : i + lo − j·d = p·s, 0 ≤ p < P} δ[n, o, p] · W[o, c, j]
    The transposed ("full") convolution of the notes, without the zero-inserted δ: positions
    are split into stride phases ρ = (i + lo) mod s, and a phase meets only the taps with
    j·d ≡ ρ (mod s), i.e. j = j₀(ρ), j₀ + s/gcd(s, d), …; every other tap would read an
    inserted zero. Program ((g·S + ρ)·R + r, t) computes phase ρ's rows r·BLOCK_M… (n, q) with
    i = i₀(ρ) + q·s, × input channels g·C_G + t·BLOCK_N…; its loop walks (phase tap, block of
    O_G): A[(n, q), o] = δ[n, g·O_G + o, (i + lo − j·d)/s] (exact division; outside [0, P)
    masked), B[o, c] = W[g·O_G + o, c, j]. The 180° rotation of W is the minus sign on j·d.
    Phase tap t, j = j₀ + t·s/gcd(s, d), reads p = (i + lo − j₀·d)/s − t·d/gcd(s, d): one
    division per row, before the loop.
    Epilogue: + b[c] (ConvTranspose's bias), store.

weight-grad  dW[o, c, j] = Σ_{n, p} δ[n, o, p] · x[n, c, p·s − lo + j·d]
    GEMM per (group, tap): rows o, columns c, reduction over the N·P pairs (n, p). Program
    ((g·K + tap)·T + t, k) computes rows g·O_G + …BLOCK_M × columns …BLOCK_N of tap j over
    split k's chunk of (n, p) (split-K: CHUNK pairs each), in an fp32 (float64: fp64)
    accumulator. With one split it stores dW directly; with more, each split stores its partial
    sum in a (split, O, C_G, taps) buffer summed afterwards — deterministic, unlike atomics.
    With few channels (``JOINT``) a program's columns are (tap, channel) pairs, r = tap·C_G + c
    over all taps, rather than one tap's channels. Where δ's pairs lie one position stride apart
    (channels-last: ``DENSE_PAIRS``) its addresses are the pair index times that stride; only x's
    need the pairs' coordinates.

Split-K, forward and input-grad: a grid of few output tiles (a late layer's) also splits its
reduction's channels (c forward, o for the input gradient) in chunks, program axis 2 being the
chunk; each chunk stores its partial sum in a float32 (float64) buffer of (chunks·N, …) and the
epilogue (bias, ReLU) follows their total (``_add_partial_sums``). The weight gradient splits
its N·P pairs likewise.

The main loops divide nothing: rows are split into coordinates and operand addresses once,
before the loop; taps and channel blocks advance by scalar counters, each step adding one
offset along the reduction to those bases; the weight gradient's pairs advance by BLOCK_K
digit by digit with carries. Reduction masks are dropped where every block is whole
(``WHOLE_BLOCKS``); GEMM rows (and the forward's output channels) past the end repeat the last
one instead of being masked out of the loads.

Accumulation is in float32 (float64 for float64 inputs); float32 dots use TF32 only where
``torch.backends.cudnn.allow_tf32`` would let torch's convolution do so. Offsets are int64
when a tensor can hold offsets past int32 (``INT64``).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    accumulator, block, configs, device_guard, dot_precision, empty_like_layout, geometry_3d, mma, needs_int64, pad_front,
    sizes_3d, split_count, strides_3d, traceable, trips, tuning_bucket, unflatten,
)

# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages): H100-sized tiles, smaller ones for
# thin layers (few channels or positions); tuned once per problem shape (``key``).
_GEMM_SPACE = [
    (128, 128, 32, 8, 3),
    (128, 128, 64, 8, 3),
    (128, 64, 64, 4, 3),  # 64-channel layers: a whole 64-wide N and a 64-deep step
    (128, 64, 32, 4, 4),
    (64, 128, 32, 4, 4),
    (64, 64, 32, 4, 4),
    (128, 32, 32, 4, 4),
    (64, 32, 32, 2, 5),
    (32, 32, 16, 2, 5),
]
_CONFIGS = configs(_GEMM_SPACE)
# Split-K chunks are whole multiples of every config's BLOCK_K; so are the reduction lengths
# (channels per group, the weight gradient's N·P) for which the loops drop their mask (WHOLE_BLOCKS).
_K_ALIGN = max(config.kwargs["BLOCK_K"] for config in _CONFIGS)
# Fewer channels per group than this (the stem's 3, LeNet's 6): the forward's reduction and the
# weight gradient's columns run over (tap, channel) jointly (JOINT) — per tap, a 16- to 64-wide
# block would hold a few channels and idle lanes, e.g. 49 steps of 3 useful channels for a
# 7×7 stem where the joint reduction of 147 takes 5 steps of 32.
_JOINT_BELOW = 16


def _fitting(rows: str, columns: str):
    """An ``early_config_prune`` keeping the configs whose tile fits the problem: BLOCK_M at most
    the argument ``rows`` and BLOCK_N at most ``columns``, each rounded up to a power of two
    (at least 16). A bigger tile computes the same outputs with idle lanes, and tuning it
    costs a compile. With none fitting, the smallest tile. A size that is not a plain int
    (a symbolic one, while Inductor tunes) prunes nothing."""

    def prune(configs, named_args, **kwargs):
        limits = {block: named_args[name] for block, name in (("BLOCK_M", rows), ("BLOCK_N", columns))}
        if not all(type(limit) is int for limit in limits.values()):
            return configs
        limits = {block: max(16, triton.next_power_of_2(limit)) for block, limit in limits.items()}
        fitting = [config for config in configs if all(config.kwargs[block] <= limit for block, limit in limits.items())]
        return fitting or [min(configs, key=lambda config: config.kwargs["BLOCK_M"] * config.kwargs["BLOCK_N"])]

    return prune


@triton.jit
def _epilogue(acc, out_rows, channels, stride_c, row_mask, channel_mask, bias, HAS_BIAS: tl.constexpr,
              ACTIVATION: tl.constexpr):
    """out[row, channel] = activation(acc + bias[channel]) in the output's dtype."""
    if HAS_BIAS:
        acc += tl.load(bias + channels, mask=channel_mask, other=0.0).to(acc.dtype)[None, :]
    if ACTIVATION == "relu":
        acc = tl.maximum(acc, 0.0)
    tl.store(out_rows[:, None] + channels[None, :] * stride_c, acc.to(out_rows.dtype.element_ty),
             mask=row_mask[:, None] & channel_mask[None, :])


@triton.jit
def _zero(INT64: tl.constexpr):
    """A scalar 0 to count with, int64 when INT64 (a loop-carried value keeps its type)."""
    zero = tl.zeros((), dtype=tl.int32)
    if INT64:
        zero = zero.to(tl.int64)
    return zero


@triton.jit
def _within(index, size):
    """0 ≤ index < size, as one unsigned comparison: a negative index wraps past any size."""
    if index.dtype == tl.int64:
        wrapped = index.to(tl.uint64, bitcast=True)
    else:
        wrapped = index.to(tl.uint32, bitcast=True)
    return wrapped < size


@triton.jit
def _inside(position, offset, K, SIZE):
    """0 ≤ position + offset < SIZE for a joint reduction's (row, tap) pairs, ``position`` and
    ``offset`` broadcasting to them. A kernel size of 1 is a constexpr (a launch specialises 1),
    and every valid tap's offset is then 0: the row's own check, one per row, not per pair."""
    if isinstance(K, tl.constexpr) and K == 1:
        return _within(position, SIZE)
    return _within(position + offset, SIZE)


@triton.jit
def _next_step(kd, kh, kw, inner, KD, KH, KW, INNER):
    """The (tap, inner block) after (kd, kh, kw, inner) in row-major order over (KD, KH, KW,
    INNER). A kernel size equal to 1 is a constexpr (a launch specialises 1): its counter stays
    0 and the carry passes on, so 1-d, 2-d and 1×1 problems count only the dims they have."""
    inner += 1
    carry = inner == INNER
    inner = tl.where(carry, 0, inner)
    if KW != 1:
        kw += carry.to(kw.dtype)
        carry = kw == KW
        kw = tl.where(carry, 0, kw)
    if KH != 1:
        kh += carry.to(kh.dtype)
        carry = kh == KH
        kh = tl.where(carry, 0, kh)
    if KD != 1:
        kd += carry.to(kd.dtype)
    return kd, kh, kw, inner


@triton.jit
def _advance(n, d, h, w, step_n, step_d, step_h, step_w, D, H, W):
    """(n, d, h, w) + (step_n, step_d, step_h, step_w) in the mixed radix (·, D, H, W), both
    normalised (each digit below its radix): a digit sum stays below twice its radix, so one
    subtraction per digit carries."""
    w += step_w
    carry = w >= W
    w = tl.where(carry, w - W, w)
    # A radix equal to 1 is a constexpr (a launch specialises 1): 1-d and 2-d problems skip
    # their unit digits, which would only pass the carry on.
    if H != 1:
        h += step_h + carry.to(h.dtype)
        carry = h >= H
        h = tl.where(carry, h - H, h)
    if D != 1:
        d += step_d + carry.to(d.dtype)
        carry = d >= D
        d = tl.where(carry, d - D, d)
    return n + step_n + carry.to(n.dtype), d, h, w


# Tuned per problem shape (the batch-dependent length bucketed) and per compiled variant (the constexprs).
@triton.autotune(configs=_CONFIGS, prune_configs_by={"early_config_prune": _fitting("M", "O_G")},
                 key=["M_BUCKET", "C_G", "O_G", "CHUNK", "KD", "KH", "KW", "SD", "SH", "SW", "stride_xc", "stride_yc",
                      "HAS_BIAS", "ACTIVATION", "PRECISION", "INT64", "WHOLE_BLOCKS", "JOINT"])
@triton.jit
def conv_forward_kernel(
    x, w, bias, y,
    M, M_BUCKET, C_G, O_G, CHUNK,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, DD, DH, DW,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    stride_wo, stride_wc, stride_wd, stride_wh, stride_ww,
    stride_ys, stride_yn, stride_yc, stride_yd, stride_yh, stride_yw,
    HAS_BIAS: tl.constexpr, ACTIVATION: tl.constexpr, ACC: tl.constexpr, PRECISION: tl.constexpr,
    INT64: tl.constexpr, WHOLE_BLOCKS: tl.constexpr, JOINT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # Axis 0 holds (group, row block): axes 1 and 2 launch at most 65,535 programs.
    row_blocks = tl.cdiv(M, BLOCK_M)
    rows = block(tl.program_id(0) % row_blocks, BLOCK_M, INT64)  # output positions (n, pd, ph, pw)
    outs = block(tl.program_id(1), BLOCK_N, INT64)  # output channels within the group
    g = tl.program_id(0) // row_blocks
    split = tl.program_id(2)  # split-K: this program's CHUNK of the group's input channels
    if INT64:
        g = g.to(tl.int64)
        split = split.to(tl.int64)
    row_mask = rows < M
    out_mask = outs < O_G
    c_start = split * CHUNK
    chunk = tl.minimum(CHUNK, C_G - c_start)
    # Rows past M and channels past O_G repeat the last ones: their loads need no mask (a
    # GEMM row or column depends on its own A row or B column only), the epilogue drops them.
    n, pd, ph, pw = unflatten(tl.minimum(rows, M - 1), PD, PH, PW)
    # Input coordinates of tap j = 0; tap j adds the scalar j·d, its address j·d·stride.
    id0 = pd * SD - LD
    ih0 = ph * SH - LH
    iw0 = pw * SW - LW
    x_rows = x + n * stride_xn + (g * C_G + c_start) * stride_xc + id0 * stride_xd + ih0 * stride_xh + iw0 * stride_xw
    w_cols = w + (g * O_G + tl.minimum(outs, O_G - 1)) * stride_wo + c_start * stride_wc
    k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    if JOINT:
        # Few channels: the reduction is (tap, channel) flattened, r = tap·C_G + c, BLOCK_K of
        # it per step — each element its own tap, so its own padding mask per row. The digits
        # (kd, kh, kw, c) of the step's r advance by BLOCK_K with carries, no division. (Never
        # split: one chunk holds every channel.)
        kd, kh, kw, c = unflatten(k, KH, KW, C_G)
        step_d, step_h, step_w, step_c = unflatten(_zero(INT64) + BLOCK_K, KH, KW, C_G)
        reduction = KD * KH * KW * C_G
        for first in range(0, trips(reduction), BLOCK_K):
            r_mask = k < reduction - first
            inside = (_inside(id0[:, None], (kd * DD)[None, :], KD, ID) & _inside(ih0[:, None], (kh * DH)[None, :], KH, IH)
                      & _inside(iw0[:, None], (kw * DW)[None, :], KW, IW))
            a = tl.load(x_rows[:, None] + (kd * DD * stride_xd + kh * DH * stride_xh + kw * DW * stride_xw
                                           + c * stride_xc)[None, :], mask=inside & r_mask[None, :], other=0.0)
            b = tl.load(w_cols[None, :] + (kd * stride_wd + kh * stride_wh + kw * stride_ww + c * stride_wc)[:, None],
                        mask=r_mask[:, None], other=0.0)
            acc = mma(a, b, acc, PRECISION)
            kd, kh, kw, c = _advance(kd, kh, kw, c, step_d, step_h, step_w, step_c, KH, KW, C_G)
    else:
        channel_blocks = tl.cdiv(chunk, BLOCK_K)
        kd, kh, kw, channel_block = _zero(INT64), _zero(INT64), _zero(INT64), _zero(INT64)
        # One loop over (tap, channel block), not two nested ones: software pipelining
        # (num_stages) then runs across taps too, which matters when C_G fits in one block.
        # The tap advances by scalar counters: no division in the loop, and each operand's step
        # is its row (column) bases plus one offset vector along the reduction.
        for _ in range(trips(KD * KH * KW * channel_blocks)):
            inside = (_within(id0 + kd * DD, ID) & _within(ih0 + kh * DH, IH)
                      & _within(iw0 + kw * DW, IW))
            c0 = channel_block * BLOCK_K
            channel_mask = (k < chunk - c0) | WHOLE_BLOCKS
            a = tl.load(x_rows[:, None] + (kd * DD * stride_xd + kh * DH * stride_xh + kw * DW * stride_xw
                                           + (c0 + k) * stride_xc)[None, :],
                        mask=inside[:, None] & channel_mask[None, :], other=0.0)
            b = tl.load(w_cols[None, :] + (kd * stride_wd + kh * stride_wh + kw * stride_ww + (c0 + k) * stride_wc)[:, None],
                        mask=channel_mask[:, None], other=0.0)
            acc = mma(a, b, acc, PRECISION)
            kd, kh, kw, channel_block = _next_step(kd, kh, kw, channel_block, KD, KH, KW, channel_blocks)
    y_rows = y + split * stride_ys + n * stride_yn + pd * stride_yd + ph * stride_yh + pw * stride_yw
    _epilogue(acc, y_rows, g * O_G + outs, stride_yc, row_mask, out_mask, bias, HAS_BIAS, ACTIVATION)


@triton.jit
def _phase_taps(rho, K, S, DIL, STEP):
    """Taps j < K with j·d ≡ ρ (mod s): the first, j₀ (< STEP = s/gcd(s, d) if any), and how
    many of j₀, j₀ + STEP, … there are (0 when none)."""
    first = K
    for j in range(trips(STEP)):
        first = tl.minimum(first, tl.where(((j * DIL - rho) % S == 0) & (j < K), j, K))
    return first, (K - first + STEP - 1) // STEP


@triton.jit
def _first_position(rho, LO, S):
    """The smallest i ≥ 0 with (i + lo) mod s = ρ. (``%`` truncates like C: made non-negative.)"""
    return ((rho - LO) % S + S) % S


@triton.jit
def _first_output(i, LO, J0, S, DIL):
    """p = (i + lo − j₀·d)/s: the output position tap j₀ takes position i from (exact when the
    phase has taps; C's truncating division, which equals the floor there)."""
    return (i + LO - J0 * DIL) // S


@triton.autotune(configs=_CONFIGS, prune_configs_by={"early_config_prune": _fitting("M", "C_G")},
                 key=["M_BUCKET", "C_G", "O_G", "CHUNK", "KD", "KH", "KW", "SD", "SH", "SW", "stride_dc", "stride_xc",
                      "HAS_BIAS", "PRECISION", "INT64", "WHOLE_BLOCKS"])
@triton.jit
def conv_input_grad_kernel(
    dy, w, bias, dx,
    M, M_BUCKET, C_G, O_G, CHUNK,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, DD, DH, DW,
    TD, TH, TW,
    stride_dn, stride_dc, stride_dd, stride_dh, stride_dw,
    stride_wo, stride_wc, stride_wd, stride_wh, stride_ww,
    stride_xs, stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    HAS_BIAS: tl.constexpr, ACC: tl.constexpr, PRECISION: tl.constexpr, INT64: tl.constexpr,
    WHOLE_BLOCKS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # M rows per phase: (n, qd, qh, qw) over ⌈I/s⌉ per dim; T* = s/gcd(s, d), the tap step.
    # Axis 0 holds (group, phase, row block): axes 1 and 2 launch at most 65,535 programs.
    row_blocks = tl.cdiv(M, BLOCK_M)
    g, rd, rh, rw = unflatten(tl.program_id(0) // row_blocks, SD, SH, SW)  # the group and the phase ρ
    rows = block(tl.program_id(0) % row_blocks, BLOCK_M, INT64)
    chans = block(tl.program_id(1), BLOCK_N, INT64)  # input channels within the group
    split = tl.program_id(2)  # split-K: this program's CHUNK of the group's output channels
    if INT64:
        g = g.to(tl.int64)
        split = split.to(tl.int64)
    o_start = split * CHUNK
    chunk = tl.minimum(CHUNK, O_G - o_start)
    n, qd, qh, qw = unflatten(tl.minimum(rows, M - 1), tl.cdiv(ID, SD), tl.cdiv(IH, SH), tl.cdiv(IW, SW))
    id_ = _first_position(rd, LD, SD) + qd * SD
    ih = _first_position(rh, LH, SH) + qh * SH
    iw = _first_position(rw, LW, SW) + qw * SW
    # Rows past M repeat the last one, and rows past the input's end (i ≥ I) read in-bounds
    # positions too: their loads need no row mask, the epilogue drops them. (Channels are not
    # clamped likewise: that would cost the weight loads their vectorisation along c.)
    row_mask = (rows < M) & (id_ < ID) & (ih < IH) & (iw < IW)
    chan_mask = chans < C_G
    jd, taps_d = _phase_taps(rd, KD, SD, DD, TD)
    jh, taps_h = _phase_taps(rh, KH, SH, DH, TH)
    jw, taps_w = _phase_taps(rw, KW, SW, DW, TW)
    # Phase tap t is j = j₀ + t·T, and T·d = s·U with U = d/gcd(s, d): its output position
    # p = (i + lo − j₀·d)/s − t·U, the division exact (the phase picked j₀) and per row.
    pd0 = _first_output(id_, LD, jd, SD, DD)
    ph0 = _first_output(ih, LH, jh, SH, DH)
    pw0 = _first_output(iw, LW, jw, SW, DW)
    ud, uh, uw = TD * DD // SD, TH * DH // SH, TW * DW // SW
    dy_rows = dy + n * stride_dn + (g * O_G + o_start) * stride_dc + pd0 * stride_dd + ph0 * stride_dh + pw0 * stride_dw
    w_cols = w + (g * O_G + o_start) * stride_wo + chans * stride_wc
    k = tl.arange(0, BLOCK_K)
    out_blocks = tl.cdiv(chunk, BLOCK_K)
    td, th, tw, out_block = _zero(INT64), _zero(INT64), _zero(INT64), _zero(INT64)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for _ in range(trips(taps_d * taps_h * taps_w * out_blocks)):
        inside = _within(pd0 - td * ud, PD) & _within(ph0 - th * uh, PH) & _within(pw0 - tw * uw, PW)
        o0 = out_block * BLOCK_K
        out_mask = (k < chunk - o0) | WHOLE_BLOCKS
        a = tl.load(dy_rows[:, None] + ((o0 + k) * stride_dc - td * ud * stride_dd - th * uh * stride_dh
                                        - tw * uw * stride_dw)[None, :], mask=inside[:, None] & out_mask[None, :], other=0.0)
        b = tl.load(w_cols[None, :] + ((jd + td * TD) * stride_wd + (jh + th * TH) * stride_wh + (jw + tw * TW) * stride_ww
                                       + (o0 + k) * stride_wo)[:, None], mask=out_mask[:, None] & chan_mask[None, :], other=0.0)
        acc = mma(a, b, acc, PRECISION)
        td, th, tw, out_block = _next_step(td, th, tw, out_block, taps_d, taps_h, taps_w, out_blocks)
    dx_rows = dx + split * stride_xs + n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw
    _epilogue(acc, dx_rows, g * C_G + chans, stride_xc, row_mask, chan_mask, bias, HAS_BIAS, "")


# WHOLE_BLOCKS is left out of the key: here it depends on the batch (N·P), and dropping a mask
# does not change which tile is best; a partial last batch keeps the full batches' config.
@triton.autotune(configs=_CONFIGS, prune_configs_by={"early_config_prune": _fitting("O_G", "COLUMNS")},
                 key=["NP_BUCKET", "C_G", "O_G", "KD", "KH", "KW", "stride_dc", "stride_xc", "PRECISION", "INT64", "JOINT",
                      "DENSE_PAIRS"])
@triton.jit
def conv_weight_grad_kernel(
    x, dy, dw,
    NP, NP_BUCKET, CHUNK, C_G, O_G, COLUMNS,
    ID, IH, IW, PD, PH, PW, KD, KH, KW,
    SD, SH, SW, LD, LH, LW, DD, DH, DW,
    stride_xn, stride_xc, stride_xd, stride_xh, stride_xw,
    stride_dn, stride_dc, stride_dd, stride_dh, stride_dw,
    stride_ws, stride_wo, stride_wc, stride_wt,
    ACC: tl.constexpr, PRECISION: tl.constexpr, INT64: tl.constexpr, WHOLE_BLOCKS: tl.constexpr, JOINT: tl.constexpr,
    DENSE_PAIRS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # COLUMNS: dW's columns per program family — C_G of one tap, or with JOINT (few channels)
    # all taps' KD·KH·KW·C_G, (tap, channel) flattened, each column with its own tap.
    out_blocks = tl.cdiv(O_G, BLOCK_M)
    col_blocks = tl.cdiv(COLUMNS, BLOCK_N)
    pid = tl.program_id(0)  # (group[, tap], column block, output block): axes 1 and 2 launch at most 65,535
    outs = block(pid % out_blocks, BLOCK_M, INT64)  # output channels (rows of dW) in the group
    cols = block(pid // out_blocks % col_blocks, BLOCK_N, INT64)
    if JOINT:
        g = pid // (out_blocks * col_blocks)
        kd, kh, kw, chans = unflatten(cols, KH, KW, C_G)
    else:
        g, kd, kh, kw = unflatten(pid // (out_blocks * col_blocks), KD, KH, KW)
        chans = cols
    tap = (kd * KH + kh) * KW + kw
    split = tl.program_id(1)
    if INT64:
        split = split.to(tl.int64)
        g = g.to(tl.int64)
    out_mask = outs < O_G
    col_mask = cols < COLUMNS
    dy_rows = dy + (g * O_G + outs) * stride_dc
    x_cols = x + (g * C_G + chans) * stride_xc
    if JOINT:  # each column's own tap: its offset j·d along every dim
        x_cols += kd * DD * stride_xd + kh * DH * stride_xh + kw * DW * stride_xw
    start = split * CHUNK
    end = tl.minimum(start + CHUNK, NP)
    # The step's pairs (n, pd, ph, pw), divided out once here: each step adds BLOCK_K to them
    # digit by digit with carries (_advance), no division in the loop.
    k = tl.arange(0, BLOCK_K)
    n, pd, ph, pw = unflatten(start + k, PD, PH, PW)
    step_n, step_d, step_h, step_w = unflatten(_zero(INT64) + BLOCK_K, PD, PH, PW)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for first in range(trips(start), trips(end), BLOCK_K):
        pair_mask = (k < end - first) | WHOLE_BLOCKS
        if DENSE_PAIRS:  # δ's pairs one position stride apart (channels-last): no digits needed
            pairs = (first + k) * stride_dw
        else:
            pairs = n * stride_dn + pd * stride_dd + ph * stride_dh + pw * stride_dw
        a = tl.load(dy_rows[:, None] + pairs[None, :], mask=out_mask[:, None] & pair_mask[None, :], other=0.0)
        # x's tile as (columns, pairs), transposed for the dot: its pairs then share dy's
        # layout, so their coordinates are computed and advanced once for both operands.
        if JOINT:
            # The pairs' window corners; each column adds its tap's offset (in x_cols too).
            id_, ih, iw = pd * SD - LD, ph * SH - LH, pw * SW - LW
            inside = (col_mask[:, None] & pair_mask[None, :] & _inside(id_[None, :], (kd * DD)[:, None], KD, ID)
                      & _inside(ih[None, :], (kh * DH)[:, None], KH, IH) & _inside(iw[None, :], (kw * DW)[:, None], KW, IW))
            b_t = tl.load(x_cols[:, None] + (n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw)[None, :],
                          mask=inside, other=0.0)
        else:
            id_ = pd * SD + (kd * DD - LD)
            ih = ph * SH + (kh * DH - LH)
            iw = pw * SW + (kw * DW - LW)
            inside = pair_mask & _within(id_, ID) & _within(ih, IH) & _within(iw, IW)
            b_t = tl.load(x_cols[:, None] + (n * stride_xn + id_ * stride_xd + ih * stride_xh + iw * stride_xw)[None, :],
                          mask=col_mask[:, None] & inside[None, :], other=0.0)
        acc = mma(a, tl.trans(b_t), acc, PRECISION)
        n, pd, ph, pw = _advance(n, pd, ph, pw, step_n, step_d, step_h, step_w, PD, PH, PW)
    dw_tile = dw + split * stride_ws + (g * O_G + outs)[:, None] * stride_wo + (chans * stride_wc + tap * stride_wt)[None, :]
    tl.store(dw_tile, acc.to(dw.dtype.element_ty), mask=out_mask[:, None] & col_mask[None, :])


# Split-K for the forward and input gradient: a grid of fewer 128×128 output tiles than two
# waves (late layers: 512 channels at 7², batch 32, fill 52 of an H100's 132 multiprocessors)
# splits its reduction's channels, each split keeping at least this many (× the taps).
_SPLIT_LEAST_CHANNELS = 128


def _chunks(length: int, splits: int) -> tuple[int, int]:
    """A reduction of ``length`` cut in about ``splits`` chunks for split-K: (chunk, chunks).
    Chunks are multiples of _K_ALIGN, so every config's blocks tile them whole (and
    WHOLE_BLOCKS, true of the whole reduction, stays true of each chunk)."""
    chunk = triton.cdiv(max(1, triton.cdiv(length, splits)), _K_ALIGN) * _K_ALIGN
    return chunk, max(1, triton.cdiv(length, chunk))


def _add_partial_sums(partial, output, bias, activation):
    """output = activation(Σ_split partial + b): split-K's epilogue, once the splits are done.
    ``partial``: (splits·N, C, *S), split s holding samples s·N … s·N + N − 1."""
    total = partial.unflatten(0, (-1, output.shape[0])).sum(0)
    if bias is not None:
        total += bias.view(-1, *(1,) * (output.dim() - 2))
    if activation == "relu":
        total.clamp_min_(0)
    output.copy_(total)


def conv_forward(input, weight, bias, geometry, activation=None, split_k=None):
    """y = activation(x ⋆ W + b) (``activation``: None or "relu"), stored like ``input``.
    ``split_k``: chunks of the input channels reduced by separate programs (default: heuristic)."""
    batch, groups = input.shape[0], geometry.groups
    out_channels, kernel_size = weight.shape[0], weight.shape[2:]
    output_size = geometry.output_size(input.shape[2:], kernel_size)
    output = empty_like_layout((batch, out_channels, *output_size), input)
    if output.numel() == 0:
        return output
    stride, low, dilation = geometry_3d(geometry)
    rows, chans_per_group, outs_per_group = batch * math.prod(output_size), input.shape[1] // groups, out_channels // groups
    joint = chans_per_group < _JOINT_BELOW
    tiles = groups * triton.cdiv(rows, 128) * triton.cdiv(outs_per_group, 128)
    splits = 1 if joint else split_k or split_count(tiles, chans_per_group, _SPLIT_LEAST_CHANNELS, input.device)
    chunk, splits = _chunks(chans_per_group, splits)
    # More than one split: each stores its partial sum, the epilogue waits for their total.
    target = output if splits == 1 else empty_like_layout(
        (splits * batch, out_channels, *output_size), input, dtype=torch.promote_types(input.dtype, torch.float32))
    grid = lambda meta: (groups * triton.cdiv(rows, meta["BLOCK_M"]), triton.cdiv(outs_per_group, meta["BLOCK_N"]), splits)
    with device_guard(input):
        traceable(conv_forward_kernel, input)[grid](
            input, weight, bias, target, rows, tuning_bucket(rows), chans_per_group, outs_per_group, chunk,
            *sizes_3d(input), *sizes_3d(output), *sizes_3d(weight), *stride, *low, *dilation,
            *strides_3d(input), *strides_3d(weight), batch * target.stride(0), *strides_3d(target),
            HAS_BIAS=bias is not None and splits == 1, ACTIVATION=(activation or "") if splits == 1 else "",
            ACC=accumulator(input.dtype), PRECISION=dot_precision(input.dtype), INT64=needs_int64(input, weight, target),
            WHOLE_BLOCKS=chans_per_group % _K_ALIGN == 0, JOINT=joint,
        )
    if splits > 1:
        _add_partial_sums(target, output, bias, activation)
    return output


def conv_input_grad(grad_output, weight, input_size, bias, geometry, split_k=None):
    """dX = δ ⋆ᵀ W (+ b): ConvTranspose's forward too. ``input_size``: dX's spatial size.
    ``split_k``: chunks of the output channels reduced by separate programs (default: heuristic)."""
    batch, groups = grad_output.shape[0], geometry.groups
    chans_per_group, outs_per_group = weight.shape[1], grad_output.shape[1] // groups
    grad_input = empty_like_layout((batch, chans_per_group * groups, *input_size), grad_output)
    if grad_input.numel() == 0:
        return grad_input
    stride, low, dilation = geometry_3d(geometry)
    tap_step = tuple(s // math.gcd(s, d) for s, d in zip(stride, dilation))
    rows = batch * math.prod(triton.cdiv(i, s) for i, s in zip(sizes_3d(grad_input), stride))  # per phase
    phases = math.prod(stride)
    tiles = groups * phases * triton.cdiv(rows, 128) * triton.cdiv(chans_per_group, 128)
    splits = split_k or split_count(tiles, outs_per_group, _SPLIT_LEAST_CHANNELS, grad_output.device)
    chunk, splits = _chunks(outs_per_group, splits)
    target = grad_input if splits == 1 else empty_like_layout(
        (splits * batch, chans_per_group * groups, *input_size), grad_output,
        dtype=torch.promote_types(grad_output.dtype, torch.float32))
    grid = lambda meta: (groups * phases * triton.cdiv(rows, meta["BLOCK_M"]), triton.cdiv(chans_per_group, meta["BLOCK_N"]), splits)
    with device_guard(grad_output):
        traceable(conv_input_grad_kernel, grad_output)[grid](
            grad_output, weight, bias, target, rows, tuning_bucket(rows), chans_per_group, outs_per_group, chunk,
            *sizes_3d(grad_input), *sizes_3d(grad_output), *sizes_3d(weight), *stride, *low, *dilation, *tap_step,
            *strides_3d(grad_output), *strides_3d(weight), batch * target.stride(0), *strides_3d(target),
            HAS_BIAS=bias is not None and splits == 1, ACC=accumulator(grad_output.dtype),
            PRECISION=dot_precision(grad_output.dtype), INT64=needs_int64(grad_output, weight, target),
            WHOLE_BLOCKS=outs_per_group % _K_ALIGN == 0,
        )
    if splits > 1:
        _add_partial_sums(target, grad_input, bias, None)
    return grad_input


def _dense_positions(tensor) -> bool:
    """Whether ``tensor``'s (n, position) pairs lie one position stride apart, in row-major
    order (channels-last and contiguous): pair q is then q·stride away from the first."""
    step = tensor.stride(-1)
    for size, stride in zip(reversed((tensor.shape[0], *tensor.shape[2:])), reversed((tensor.stride(0), *tensor.stride()[2:]))):
        if size != 1 and stride != step:
            return False
        step *= size
    return True


def conv_weight_grad(input, grad_output, kernel_size, geometry, split_k=None):
    """dW = x ⋆ δ, shaped (O, C/G, *kernel_size). ``split_k``: number of N·P chunks (default: heuristic)."""
    groups = geometry.groups
    out_channels, chans_per_group = grad_output.shape[1], input.shape[1] // groups
    taps = math.prod(kernel_size)
    pairs = grad_output.shape[0] * math.prod(grad_output.shape[2:])
    weight_grad = input.new_empty((out_channels, chans_per_group, *kernel_size))
    if weight_grad.numel() == 0 or pairs == 0:
        return weight_grad.zero_()
    joint = chans_per_group < _JOINT_BELOW
    # Programs per group: one column family of all (tap, channel) pairs (joint), or one per tap.
    families, columns = (groups, taps * chans_per_group) if joint else (groups * taps, chans_per_group)
    if split_k is None:
        tiles = families * triton.cdiv(out_channels // groups, 64) * triton.cdiv(columns, 64)
        split_k = split_count(tiles, pairs, 1024, input.device)
    chunk, splits = _chunks(pairs, split_k)
    # The kernel stores (split, o, c, tap) through four strides: one split writes dW itself
    # (contiguous, so the taps are its flattened kernel dims), more write partial sums.
    if splits == 1:
        target, target_strides = weight_grad, (0, *weight_grad.stride()[:2], 1)
    else:
        target = input.new_empty((splits, out_channels, chans_per_group, taps), dtype=torch.promote_types(input.dtype, torch.float32))
        target_strides = target.stride()
    stride, low, dilation = geometry_3d(geometry)
    grid = lambda meta: (
        families * triton.cdiv(out_channels // groups, meta["BLOCK_M"]) * triton.cdiv(columns, meta["BLOCK_N"]),
        splits,
    )
    with device_guard(input):
        traceable(conv_weight_grad_kernel, input)[grid](
            input, grad_output, target, pairs, tuning_bucket(pairs), chunk, chans_per_group, out_channels // groups, columns,
            *sizes_3d(input), *sizes_3d(grad_output), *pad_front(kernel_size, 1), *stride, *low, *dilation,
            *strides_3d(input), *strides_3d(grad_output), *target_strides,
            ACC=accumulator(input.dtype), PRECISION=dot_precision(input.dtype),
            INT64=needs_int64(input, grad_output, target), WHOLE_BLOCKS=pairs % _K_ALIGN == 0, JOINT=joint,
            DENSE_PAIRS=_dense_positions(grad_output),
        )
    if splits > 1:
        weight_grad.copy_(target.sum(0).view_as(weight_grad))
    return weight_grad
