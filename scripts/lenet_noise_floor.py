#!/usr/bin/env python
"""How far apart do two float32 LeNet-5 runs end through rounding alone? The yardstick for
the final accuracy gap that ``train_lenet.py --impl both`` reports.

For each seed, three networks start from that seed's initial weights and train in lockstep on
the same batches, with train_lenet.py's recipe (its flags are accepted here too):
ours, the torch.nn twin, and a second twin whose C1 weight [0, 0, 0, 0] starts one float ulp
higher. ours − twin is the gap between the implementations; twin′ − twin is the gap torch has
against itself when a single rounding differs. Float32 training is chaotic: any rounding
difference grows until the two runs are as different as two seeds' runs. If the two gaps look
alike over the seeds, the ours–twin gap is that noise, not a difference in the arithmetic.

    python scripts/lenet_noise_floor.py --seeds 0 1 2 3 4 5 6 7 8    # the README's table

Each seed trains three networks for the full recipe (about 7 minutes on one CPU thread).
Writes ``noise_floor.json`` (per seed, each network's test accuracy after every epoch) to --out.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_lenet  # noqa: E402
from torchconv_impl.models import LeNet5  # noqa: E402

NETWORKS = ("ours", "twin", "twin_ulp")


def one_ulp_higher(model: LeNet5) -> LeNet5:
    """``model`` with C1's weight [0, 0, 0, 0] moved to the next representable float above it."""
    with torch.no_grad():
        weight = model.c1.weight
        first = (0,) * weight.dim()
        weight[first] = torch.nextafter(weight[first], torch.tensor(math.inf, dtype=weight.dtype))
    return model


def train_seed(seed: int, args, data) -> dict[str, list[float]]:
    """Test accuracy after every epoch of the three networks for ``seed``."""
    args = argparse.Namespace(**{**vars(args), "seed": seed})
    (train_images, train_labels), (test_images, test_labels) = data
    torch.manual_seed(seed)
    ours = LeNet5(args.activation, args.pooling, args.c3_connections).to(train_images.device, train_images.dtype)
    runs = [train_lenet.Run(model, args) for model in (ours, ours.twin(), one_ulp_higher(ours.twin()))]
    never_stop = train_lenet.StopRequested()  # not installed as the SIGINT handler: Ctrl-C just ends the script
    for _ in range(args.epochs):
        train_lenet.train_epoch(runs, train_images, train_labels, args, never_stop)
        for run in runs:
            train_lenet.finish_epoch(run, len(train_images), test_images, test_labels, args)
    return {name: [h["test_accuracy"] for h in run.history] for name, run in zip(NETWORKS, runs)}


def gaps(results: dict[int, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per seed, the final ours − twin and twin′ − twin accuracy differences (pp)."""
    final = {seed: {name: accuracies[-1] for name, accuracies in r.items()} for seed, r in results.items()}
    return {
        "ours - twin": [f["ours"] - f["twin"] for f in final.values()],
        "twin_ulp - twin": [f["twin_ulp"] - f["twin"] for f in final.values()],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/lenet_noise_floor", help="output directory")
    own, recipe = parser.parse_known_args(argv)
    args = train_lenet.parse_args(recipe)
    device, dtype = train_lenet.setup(args)
    data = [train_lenet.load_mnist(args.data_root, train, subset, dtype, device)
            for train, subset in ((True, args.train_subset), (False, args.test_subset))]

    results = {}
    for seed in own.seeds:
        results[seed] = r = train_seed(seed, args, data)
        print(f"seed {seed}: ours {r['ours'][-1]:.2f} %  twin {r['twin'][-1]:.2f} %  twin+1ulp {r['twin_ulp'][-1]:.2f} %   "
              f"ours−twin {r['ours'][-1] - r['twin'][-1]:+.2f} pp  twin+1ulp−twin {r['twin_ulp'][-1] - r['twin'][-1]:+.2f} pp", flush=True)
    summary = {}
    for name, values in gaps(results).items():
        magnitudes = [abs(v) for v in values]
        summary[name] = dict(mean=statistics.mean(values), mean_abs=statistics.mean(magnitudes), max_abs=max(magnitudes),
                             within_0_1_pp=sum(m <= 0.1 + 1e-9 for m in magnitudes))
        print(f"{name:>16}: mean {summary[name]['mean']:+.3f} pp, mean |·| {summary[name]['mean_abs']:.3f} pp, "
              f"largest |·| {summary[name]['max_abs']:.2f} pp, within 0.1 pp for {summary[name]['within_0_1_pp']} of {len(values)} seeds")

    out = Path(own.out)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(config=vars(args), seeds=results, summary=summary)
    (out / "noise_floor.json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
