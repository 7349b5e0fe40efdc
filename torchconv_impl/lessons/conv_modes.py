"""Valid, full, same: three output sizes of one conv.

The notes' 4×4 A convolved with their 3×3 B in each mode, the output sizes, the
matching conv2d padding, and each mode's input gradient as another mode.
"""
from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import torch

from .. import functional as F
from ..autograd import Convolution
from ..backends import use_backend
from ._common import centred, heatmap

ORDER = 2
FUNCTIONS = (Convolution,)  # whose backward this lesson checks

# The notes' example (their Matlab round(3*rand(4)) and round(2*rand(3))-1 draws).
NOTES_A = [[0, 0, 1, 2], [2, 2, 0, 0], [2, 1, 2, 2], [3, 0, 1, 1]]
NOTES_B = [[0, 0, -1], [1, -1, 1], [-1, 1, 1]]
NOTES_RESULTS = {  # their conv2(A, B, mode)
    "valid": [[-3, 0], [4, 3]],
    "full": [[0, 0, 0, 0, -1, -2], [0, 0, -1, -1, -1, 2], [2, 0, -3, 0, 1, 0],
             [0, -1, 4, 3, -1, 1], [1, -2, 5, 1, 4, 3], [-3, 3, 2, 0, 2, 1]],
    "same": [[0, -1, -1, -1], [0, -3, 0, 1], [-1, 4, 3, -1], [-2, 5, 1, 4]],
}
# Each mode's conv2d padding (k odd), and the mode whose convolution with the rotated
# kernel gives its input gradient.
PADDING = {"valid": lambda k: 0, "full": lambda k: k - 1, "same": lambda k: (k - 1) // 2}
ADJOINT = {"valid": "full", "full": "valid", "same": "same"}


def odd(text):
    value = int(text)
    if value < 1 or value % 2 == 0:
        raise argparse.ArgumentTypeError(f"expected an odd kernel size (same mode centres it), got {value}")
    return value


def add_arguments(parser):
    parser.add_argument("--size", type=int, default=4, help="input height and width (4: the notes' A)")
    parser.add_argument("--kernel", type=odd, default=3, help="kernel height and width, odd (3: the notes' B)")


def run(args, lesson):
    i, k = args.size, args.kernel
    if (i, k) == (4, 3):
        a, b = torch.tensor(NOTES_A, dtype=torch.float64), torch.tensor(NOTES_B, dtype=torch.float64)
    else:
        a, b = torch.randint(0, 4, (i, i)).double(), torch.randint(-1, 2, (k, k)).double()
    lesson.say("The kernel can slide over the input in three ways. 'valid' keeps only positions where it "
               "lies wholly inside (i − k + 1 outputs per side); 'full' keeps every position where it "
               "overlaps at all, the input padded by k − 1 zeros (i + k − 1); 'same' crops 'full' to "
               "its centre i × i. These are scipy.signal.convolve's modes (for an even k scipy's 'same' "
               "puts the odd surplus on the low side), computed here by functional.convolve.")
    lesson.step("Input", f"A ({i} × {i})", a)
    lesson.step("Kernel", f"B ({k} × {k})", b)
    lesson.step("Rotated kernel (torch's conv2d correlates, so it gets B̃)", "B̃ = rot180(B)", b.flip(0, 1))
    x = a.clone().requires_grad_()
    x_torch = a.clone().requires_grad_()
    outputs = {}
    for mode, padding in PADDING.items():
        with use_backend("reference"):
            y = F.convolve(x, b, mode=mode)
        expected = torch.nn.functional.conv2d(x_torch[None, None], b.flip(0, 1)[None, None], padding=padding(k))[0, 0]
        side = y.shape[0]
        lesson.step(f"{mode.capitalize()}: {side} × {side}", f"convolve(A, B, '{mode}') = conv2d(A, B̃, padding="
                    f"{padding(k)})", y)
        lesson.check(mode, y, expected)
        outputs[mode] = (y, expected)
    if (i, k) == (4, 3):
        lesson.say("\nThese are the notes' conv2(A, B, 'valid' / 'full' / 'same') results.")
        for mode, (y, _) in outputs.items():
            lesson.check(f"notes' {mode}", y, torch.tensor(NOTES_RESULTS[mode], dtype=torch.float64))

    lesson.say("\nBackward. Each mode is linear in A; its input gradient is δ convolved with the rotated "
               "kernel in the partner mode: valid ↔ full (each output size is the other's input size) "
               "and same ↔ same.")
    for mode, (y, expected) in outputs.items():
        delta = torch.randint(-2, 3, y.shape).double()
        (dx,) = torch.autograd.grad(y, x, delta)
        with use_backend("reference"):
            partner = F.convolve(delta, b.flip(0, 1), mode=ADJOINT[mode])
        lesson.step(f"δ of {mode} ({y.shape[0]} × {y.shape[1]})", "δ = ∂L/∂y (small integers)", delta)
        lesson.step(f"dA of {mode} (autograd of our convolve)", f"dA = convolve(δ, B̃, '{ADJOINT[mode]}')", dx)
        lesson.check(f"dA {mode}", dx, torch.autograd.grad(expected, x_torch, delta)[0])
        lesson.check(f"{ADJOINT[mode]}(δ, B̃)", partner, dx)
    return figure(a, b, {mode: y for mode, (y, _) in outputs.items()})


def figure(a, b, outputs):
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.8), layout="constrained")
    heatmap(axes[0], a, f"input A: {a.shape[0]}×{a.shape[1]}\n(i = {a.shape[0]})")
    heatmap(axes[1], b, f"kernel B: {b.shape[0]}×{b.shape[1]}\n(k = {b.shape[0]})", cmap="cividis")
    rule = {"valid": "i − k + 1", "full": "i + k − 1", "same": "i"}
    limit = max(y.abs().max().item() for y in outputs.values())  # one scale for the three outputs
    for ax, (mode, y) in zip(axes[2:], outputs.items()):
        centred(ax, y, f"{mode}: {y.shape[0]}×{y.shape[1]}\n({rule[mode]})", limit)
    return fig
