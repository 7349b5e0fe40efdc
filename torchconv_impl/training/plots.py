"""The PNG plots of a training run. Every plot whose colours carry values has a colour bar,
and maps shown side by side share one colour scale, so their shades compare."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..models import LeNet5  # noqa: E402
from .loop import IMPL_LABELS, Run, evaluate  # noqa: E402

PLOTS = ("curves", "c1_filters", "feature_maps", "confusion_matrix")


def write_all(runs: list[Run], model: LeNet5, test_images: torch.Tensor, test_labels: torch.Tensor, out: Path) -> None:
    """Writes curves.png (every run), and for ``model`` c1_filters.png, feature_maps.png (of
    the first test image) and confusion_matrix.png (over the test set)."""
    plot_curves(runs, out / "curves.png")
    plot_c1_filters(model, out / "c1_filters.png")
    plot_feature_maps(model, test_images[0], int(test_labels[0]), out / "feature_maps.png")
    _, accuracy, predictions = evaluate(model, test_images, test_labels)
    plot_confusion(predictions, test_labels, f"{IMPL_LABELS[model.impl]}: test accuracy {accuracy:.2f}%", out / "confusion_matrix.png")


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(runs: list[Run], path: Path) -> None:
    fig, (ax_batch, ax_loss, ax_acc) = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
    for run, color in zip(runs, ("C0", "C1")):
        label = IMPL_LABELS[run.impl]
        curve = np.concatenate([h["batch_losses"] for h in run.history])
        steps = np.arange(1, len(curve) + 1) / len(run.history[0]["batch_losses"])
        window = max(1, len(curve) // 200)  # a running mean over 0.5 % of training
        smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
        ax_batch.plot(steps, curve, color=color, lw=0.3, alpha=0.25)
        ax_batch.plot(steps[window - 1:], smooth, color=color, lw=1, label=f"{label} (running mean of {window})")
        epochs = [h["epoch"] for h in run.history]
        ax_loss.plot(epochs, [h["train_loss"] for h in run.history], "o-", color=color, label=f"{label} train")
        ax_loss.plot(epochs, [h["test_loss"] for h in run.history], "s--", color=color, label=f"{label} test")
        ax_acc.plot(epochs, [h["test_accuracy"] for h in run.history], "o-", color=color, label=label)
    ax_batch.set(title="training loss per batch", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    ax_loss.set(title="loss per epoch", xlabel="epoch", ylabel="cross-entropy", yscale="log")
    ax_acc.set(title="test accuracy", xlabel="epoch", ylabel="%")
    for ax in (ax_batch, ax_loss, ax_acc):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _save(fig, path)


def _image_row(fig, axes, maps, titles, colorbar_label: str, **imshow) -> None:
    """``maps`` in ``axes`` (of figure or subfigure ``fig``) on one colour scale (the range of all of them), with one colour bar."""
    scale = dict(vmin=float(maps.min()), vmax=float(maps.max())) | imshow
    axes = list(axes)
    for ax, map_, title in zip(axes, maps, titles, strict=True):
        ax.axis("off")
        image = ax.imshow(map_, **({"cmap": "gray"} | scale))
        ax.set_title(title, fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, pad=0.01, label=colorbar_label)


def plot_c1_filters(model: LeNet5, path: Path) -> None:
    filters = model.c1.weight.detach().cpu().double()[:, 0].numpy()
    limit = float(np.abs(filters).max())  # one symmetric scale: white = 0, red > 0, blue < 0
    fig, axes = plt.subplots(1, len(filters), figsize=(1.7 * len(filters) + 1, 2.1), layout="constrained")
    titles = [f"C1 filter {i}" for i in range(len(filters))]
    _image_row(fig, axes, filters, titles, "weight", cmap="RdBu_r", vmin=-limit, vmax=limit)
    _save(fig, path)


@torch.no_grad()
def plot_feature_maps(model: LeNet5, image: torch.Tensor, label: int, path: Path) -> None:
    """The input and the C1 and C3 maps (after the activation) of one image, each layer on
    its own colour scale."""
    model.eval()
    maps = {name: m[0].cpu().double().numpy() for name, m in model.feature_maps(image[None]).items()}
    fig = plt.figure(figsize=(13, 7.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1, 2))
    left, right = top.subfigures(1, 2, width_ratios=(1.4, 6))
    predicted = int(maps["output"].argmax())
    _image_row(left, [left.subplots()], image.cpu().double().numpy(), [f"input: label {label}, predicted {predicted}"],
               "normalised pixel")
    _image_row(right, right.subplots(1, 6), maps["c1"], [f"C1 map {i}" for i in range(6)], "C1 activation")
    _image_row(bottom, bottom.subplots(2, 8).flat, maps["c3"], [f"C3 map {i}" for i in range(16)], "C3 activation")
    _save(fig, path)


def plot_confusion(predictions: torch.Tensor, labels: torch.Tensor, title: str, path: Path) -> None:
    matrix = torch.zeros(10, 10, dtype=torch.long)
    matrix.index_put_((labels.cpu(), predictions.cpu()), torch.ones(len(labels), dtype=torch.long), accumulate=True)
    fig, ax = plt.subplots(figsize=(6.4, 5.4), layout="constrained")
    image = ax.imshow(matrix.numpy(), cmap="Blues")
    for (true, predicted), count in np.ndenumerate(matrix.numpy()):
        if count:
            ax.text(predicted, true, count, ha="center", va="center", fontsize=7, color="white" if count > matrix.max() / 2 else "black")
    ax.set(title=title, xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10))
    fig.colorbar(image, ax=ax, label="test images")
    _save(fig, path)
