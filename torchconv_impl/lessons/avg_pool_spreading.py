"""Average pooling: δ[p]/|window| spread over window p.

The divisor of each window (count_include_pad, ceil_mode), the forward mean, and the input
gradient as every window's share of δ added up where windows overlap.
"""
from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from .. import functional as F
from .. import use_backend
from ..autograd import AvgPool
from ._common import heatmap

ORDER = 8
FUNCTIONS = (AvgPool,)  # whose backward this lesson checks


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=6, help="input height and width")
    parser.add_argument("--kernel", type=int, default=3, help="window height and width")
    parser.add_argument("--stride", type=int, default=2, help="window step")
    parser.add_argument("--padding", type=int, default=1, help="zero cells added on each side")
    parser.add_argument("--ceil-mode", action=argparse.BooleanOptionalAction, default=True,
                        help="one more window where a partial one still starts inside x or its left padding")
    parser.add_argument("--count-include-pad", action=argparse.BooleanOptionalAction, default=True,
                        help="padding cells count in the divisor")


def window_extents(out: int, size: int, k: int, s: int, pad: int, count_include_pad: bool):
    """Per output index along one dimension: (first, end) of its cells inside x, and the
    number of cells the divisor counts — torch's rule: the window clipped to the padded
    range [−pad, size + pad), then to x itself unless padding counts."""
    extents, counted = [], []
    for o in range(out):
        start = o * s - pad
        end = min(start + k, size + pad)
        first, last = max(start, 0), min(end, size)
        extents.append((first, last))
        counted.append(end - start if count_include_pad else last - first)
    return extents, torch.tensor(counted, dtype=torch.float64)


def run(args, lesson):
    size, k, s, pad = args.size, args.kernel, args.stride, args.padding
    x = torch.randint(0, 10, (1, 1, size, size)).double().requires_grad_()
    options = dict(ceil_mode=args.ceil_mode, count_include_pad=args.count_include_pad)
    lesson.say(f"Average pooling with {k}×{k} windows, stride {s}, padding {pad}, "
               f"ceil_mode={args.ceil_mode}, count_include_pad={args.count_include_pad}.")
    lesson.step("Input", f"x ({size}×{size})", x[0, 0])
    with use_backend("reference"):
        y = F.avg_pool2d(x, k, s, pad, **options)
    out = y.shape[-1]
    floor_out = (size + 2 * pad - k) // s + 1
    lesson.say(f"Windows per row: {out}; the floor rule (size + 2·pad − k) // s + 1 gives {floor_out}"
               + ("; ceil_mode adds the partial window at the end." if out > floor_out else "."))
    extents, counted = window_extents(out, size, k, s, pad, args.count_include_pad)
    divisor = counted[:, None] * counted[None, :]
    lesson.say("The divisor counts the window's cells: all of them inside the padded plane with "
               "count_include_pad, only those inside x without it. A window past the padding "
               "(ceil_mode) is cut short either way.")
    lesson.step("Divisor", "div[p] = |window p| (cells counted)", divisor)
    lesson.step("Forward", "y[p] = Σ_{j ∈ window p} x[j] / div[p]", y[0, 0])
    torch_y = torch.nn.functional.avg_pool2d(x, k, s, pad, **options)
    lesson.check("y", y, torch_y)
    ones = torch.ones_like(x)  # every window holds a cell of x, so its mean of ones is never 0
    cells = torch.nn.functional.avg_pool2d(ones, k, s, pad, **options, divisor_override=1)
    lesson.check("div", divisor, (cells / torch.nn.functional.avg_pool2d(ones, k, s, pad, **options))[0, 0])

    delta = torch.randint(-4, 5, y.shape).double()
    lesson.step("Upstream gradient", "δ = ∂L/∂y (small integers)", delta[0, 0])
    lesson.say("y[p] takes each of its cells with weight 1/div[p]: each cell of window p gets "
               "δ[p]/div[p], and a cell in several windows adds their shares.")
    with use_backend("reference"):
        (dx,) = torch.autograd.grad(y, x, delta)
    lesson.step("Input gradient", "dX[j] = Σ_{p ∋ j} δ[p] / div[p]", dx[0, 0])
    lesson.check("dX", dx, torch.autograd.grad(torch_y, x, delta)[0])
    spread = torch.zeros(size, size, dtype=torch.float64)
    for i, (top, bottom) in enumerate(extents):
        for j, (left, right) in enumerate(extents):
            spread[top:bottom, left:right] += delta[0, 0, i, j] / divisor[i, j]
    lesson.check("dX = Σ of the spread shares", dx[0, 0], spread)
    return _figure(delta[0, 0], divisor, dx[0, 0], k, s, pad, size)


def _figure(delta, divisor, dx, k, s, pad, size):
    figure, axes = plt.subplots(1, 4, figsize=(16, 4.6), width_ratios=(1, 1, 1, 1.6))
    heatmap(axes[0], delta, "δ")
    heatmap(axes[1], divisor, "div[p] = |window p|", cmap="cividis")
    heatmap(axes[2], delta / divisor, "share δ[p]/div[p] (outline: window p)", fmt="{:.2f}")
    heatmap(axes[3], dx, "dX = Σ of the shares (windows outlined)", fmt="{:.2f}")
    colours = plt.get_cmap("tab20")
    out, low, high = delta.shape[0], -pad - 0.5, size + pad - 0.5
    for i in range(out):
        for j in range(out):
            p, inset = i * out + j, 0.06 * ((i + j) % 3)
            top, left = i * s - pad - 0.5 + inset, j * s - pad - 0.5 + inset
            # torch cuts a window that runs past the padding (ceil_mode) at the padded edge
            height, width = min(top + k, high) - top - inset, min(left + k, high) - left - inset
            axes[3].add_patch(Rectangle((left, top), width - inset, height - inset, fill=False,
                                        edgecolor=colours(p % 20), linewidth=1.6))
            axes[2].add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor=colours(p % 20), linewidth=2.5))
    axes[3].set_xlim(low - 0.1, high + 0.1)
    axes[3].set_ylim(high + 0.1, low - 0.1)
    axes[3].add_patch(Rectangle((-0.5, -0.5), size, size, fill=False, edgecolor="black", linestyle=":", linewidth=1))
    axes[3].text(low, high + 0.9, "dotted frame: x; outside it: padding", fontsize=7, va="top")
    figure.suptitle(f"Average pooling {k}×{k}, stride {s}, padding {pad}: each window spreads its share evenly",
                    fontsize=11)
    return figure
