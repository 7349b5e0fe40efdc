"""Many channels: y[o] = Σ_c x[c] ⋆ W[o,c] + b[o].

Each output map sums every connected input map's correlation with its own kernel slice; a
connection table (LeNet-5's C3) says which; the backward runs over the same connections.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap

from .. import functional as F
from .. import nn, use_backend
from ..autograd import Convolution
from ._common import heatmap

ORDER = 9
FUNCTIONS = (Convolution,)  # whose backward this lesson checks

# Output map o sees a run of input maps, the last one sees all — C3's pattern in small
# (torchconv_impl.models.lenet.LECUN1998_C3_TABLE is the full 16 × 6 one).
TABLES = {
    "small": ((1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1)),
    "full": ((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
}


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=4, help="input height and width")
    parser.add_argument("--kernel", type=int, default=2, help="kernel height and width")
    parser.add_argument("--table", choices=sorted(TABLES), default="small",
                        help="which input maps each of the 4 output maps sees (3 input maps)")


def run(args, lesson):
    table = torch.tensor(TABLES[args.table], dtype=torch.bool)
    outs, ins = table.shape
    k = args.kernel
    x = torch.randint(-2, 3, (1, ins, args.size, args.size)).double().requires_grad_()
    conv = nn.Conv2d(ins, outs, k, connection_table=table, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-1, 2, conv.weight.shape) * table[:, :, None, None])
        conv.bias.copy_(torch.randint(-2, 3, (outs,)))
    w, b = conv.weight, conv.bias
    lesson.say(f"{ins} input maps, {outs} output maps, {k}×{k} kernels. W[o, c] is the kernel slice "
               "output map o applies to input map c; the connection table T keeps it only where "
               "T[o, c] = 1 (LeNet-5's C3 layer: each of its maps sees a few S2 maps).")
    lesson.step("Connection table", "T[o, c] = 1 where output map o sees input map c", table.long())
    lesson.step("Input", "x[c]", x[0])
    lesson.step("Kernel slices (zero off the table)", "W[o, c]", w * table[:, :, None, None])
    lesson.step("Bias", "b[o]", b)
    with use_backend("reference"):
        y = conv(x)
        per_map = torch.stack([
            sum(F.conv2d(x[:, c:c + 1], w[o:o + 1, c:c + 1]) for c in range(ins) if table[o, c]) + b[o]
            for o in range(outs)
        ], 1)[:, :, 0]
    lesson.step("Forward", "y[o] = Σ_{c : T[o,c]} x[c] ⋆ W[o,c] + b[o]", y[0])
    twin = torch.nn.functional.conv2d(x, w * table[:, :, None, None], b)
    lesson.check("y", y, twin)
    lesson.check("y = Σ of per-channel correlations", y, per_map)

    delta = torch.randint(-2, 3, y.shape).double()
    lesson.step("Upstream gradient", "δ[o] = ∂L/∂y[o] (small integers)", delta[0])
    with use_backend("reference"):
        dx, dw, db = torch.autograd.grad(y, (x, w, b), delta)
        per_input = torch.stack([
            sum((F.conv_transpose2d(delta[:, o:o + 1], w[o:o + 1, c:c + 1]) for o in range(outs) if table[o, c]),
                torch.zeros_like(x[:, :1]))
            for c in range(ins)
        ], 1)[:, :, 0]
    lesson.say("x[c] reaches every output map connected to it, so its gradient sums what each sends "
               "back: δ[o] correlated-transposed (full convolution) with the same slice W[o, c].")
    lesson.step("Input gradient", "dX[c] = Σ_{o : T[o,c]} δ[o] ⋆ᵀ W[o,c]", dx[0])
    twin_dx, twin_dw, twin_db = torch.autograd.grad(twin, (x, w, b), delta)
    lesson.check("dX", dx, twin_dx)
    lesson.check("dX = Σ over connected outputs", dx, per_input)
    lesson.say("W[o, c] meets only x[c] and only through y[o]; off the table the layer uses 0, "
               "not W[o, c], so no gradient reaches it there.")
    lesson.step("Weight gradient", "dW[o,c] = x[c] ⋆ δ[o] where T[o,c], else 0", dw)
    lesson.check("dW", dw, twin_dw)
    lesson.check("dW = 0 off the table", dw[~table], torch.zeros_like(dw[~table]))
    lesson.step("Bias gradient", "db[o] = Σ_p δ[o, p]", db)
    lesson.check("db", db, twin_db)
    return _figure(table, x.detach()[0], y.detach()[0], delta[0], dx[0])


def _figure(table, x, y, delta, dx):
    outs, ins = table.shape
    columns = max(ins, outs) + 1
    figure, axes = plt.subplots(4, columns, figsize=(3.1 * columns, 10.5))
    image = axes[0, 0].imshow(table.long().numpy(), cmap=ListedColormap(["#eeeeee", "#2b7bba"]), vmin=-0.5, vmax=1.5)
    axes[0, 0].set_title("connection table T", fontsize=10)
    axes[0, 0].set_xlabel("input map c", fontsize=8)
    axes[0, 0].set_ylabel("output map o", fontsize=8)
    axes[0, 0].set_xticks(range(ins))
    axes[0, 0].set_yticks(range(outs))
    bar = figure.colorbar(image, ax=axes[0, 0], ticks=(0, 1), fraction=0.046, pad=0.04)
    bar.ax.set_yticklabels(("not\nconnected", "connected"), fontsize=7)
    rows = (("x", x, ins), ("y", y, outs), ("δ", delta, outs), ("dX", dx, ins))
    for row, (name, maps, count) in enumerate(rows):
        for column in range(1, columns):
            ax, index = axes[row, column], column - 1
            if index >= count:
                ax.axis("off")
                continue
            if name in ("x", "dX"):
                sees = [o for o in range(outs) if table[o, index]]
                title = f"{name}[{index}] (to y{sees})" if name == "x" else f"{name}[{index}] (from δ{sees})"
            else:
                sees = [c for c in range(ins) if table[index, c]]
                title = f"{name}[{index}] (from x{sees})" if name == "y" else f"{name}[{index}]"
            heatmap(ax, maps[index], title)
        if row:
            axes[row, 0].axis("off")
    figure.suptitle("Multi-channel convolution: y[o] = Σ_{c: T[o,c]} x[c] ⋆ W[o,c] + b[o],   "
                    "dX[c] = Σ_{o: T[o,c]} δ[o] ⋆ᵀ W[o,c]", fontsize=11)
    figure.tight_layout()
    return figure
