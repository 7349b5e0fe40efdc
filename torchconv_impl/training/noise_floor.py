"""How far apart do two float32 LeNet-5 runs end through rounding alone? The yardstick for
the final accuracy gap that training ours against the twin reports.

For each seed, three networks start from that seed's initial weights and train in lockstep on
the same batches by one recipe: ours, the torch.nn twin, and a second twin whose C1 weight
[0, 0, 0, 0] starts one float ulp higher. ours − twin is the gap between the implementations;
twin′ − twin is the gap torch has against itself when a single rounding differs. Float32
training is chaotic: any rounding difference grows until the two runs are as different as two
seeds' runs. If the two gaps look alike over the seeds, the ours–twin gap is that noise, not a
difference in the arithmetic.
"""
from __future__ import annotations

import dataclasses
import math
import statistics

import torch

from ..models import LeNet5
from .loop import Recipe, Run, finish_epoch, train_epoch

NETWORKS = ("ours", "twin", "twin_ulp")


def one_ulp_higher(model: LeNet5) -> LeNet5:
    """``model`` with C1's weight [0, 0, 0, 0] moved to the next representable float above it."""
    with torch.no_grad():
        weight = model.c1.weight
        first = (0,) * weight.dim()
        weight[first] = torch.nextafter(weight[first], torch.tensor(math.inf, dtype=weight.dtype))
    return model


def train_seed(recipe: Recipe, data, progress: bool = True) -> dict[str, list[float]]:
    """Test accuracy after every epoch of the three networks for ``recipe.seed``; ``data`` is
    ((train images, labels), (test images, labels)) from load_mnist."""
    (train_images, train_labels), (test_images, test_labels) = data
    torch.manual_seed(recipe.seed)
    ours = LeNet5(**recipe.model_options).to(train_images.device, train_images.dtype)
    runs = [Run(model, recipe) for model in (ours, ours.twin(), one_ulp_higher(ours.twin()))]
    for _ in range(recipe.epochs):
        train_epoch(runs, train_images, train_labels, recipe, progress=progress)
        for run in runs:
            finish_epoch(run, len(train_images), test_images, test_labels, recipe)
    return {name: [h["test_accuracy"] for h in run.history] for name, run in zip(NETWORKS, runs)}


def gaps(results: dict[int, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per seed, the final ours − twin and twin′ − twin accuracy differences (pp)."""
    final = {seed: {name: accuracies[-1] for name, accuracies in r.items()} for seed, r in results.items()}
    return {
        "ours - twin": [f["ours"] - f["twin"] for f in final.values()],
        "twin_ulp - twin": [f["twin_ulp"] - f["twin"] for f in final.values()],
    }


def noise_floor(recipe: Recipe, seeds, data, progress: bool = True) -> dict:
    """Trains the three networks for every seed (printing each seed's result) and returns
    {"seeds": {seed: accuracies}, "summary": {gap: mean, mean |·|, largest |·|, seeds within 0.1 pp}}."""
    results = {}
    for seed in seeds:
        results[seed] = r = train_seed(dataclasses.replace(recipe, seed=seed), data, progress)
        print(f"seed {seed}: ours {r['ours'][-1]:.2f} %  twin {r['twin'][-1]:.2f} %  twin+1ulp {r['twin_ulp'][-1]:.2f} %   "
              f"ours−twin {r['ours'][-1] - r['twin'][-1]:+.2f} pp  twin+1ulp−twin {r['twin_ulp'][-1] - r['twin'][-1]:+.2f} pp", flush=True)
    summary = {}
    for name, values in gaps(results).items():
        magnitudes = [abs(v) for v in values]
        summary[name] = dict(mean=statistics.mean(values), mean_abs=statistics.mean(magnitudes), max_abs=max(magnitudes),
                             within_0_1_pp=sum(m <= 0.1 + 1e-9 for m in magnitudes))
        print(f"{name:>16}: mean {summary[name]['mean']:+.3f} pp, mean |·| {summary[name]['mean_abs']:.3f} pp, "
              f"largest |·| {summary[name]['max_abs']:.2f} pp, within 0.1 pp for {summary[name]['within_0_1_pp']} of {len(values)} seeds")
    return dict(seeds=results, summary=summary)
