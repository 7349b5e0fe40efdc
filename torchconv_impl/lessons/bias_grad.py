"""The bias gradient: db[o] = Σ δ[n, o, p].

Every output position of channel o adds b[o], so its δ flows into db[o] with weight 1.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .. import functional as F, use_backend
from ..autograd import Convolution
from ._common import heatmap

ORDER = 6
FUNCTIONS = (Convolution,)  # whose backward this lesson checks


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=4, help="input height and width")
    parser.add_argument("--channels", type=int, default=2, help="output channels")


def run(args, lesson):
    x = torch.randint(-2, 3, (1, 1, args.size, args.size)).double().requires_grad_()
    w = torch.randint(-1, 2, (args.channels, 1, 2, 2)).double().requires_grad_()
    b = torch.zeros(args.channels, dtype=torch.float64, requires_grad=True)
    lesson.say("A convolution adds b[o] to every output position of channel o, so each position's δ flows "
               "into db[o] with weight 1.")
    with use_backend("reference"):  # the readable code: backends/reference/conv.py
        y = lesson.step("Forward", "y = x ⋆ W + b", F.conv2d(x, w, b))
        delta = lesson.step("Upstream gradient", "δ = ∂L/∂y (small integers)", torch.randint(-2, 3, y.shape).double())
        (db,) = torch.autograd.grad(y, b, delta)
    lesson.step("Bias gradient", "db[o] = Σ_{n,p} δ[n, o, p]", db)
    expected = torch.autograd.grad(torch.nn.functional.conv2d(x, w, b), b, delta)[0]
    lesson.check("db", db, expected)
    lesson.check("db = Σδ", db, delta.sum((0, 2, 3)))
    figure, axes = plt.subplots(1, args.channels, figsize=(3.2 * args.channels, 3))
    for o, ax in enumerate([axes] if args.channels == 1 else axes):
        heatmap(ax, delta[0, o], f"δ of channel {o}: Σ = db[{o}] = {db[o].item():.0f}", cmap="coolwarm")
    return figure
