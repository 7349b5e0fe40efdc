"""What every lesson shares: printing a step with its formula in 80 columns, checking a result
against torch, the closing line, and annotated heat maps."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import numpy as np
import torch

WIDTH = 80


class CheckFailed(AssertionError):
    """A lesson's result differs from torch autograd of the torch.nn twin."""


class Lesson:
    """Prints the steps of one derivation and checks its results (``say``, ``step``, ``check``)."""

    def __init__(self, name: str, out: Path | None, printer=print):
        self.name, self.out, self.printer, self.checked = name, out, printer, []

    def say(self, text: str = "") -> None:
        """A paragraph, wrapped to 80 columns."""
        for line in text.splitlines() or [""]:
            self.printer(textwrap.fill(line, WIDTH) if line else "")

    def step(self, title: str, formula: str, tensor: torch.Tensor) -> torch.Tensor:
        """One step of the derivation: its title, its formula, the values (returned unchanged)."""
        self.printer(f"\n{title}")
        self.printer(f"  {formula}")
        self.printer(textwrap.indent(format_tensor(tensor), "  "))
        return tensor

    def check(self, what: str, ours: torch.Tensor, expected: torch.Tensor) -> None:
        """``ours`` must equal torch's ``expected`` (float64 tolerance); CheckFailed otherwise."""
        ours, expected = ours.detach(), expected.detach()
        if ours.shape != expected.shape or not torch.allclose(ours.to(expected.dtype), expected, rtol=1e-9, atol=1e-9):
            raise CheckFailed(f"{self.name}: {what} differs from torch autograd:\nours\n{format_tensor(ours)}\ntorch\n{format_tensor(expected)}")
        self.checked.append(what)

    def finish(self, figure=None) -> Path | None:
        """The closing line; the figure written to ``out`` as <name>.png (returned)."""
        path = None
        if figure is not None and self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            path = self.out / f"{self.name}.png"
            figure.savefig(path, dpi=120, bbox_inches="tight")
        import matplotlib.pyplot as plt

        if figure is not None:
            plt.close(figure)
        self.printer("")
        self.say(f"Checked against torch autograd of the torch.nn twin: {', '.join(self.checked)}.")
        self.printer("All agree.")
        if path:
            self.printer(f"Figure: {path}")
        return path


def format_tensor(t: torch.Tensor) -> str:
    """The values of ``t``: whole numbers as integers, others with 3 decimals, rows of at most
    78 characters (numpy's layout, which a learner reads without torch's "tensor(" wrapper)."""
    array = t.detach().cpu().numpy()
    whole = np.issubdtype(array.dtype, np.integer) or (np.isfinite(array).all() and (array == np.round(array)).all())
    return np.array2string(array.astype(np.int64) if whole else array, precision=3, suppress_small=True, max_line_width=WIDTH - 2)


def heatmap(ax, values: torch.Tensor, title: str, cmap="viridis", colorbar=True, fmt=None):
    """A 2-D array as an annotated heat map on ``ax`` (values written in each cell), with a colour bar."""
    return _annotated(ax, values, title, cmap, colorbar, fmt, limits=None)


def centred(ax, values: torch.Tensor, title: str, limit=None, colorbar=True):
    """A diverging heat map for signed values: 0 white, ±``limit`` (default: the largest |value|,
    at least 1) at the ends."""
    limit = limit or max(values.abs().max().item(), 1)
    return _annotated(ax, values, title, "coolwarm", colorbar, None, limits=(-limit, limit))


def _annotated(ax, values, title, cmap, colorbar, fmt, limits):
    array = values.detach().double().cpu().numpy()
    image = ax.imshow(array, cmap=cmap, **({} if limits is None else dict(vmin=limits[0], vmax=limits[1])))
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(array.shape[1]))
    ax.set_yticks(range(array.shape[0]))
    ax.tick_params(labelsize=7)
    integral = (array == array.round()).all()
    for (i, j), value in np.ndenumerate(array):
        text = fmt.format(value) if fmt else (f"{value:.0f}" if integral else f"{value:.2f}")
        red, green, blue, _ = image.cmap(image.norm(value))  # dark cells get white text, whatever the colour map
        ax.text(j, i, text, ha="center", va="center", fontsize=7,
                color="white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return image


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/lessons"), help="folder for the figure")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the example's values")
