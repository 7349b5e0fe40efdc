"""Softmax cross-entropy: ∂L/∂z = (p − y)/N.

Per sample: the logits z, p = softmax(z), the one-hot target y, the loss −log p[target],
and the gradient p − y (seeds 004's δ = y − t), divided by N when the loss is the mean.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .. import functional as F
from .. import use_backend
from ..autograd import ClassCrossEntropy
from ..autograd.loss import log_softmax
from ._common import heatmap

ORDER = 10
FUNCTIONS = (ClassCrossEntropy,)  # cross_entropy's Function for plain class indices


def add_arguments(parser):
    parser.add_argument("--batch", type=int, default=2, help="samples N")
    parser.add_argument("--classes", type=int, default=4, help="classes K")


def run(args, lesson):
    n, classes = args.batch, args.classes
    z = torch.randint(-2, 3, (n, classes)).double().requires_grad_()
    target = torch.randint(0, classes, (n,))
    lesson.say(f"{n} samples, {classes} classes. The network's last layer gives logits z; softmax "
               "turns each row into probabilities and the loss is −log of the target's one.")
    lesson.step("Logits", "z[n, k]", z)
    lesson.step("Targets", "t[n] (class index)", target)
    p = lesson.step("Softmax", "p[n, k] = exp z[n, k] / Σ_j exp z[n, j]", log_softmax(z).exp())
    lesson.check("p", p, torch.softmax(z, 1))
    y = lesson.step("One-hot target", "y[n, k] = 1 if k = t[n] else 0", torch.nn.functional.one_hot(target, classes))
    with use_backend("reference"):
        losses = F.cross_entropy(z, target, reduction="none")
        loss = F.cross_entropy(z, target)
    lesson.step("Loss per sample", "ℓ[n] = −Σ_k y[n, k] log p[n, k] = −log p[n, t[n]]", losses)
    lesson.check("ℓ", losses, torch.nn.functional.cross_entropy(z, target, reduction="none"))
    lesson.step("Mean loss", "L = (1/N) Σ_n ℓ[n]", loss)
    lesson.check("L", loss, torch.nn.functional.cross_entropy(z, target))

    lesson.say("ℓ = log Σ_j exp z_j − z_t. The first term's derivative in z_k is softmax's p_k; the "
               "second's is 1 at k = t and 0 elsewhere: y_k. So ∂ℓ/∂z_k = p_k − y_k, with no "
               "softmax Jacobian left to multiply out.")
    (per_sample,) = torch.autograd.grad(losses.sum(), z)
    lesson.step("Gradient of each sample's loss", "∂ℓ[n]/∂z[n] = p[n] − y[n]", per_sample)
    lesson.check("p − y", per_sample, torch.autograd.grad(torch.nn.functional.cross_entropy(z, target, reduction="sum"), z)[0])
    lesson.check("∂ℓ/∂z = p − y", per_sample, p - y)
    lesson.say("Each row sums to 0: raising every logit of a sample by the same amount leaves p, and "
               "so ℓ, unchanged.")
    lesson.check("Σ_k (p − y) = 0", per_sample.sum(1), torch.zeros(n, dtype=torch.float64))
    (dz,) = torch.autograd.grad(loss, z)
    lesson.step("Gradient of the mean", f"∂L/∂z = (p − y) / N,  N = {n}", dz)
    lesson.check("∂L/∂z", dz, torch.autograd.grad(torch.nn.functional.cross_entropy(z, target), z)[0])
    lesson.check("∂L/∂z = (p − y)/N", dz, (p - y) / n)
    return _figure(z.detach(), p.detach(), y, per_sample, target)


def _figure(z, p, y, grad, target):
    n, classes = z.shape
    figure, axes = plt.subplots(1, 4, figsize=(3.0 * classes + 4, 0.9 * n + 2.2))
    heatmap(axes[0], z, "logits z")
    heatmap(axes[1], p, "p = softmax(z)", fmt="{:.2f}")
    heatmap(axes[2], y, "one-hot y", cmap="cividis")
    limit = float(grad.abs().max())
    image = heatmap(axes[3], grad, "∂ℓ/∂z = p − y", fmt="{:.2f}", cmap="viridis")
    image.set_clim(-limit, limit)  # 0 in the middle of the scale: targets pull down, the rest push up
    for ax in axes:
        ax.set_xlabel("class k", fontsize=8)
        ax.set_ylabel("sample n", fontsize=8)
        for row, t in enumerate(target.tolist()):
            ax.add_patch(plt.Rectangle((t - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    figure.suptitle("Softmax cross-entropy per sample (red: the target class); the mean's gradient is (p − y) / N",
                    fontsize=11)
    figure.tight_layout()
    return figure
