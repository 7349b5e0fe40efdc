"""A convolution as a matrix: y = M·x, dX = Mᵀ·δ.

The notes' 3×3 input and 3×3 kernel (padding 1) as the dense 9×9 M, its
sparsity, and backpropagation as multiplication by Mᵀ.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import functional as F
from ..autograd import Convolution
from ..backends import use_backend
from ..explain import conv_matrix
from ._common import heatmap

ORDER = 3
FUNCTIONS = (Convolution,)  # whose backward this lesson checks


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=3, help="input height and width")
    parser.add_argument("--kernel", type=int, default=3, help="kernel height and width")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--padding", type=int, default=1)


def run(args, lesson):
    i, k, s, p = args.size, args.kernel, args.stride, args.padding
    w = torch.arange(1, k * k + 1, dtype=torch.float64).reshape(1, 1, k, k)
    x = torch.randint(-2, 3, (1, 1, i, i)).double().requires_grad_()
    lesson.say("A convolution is linear in its input, so flattening x and y row by row turns it into "
               "y = M·x for one matrix M. Row q of M holds the kernel's weights at the columns of the "
               "inputs under output q's window and zeros elsewhere. The kernel here numbers its "
               "weights 1, 2, … row by row, so each entry of M names the weight it is: 5 is w₂₂.")
    lesson.step("Kernel", "W (k × k), entries numbered", w[0, 0])
    lesson.step("Input", f"x ({i} × {i}), stride {s}, padding {p}", x[0, 0])
    with use_backend("reference"):
        m = conv_matrix(w, (1, i, i), stride=s, padding=p)
        y = F.conv2d(x, w, stride=s, padding=p)
    rows, columns = m.shape
    lesson.step("The matrix", f"M = conv_matrix(W, (1, {i}, {i}), stride={s}, padding={p})  "
                f"({rows} × {columns})", m)
    lesson.say(f"Row 0 is output (0, 0): its window covers x's top-left corner, so it reads w₂₂ w₂₃ 0 w₃₂ "
               f"w₃₃ … as in the notes' 9 × 9 matrix (for their 3 × 3 example). {int((m != 0).sum())} of its {m.numel()} entries are weights; the rest are zeros "
               "— the positions each window misses, or padding.")
    x_torch = x.detach().clone().requires_grad_()
    y_torch = torch.nn.functional.conv2d(x_torch, w, stride=s, padding=p)
    side = y.shape[-1]
    lesson.step("Forward as a product", f"y = M·x, reshaped to {side} × {side}", (m @ x.detach().flatten()).reshape(side, side))
    lesson.step("Forward of our conv2d", "y = conv2d(x, W)", y[0, 0])
    lesson.check("y = M·x", (m @ x.detach().flatten()).reshape(y.shape), y_torch)
    lesson.check("y", y, y_torch)

    lesson.say("\nBackward. Since y = M·x, ∂L/∂x = Mᵀ·∂L/∂y: the input gradient multiplies δ by the "
               "transpose — column q of Mᵀ spreads δ[q] back over output q's window.")
    delta = torch.randint(-2, 3, y.shape).double()
    lesson.step("Upstream gradient", "δ = ∂L/∂y (small integers)", delta[0, 0])
    by_transpose = (m.T @ delta.flatten()).reshape(i, i)
    lesson.step("Input gradient as a product", f"dX = Mᵀ·δ, reshaped to {i} × {i}", by_transpose)
    (dx,) = torch.autograd.grad(y, x, delta)
    lesson.step("Input gradient of our conv2d (autograd)", "dX = ∂L/∂x", dx[0, 0])
    lesson.check("dX = Mᵀ·δ", by_transpose, dx[0, 0])
    lesson.check("dX", dx, torch.autograd.grad(y_torch, x_torch, delta)[0])
    return figure(m)


def sparse_heatmap(ax, matrix, title):
    """``matrix`` with its zeros left white (masked), so the sparsity pattern stands out."""
    image = heatmap(ax, matrix, title, cmap="viridis")
    array = matrix.numpy()
    image.set_data(np.ma.masked_equal(array, 0))
    image.set_cmap(image.cmap.with_extremes(bad="white"))
    for text, value in zip(ax.texts, array.flatten()):
        text.set_visible(value != 0)
    ax.set_xticks(range(0, array.shape[1], max(1, array.shape[1] // 12)))
    ax.set_yticks(range(0, array.shape[0], max(1, array.shape[0] // 12)))
    ax.set_xticks(np.arange(-0.5, array.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, array.shape[0]), minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.5)
    ax.tick_params(which="minor", length=0)


def figure(m):
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), layout="constrained")
    sparse_heatmap(axes[0], m, f"M ({m.shape[0]} × {m.shape[1]}): y = M·x\nrow = output, column = input; "
                   "white = 0")
    sparse_heatmap(axes[1], m.T, f"Mᵀ ({m.shape[1]} × {m.shape[0]}): dX = Mᵀ·δ\nrow = input, column = output; "
                   "white = 0")
    for ax in axes:
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    return fig
