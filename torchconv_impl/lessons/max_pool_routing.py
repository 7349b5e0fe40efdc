"""Max pooling: δ routed to each window's argmax.

The forward keeps each window's maximum and where it was; the backward sends δ[p] to that
one cell, and windows sharing an argmax add up there (kernel > stride).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import ConnectionPatch, Rectangle

from .. import functional as F
from .. import use_backend
from ..autograd import MaxPool
from ._common import heatmap

ORDER = 7
FUNCTIONS = (MaxPool,)  # whose backward this lesson checks

# The notes' example (seeds 000): a 5×5 plane, 3×3 windows, stride 2, padding 1.
NOTES_INPUT = ((1, 3, 2, 3, 3), (3, 1, 2, 1, 1), (3, 3, 3, 1, 2), (2, 2, 1, 2, 1), (2, 3, 2, 1, 2))


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=5, help="input height and width (5: the notes' plane)")
    parser.add_argument("--kernel", type=int, default=3, help="window height and width")
    parser.add_argument("--stride", type=int, default=2, help="window step (below --kernel: windows overlap)")
    parser.add_argument("--padding", type=int, default=1, help="−∞ cells added on each side")


def run(args, lesson):
    size, k, s, pad = args.size, args.kernel, args.stride, args.padding
    if size == len(NOTES_INPUT):
        x = torch.tensor(NOTES_INPUT, dtype=torch.float64).view(1, 1, size, size)
    else:
        x = torch.randint(0, 10, (1, 1, size, size)).double()
    x.requires_grad_()
    lesson.say(f"Max pooling with {k}×{k} windows, stride {s}, padding {pad}. Padding cells hold −∞ "
               "(not the 0 drawn on slides), so a padding cell never wins a window.")
    lesson.step("Input", f"x ({size}×{size})", x[0, 0])
    with use_backend("reference"):
        y, indices = F.max_pool2d(x, k, s, pad, return_indices=True)
    lesson.step("Forward", "y[p] = max_{j ∈ window p} x[j]", y[0, 0])
    lesson.step("Where each maximum was", f"idx[p] = argmax_j x[j] as a flat index row·{size} + col",
                indices[0, 0])
    lesson.say("Ties go to the first cell in reading order, as in torch.")
    torch_y, torch_indices = torch.nn.functional.max_pool2d(x, k, s, pad, return_indices=True)
    lesson.check("y", y, torch_y)
    lesson.check("idx", indices.double(), torch_indices.double())

    delta = torch.arange(1, y.numel() + 1, dtype=torch.float64).view(y.shape)
    lesson.step("Upstream gradient", "δ = ∂L/∂y (1, 2, 3, … so each one can be traced)", delta[0, 0])
    with use_backend("reference"):
        (dx,) = torch.autograd.grad(y, x, delta)
    lesson.say("y[p] depends on x only through x[idx[p]], with slope 1: δ[p] goes there and nowhere "
               "else. Windows that share an argmax send their δ to the same cell, where they add up.")
    lesson.step("Input gradient", "dX[j] = Σ_{p : idx[p] = j} δ[p]   (scatter-add)", dx[0, 0])
    lesson.check("dX", dx, torch.autograd.grad(torch_y, x, delta)[0])
    scattered = torch.zeros(size * size, dtype=torch.float64).index_add_(0, indices.flatten(), delta.flatten())
    lesson.check("dX = scatter-add of δ at idx", dx.flatten(), scattered)
    hits = torch.bincount(indices.flatten(), minlength=size * size)
    shared = int((hits > 1).sum())
    lesson.say(f"{shared} cell(s) won more than one window; {int((hits == 0).sum())} of {size * size} "
               "cells won none and get zero gradient.")
    return _figure(x.detach()[0, 0], delta[0, 0], dx[0, 0], indices[0, 0], k, s, pad)


def _figure(x, delta, dx, indices, k, s, pad):
    figure, (ax_x, ax_d, ax_dx) = plt.subplots(1, 3, figsize=(13, 4.4), width_ratios=(1.25, 1, 1.25))
    colours = plt.get_cmap("tab10")
    out_h, out_w = delta.shape
    size = x.shape[-1]
    heatmap(ax_x, x, "x: windows outlined, argmax circled", cmap="bone")
    heatmap(ax_d, delta, "δ (outline = its window's colour)", cmap="bone")
    heatmap(ax_dx, dx, "dX: arrows from δ[p] to idx[p]", cmap="bone")
    low, high = -pad - 0.6, size + pad - 0.4
    rings = torch.zeros(size, size, dtype=torch.long)
    ax_x.set_xlim(low, high)
    ax_x.set_ylim(high, low)
    for i in range(out_h):
        for j in range(out_w):
            p = i * out_w + j
            colour = colours(p % 10)
            inset = 0.06 * (p % 4)  # overlapping outlines stay apart
            ax_x.add_patch(Rectangle((j * s - pad - 0.5 + inset, i * s - pad - 0.5 + inset), k - 2 * inset, k - 2 * inset,
                                     fill=False, edgecolor=colour, linewidth=2))
            row, col = divmod(int(indices[i, j]), size)
            rings[row, col] += 1  # a cell won by several windows gets one ring per window
            ax_x.plot(col, row, "o", markersize=10 + 7 * int(rings[row, col]), markerfacecolor="none",
                      markeredgecolor=colour, markeredgewidth=2)
            ax_d.add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor=colour, linewidth=2.5))
            figure.add_artist(ConnectionPatch((j + 0.45, i), (col - 0.45, row), "data", "data", axesA=ax_d, axesB=ax_dx,
                                              color=colour, arrowstyle="->", linewidth=1.4, alpha=0.9))
    if pad:
        ax_x.text(low, high + 0.9, "dotted frame: x; outside it: padding (−∞ for max)", fontsize=7, va="top")
        ax_x.add_patch(Rectangle((-0.5, -0.5), size, size, fill=False, edgecolor="black", linestyle=":", linewidth=1))
    figure.suptitle(f"Max pooling {k}×{k}, stride {s}, padding {pad}: δ[p] lands on window p's maximum", fontsize=11)
    return figure
