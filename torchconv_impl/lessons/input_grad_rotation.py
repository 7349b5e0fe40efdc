"""The input gradient: δ ⋆ the kernel rotated 180°.

δ zero-inserted by the stride, padded by d·(k − 1) − p, correlated with the
kernel rotated by 180°: each step printed, the result checked against autograd.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from .. import functional as F
from ..autograd import Convolution
from ..backends import use_backend
from ..explain import input_grad_by_rotation
from ._common import centred

ORDER = 4
FUNCTIONS = (Convolution,)  # whose backward this lesson checks


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=5, help="input height and width")
    parser.add_argument("--kernel", type=int, default=3, help="kernel height and width")
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--padding", type=int, default=1)
    parser.add_argument("--dilation", type=int, default=1)


def run(args, lesson):
    i, k, s, p, d = args.size, args.kernel, args.stride, args.padding, args.dilation
    x = torch.randint(-2, 3, (1, 1, i, i)).double().requires_grad_()
    w = torch.randint(-2, 3, (1, 1, k, k)).double()
    lesson.say("Input x[m] reaches output y[q] through weight W[j] wherever m = q·s + j·d − p. Backward "
               "sums δ[q]·W[j] over those pairs; written as a correlation over m it becomes: spread δ to "
               "the input's grid (stride), pad it so every window fits, and slide W rotated by 180°.")
    lesson.step("Input", f"x ({i} × {i})", x[0, 0])
    lesson.step("Kernel", f"W ({k} × {k})", w[0, 0])
    with use_backend("reference"):
        y = F.conv2d(x, w, stride=s, padding=p, dilation=d)
    lesson.step("Forward", f"y = conv2d(x, W, stride={s}, padding={p}, dilation={d})", y[0, 0])
    x_torch = x.detach().clone().requires_grad_()
    y_torch = torch.nn.functional.conv2d(x_torch, w, stride=s, padding=p, dilation=d)
    lesson.check("y", y, y_torch)
    delta = torch.randint(-2, 3, y.shape).double()
    lesson.step("Upstream gradient", "δ = ∂L/∂y (small integers)", delta[0, 0])

    length = (delta.shape[-1] - 1) * s + 1
    spread = delta.new_zeros(1, 1, length, length)
    spread[..., ::s, ::s] = delta
    lesson.step(f"1. Zero-insert: {s - 1} zero(s) between neighbours", f"δ_s[q·s] = δ[q]  ({length} × {length})",
                spread[0, 0])
    low = d * (k - 1) - p
    high = i + d * (k - 1) - low - length
    lesson.say(f"\nThe padding: d·(k − 1) − p = {d}·{k - 1} − {p} = {low} before (negative would crop); "
               f"after, whatever gives back {i} outputs: {high} (the stride's remainder included).")
    padded = torch.nn.functional.pad(spread, (low, high, low, high))
    lesson.step(f"2. Pad by {low} before, {high} after", "δ_p = pad(δ_s)", padded[0, 0])
    rotated = lesson.step("3. Rotate the kernel by 180°", "W̃[j] = W[k − 1 − j]", w.flip(2, 3)[0, 0])
    with use_backend("reference"):
        steps = F.conv2d(padded, rotated[None, None], dilation=d)
        by_rotation = input_grad_by_rotation(delta, w, (i, i), stride=s, padding=p, dilation=d)
    lesson.step("4. Full correlation, stride 1, same dilation", f"dX = conv2d(δ_p, W̃, dilation={d})", steps[0, 0])
    lesson.check("the steps", steps, by_rotation)
    (dx,) = torch.autograd.grad(y, x, delta)
    lesson.step("Input gradient of our conv2d (autograd)", "dX = ∂L/∂x", dx[0, 0])
    lesson.check("dX by rotation", by_rotation, dx)
    lesson.check("dX", dx, torch.autograd.grad(y_torch, x_torch, delta)[0])
    return figure(delta[0, 0], padded[0, 0], rotated, dx[0, 0], low, s)


def figure(delta, padded, rotated, dx, low, s):
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), layout="constrained")
    centred(axes[0], delta, "δ = ∂L/∂y")
    centred(axes[1], padded, f"δ_p: zero-inserted (stride {s}), padded\nred: δ's own entries")
    for q, r in torch.cartesian_prod(torch.arange(delta.shape[0]), torch.arange(delta.shape[1])).tolist():
        axes[1].add_patch(Rectangle((low + r * s - 0.5, low + q * s - 0.5), 1, 1, fill=False, edgecolor="red",
                                    linewidth=1.5))
    centred(axes[2], rotated, "W̃: the kernel rotated by 180°")
    centred(axes[3], dx, "dX = δ_p ⋆ W̃ (full correlation)")
    return fig
