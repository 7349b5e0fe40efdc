"""1-D convolution: flip the filter, then slide it.

Each output of (f * g)[t] = Σ_τ f[t − τ] g[τ] as its sum of products, then why a
conv layer (a correlation) needs the flipped kernel, and its input gradient.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from .. import functional as F
from ..autograd import Convolution
from ..backends import use_backend
from ._common import format_tensor, heatmap

ORDER = 1
FUNCTIONS = (Convolution,)  # whose backward this lesson checks


def add_arguments(parser):
    parser.add_argument("--signal", type=float, nargs="+", default=[1, 3, 2], help="f, the notes' sequence")
    parser.add_argument("--kernel", type=float, nargs="+", default=[1, 2, 1], help="g, the notes' filter")
    parser.add_argument("--lopsided", type=float, nargs="+", default=[1, 2, 3],
                        help="an asymmetric filter, for which flipping matters")
    parser.add_argument("--highlight", type=int, default=1, help="the output whose window the figure marks")


def products(window: torch.Tensor, kernel: torch.Tensor) -> str:
    return " + ".join(f"{a:.0f}·{b:.0f}" for a, b in zip(window.tolist(), kernel.tolist()))


def run(args, lesson):
    f = torch.tensor(args.signal, dtype=torch.float64)
    g = torch.tensor(args.kernel, dtype=torch.float64)
    k = len(g)
    lesson.say("Convolution sums f[t − τ]·g[τ] over τ: as τ grows, f is read backwards, which is the "
               "same as reading f forwards against g flipped. Zeros pad f wherever t − τ falls outside it.")
    lesson.step("Signal", "f", f)
    lesson.step("Filter", "g", g)
    flipped = lesson.step("Flipped filter", "g̃[τ] = g[k − 1 − τ]", g.flip(0))
    padded = lesson.step("f padded by k − 1 zeros each side", "f_pad", torch.nn.functional.pad(f, (k - 1, k - 1)))
    with use_backend("reference"):
        full = F.convolve(f, g, mode="full")
    lesson.say("\nSliding g̃ along f_pad, one output per position:")
    sums = []
    for t in range(len(full)):
        window = padded[t:t + k]
        sums.append((window * flipped).sum())
        lesson.say(f"  (f * g)[{t}] = {products(window, flipped)} = {sums[-1]:.0f}")
    lesson.check("Σ products", full, torch.stack(sums))
    lesson.step("Full convolution", "(f * g)[t] = Σ_τ f[t − τ] g[τ],  length n + k − 1", full)
    expected = torch.nn.functional.conv1d(f[None, None], g.flip(0)[None, None], padding=k - 1)[0, 0]
    lesson.check("f * g", full, expected)

    h = torch.tensor(args.lopsided, dtype=torch.float64)
    lesson.say(f"\nA deep-learning 'convolution' layer slides the kernel without flipping it: it computes "
               f"the correlation (f ⋆ h)[t] = Σ_τ f_pad[t + τ] h[τ]. A symmetric filter hides the "
               f"difference; the lopsided h = {format_tensor(h)} shows it.")
    with use_backend("reference"):
        correlation = F.conv1d(f[None, None], h[None, None], padding=len(h) - 1)[0, 0]
        convolution = F.conv1d(f[None, None], h.flip(0)[None, None], padding=len(h) - 1)[0, 0]
        true = F.convolve(f, h, mode="full")
    lesson.step("Correlation (conv1d as layers compute it)", "f ⋆ h = conv1d(f, h, padding=k − 1)", correlation)
    lesson.check("f ⋆ h", correlation,
                 torch.nn.functional.conv1d(f[None, None], h[None, None], padding=len(h) - 1)[0, 0])
    lesson.step("conv1d with the flipped kernel", "conv1d(f, h̃, padding=k − 1)", convolution)
    lesson.step("True convolution", "f * h = functional.convolve(f, h, 'full')", true)
    lesson.check("conv1d(f, h̃)", convolution, true)
    lesson.check("f * h", true,
                 torch.nn.functional.conv1d(f[None, None], h.flip(0)[None, None], padding=len(h) - 1)[0, 0])

    lesson.say("\nBackward. The layer y = x ⋆ h (here x = f_pad, no padding) uses x[p + τ] in y[p] with "
               "weight h[τ], so ∂L/∂x[m] = Σ_τ δ[m − τ] h[τ]: δ zero-padded by k − 1 and correlated "
               "with h flipped — the full correlation of δ with h̃, i.e. the full convolution δ * h.")
    x = padded.clone().requires_grad_()
    with use_backend("reference"):
        y = lesson.step("Layer output", "y = x ⋆ h,  x = f_pad", F.conv1d(x[None, None], h[None, None])[0, 0])
        delta = lesson.step("Upstream gradient", "δ = ∂L/∂y (small integers)", torch.randint(-2, 3, y.shape).double())
        (dx,) = torch.autograd.grad(y, x, delta)
        by_flip = F.conv1d(delta[None, None], h.flip(0)[None, None], padding=len(h) - 1)[0, 0]
    lesson.step("Input gradient (autograd of our conv1d)", "dX = ∂L/∂x", dx)
    lesson.step("Full correlation of δ with h̃", "dX = conv1d(δ, h̃, padding=k − 1)", by_flip)
    lesson.check("δ ⋆ h̃", by_flip, dx)
    x_torch = padded.clone().requires_grad_()
    expected_dx = torch.autograd.grad(torch.nn.functional.conv1d(x_torch[None, None], h[None, None])[0, 0], x_torch, delta)[0]
    lesson.check("dX", dx, expected_dx)
    return figure(padded, g, flipped, full, args.highlight % len(full))


def row(ax, values, offset, width, title, cmap):
    """``values`` as one row of cells starting at column ``offset`` of a ``width``-column axis,
    so that the filter can be drawn under the window it multiplies."""
    image = heatmap(ax, values[None], title, cmap=cmap)
    image.set_extent((offset - 0.5, offset + len(values) - 0.5, 0.5, -0.5))
    for text, j in zip(ax.texts, range(len(values))):
        text.set_x(offset + j)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_xticks(range(offset, offset + len(values)), [str(j) for j in range(len(values))])
    ax.set_yticks([])


def figure(padded, g, flipped, full, t):
    k, width = len(g), len(padded)
    fig, axes = plt.subplots(4, 1, figsize=(0.6 * width + 2.5, 5.5), gridspec_kw={"hspace": 1.0})
    row(axes[0], padded, 0, width, f"f padded by k − 1 zeros; red: the window of output {t}", "viridis")
    row(axes[1], g, t, width, "filter g (ticks: τ)", "cividis")
    row(axes[2], flipped, t, width, "flipped filter g̃, under the window it multiplies", "cividis")
    row(axes[3], full, 0, width, f"output f * g;  (f * g)[{t}] = Σ window · g̃", "magma")
    axes[0].add_patch(Rectangle((t - 0.5, -0.5), k, 1, fill=False, edgecolor="red", linewidth=2.5))
    axes[3].add_patch(Rectangle((t - 0.5, -0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    return fig
