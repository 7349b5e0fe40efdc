#!/usr/bin/env python
"""How far apart do two float32 LeNet-5 runs end through rounding alone? The yardstick for
the final accuracy gap that ``train_lenet.py --impl both`` reports.

For each seed, three networks start from that seed's initial weights and train in lockstep on
the same batches, by train_lenet.py's recipe (its recipe and machine flags are accepted here
too): ours, the torch.nn twin, and a second twin whose C1 weight [0, 0, 0, 0] starts one float
ulp higher. ours − twin is the gap between the implementations; twin′ − twin is the gap torch
has against itself when a single rounding differs (torchconv_impl.training.noise_floor).

    python scripts/lenet_noise_floor.py --seeds 0 1 2 3 4 5 6 7 8    # the README's table

Each seed trains three networks for the full recipe (about 7 minutes on one CPU thread).
Writes noise_floor.json (per seed, each network's test accuracy after every epoch) to --out.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from torchconv_impl.training import cli, load_mnist
from torchconv_impl.training.noise_floor import noise_floor


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=cli.HelpFormatter, parents=[cli.common_parser()])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run of the three networks per seed")
    parser.add_argument("--out", default="runs/lenet_noise_floor", help="output directory")
    args = parser.parse_args(argv)
    cli.check_out(parser, args.out)
    recipe, device, dtype = cli.recipe_and_machine(parser, args)
    cli.ensure_mnist(parser, args.data_root)
    data = [load_mnist(args.data_root, train, subset, dtype, device)
            for train, subset in ((True, args.train_subset), (False, args.test_subset))]
    report = noise_floor(recipe, args.seeds, data, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {**dataclasses.asdict(recipe), "dtype": args.dtype, "train_subset": args.train_subset, "test_subset": args.test_subset}
    (out / "noise_floor.json").write_text(json.dumps(dict(config=config, **report), indent=1))
    print(f"wrote {out / 'noise_floor.json'}")


if __name__ == "__main__":
    main()
