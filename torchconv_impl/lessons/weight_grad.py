"""Weight gradient: dW = x ⋆ δ, x correlated with δ.

Each dW entry as the window of x that δ slides over (δ·window summed), then the
same numbers as one correlation with stride and dilation swapped.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from .. import functional as F
from ..autograd import Convolution
from ..backends import use_backend
from ._common import centred, heatmap

ORDER = 5
FUNCTIONS = (Convolution,)  # whose backward this lesson checks


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=4, help="input height and width")
    parser.add_argument("--kernel", type=int, default=3, help="kernel height and width")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--dilation", type=int, default=1)
    parser.add_argument("--offset", type=int, nargs=2, default=[0, 1], help="the kernel offset j the figure marks")


def window(x_pad, j, outputs, s, d):
    """The entries of x_pad that weight offset j multiplies: x_pad[p·s + j·d] for every output p."""
    rows, columns = (slice(jj * d, jj * d + (outputs - 1) * s + 1, s) for jj in j)
    return x_pad[rows, columns]


def run(args, lesson):
    i, k, s, p, d = args.size, args.kernel, args.stride, args.padding, args.dilation
    x = torch.randint(-2, 3, (1, 1, i, i)).double()
    w = torch.randint(-2, 3, (1, 1, k, k)).double().requires_grad_()
    lesson.say("Weight W[j] meets input x_pad[p·s + j·d] at every output p, so its gradient adds δ[p] "
               "times that input over all p (and the batch): dW[o,c,j] = Σ_{n,p} δ[n,o,p]·x_pad[n,c,p·s+j·d]. "
               "For each offset j, δ lies over a window of x and the two are multiplied and summed.")
    lesson.step("Input", f"x ({i} × {i})", x[0, 0])
    lesson.step("Kernel", f"W ({k} × {k})", w[0, 0])
    with use_backend("reference"):
        y = F.conv2d(x, w, stride=s, padding=p, dilation=d)
    lesson.step("Forward", f"y = conv2d(x, W, stride={s}, padding={p}, dilation={d})", y[0, 0])
    w_torch = w.detach().clone().requires_grad_()
    y_torch = torch.nn.functional.conv2d(x, w_torch, stride=s, padding=p, dilation=d)
    lesson.check("y", y, y_torch)
    delta = torch.randint(-2, 3, y.shape).double()
    lesson.step("Upstream gradient", "δ = ∂L/∂y (small integers)", delta[0, 0])
    x_pad = torch.nn.functional.pad(x, (p, p, p, p))[0, 0]
    if p:
        lesson.step(f"Input padded by {p}", "x_pad", x_pad)

    outputs = delta.shape[-1]
    lesson.say(f"\nEach entry: δ ({outputs} × {outputs}) over the window x_pad[j·d + p·s], "
               f"p = 0…{outputs - 1}:")
    entries = torch.zeros(k, k, dtype=torch.float64)
    for j in torch.cartesian_prod(torch.arange(k), torch.arange(k)).tolist():
        patch = window(x_pad, j, outputs, s, d)
        entries[tuple(j)] = (patch * delta[0, 0]).sum()
        lesson.say(f"  dW[{j[0]},{j[1]}] = Σ δ ⊙ {patch.long().tolist()} = {entries[tuple(j)]:.0f}")
    lesson.step("Weight gradient from the windows", "dW[j] = Σ_p δ[p]·x_pad[p·s + j·d]", entries)
    (dw,) = torch.autograd.grad(y, w, delta)
    lesson.step("Weight gradient of our conv2d (autograd)", "dW = ∂L/∂W", dw[0, 0])
    lesson.check("dW by windows", entries, dw[0, 0])
    lesson.check("dW", dw, torch.autograd.grad(y_torch, w_torch, delta)[0])

    lesson.say(f"\nAll the windows at once: dW is x_pad correlated with δ as the kernel. δ's entries sit "
               f"s = {s} apart in x_pad and neighbouring offsets j move the window by d = {d}, so this "
               f"correlation has stride d and dilation s — the forward's two swapped.")
    with use_backend("reference"):
        correlation = F.conv2d(x_pad[None, None], delta, stride=d, dilation=s)
    lesson.step("One correlation", f"dW = conv2d(x_pad, δ, stride={d}, dilation={s})", correlation[0, 0])
    lesson.check("x ⋆ δ", correlation, dw)
    return figure(x_pad, delta[0, 0], dw[0, 0], tuple(args.offset), s, p, d)


def figure(x_pad, delta, dw, j, s, p, d):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), layout="constrained")
    heatmap(axes[0], x_pad, f"x{f' padded by {p}' if p else ''}; red: where δ lies for "
            f"offset j = {j}\n(x_pad[p·{s} + j·{d}])")
    outputs = delta.shape[0]
    for q, r in torch.cartesian_prod(torch.arange(outputs), torch.arange(outputs)).tolist():
        axes[0].add_patch(Rectangle((j[1] * d + r * s - 0.5, j[0] * d + q * s - 0.5), 1, 1, fill=False,
                                    edgecolor="red", linewidth=2))
    centred(axes[1], delta, "δ = ∂L/∂y")
    heatmap(axes[2], dw, f"dW; red: dW{list(j)} = Σ δ ⊙ red window", cmap="cividis")
    axes[2].add_patch(Rectangle((j[1] - 0.5, j[0] - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    return fig
