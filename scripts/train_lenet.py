#!/usr/bin/env python
"""Train LeNet-5 on MNIST with torchconv_impl's layers, its torch.nn twin, or both side by side.

    python scripts/train_lenet.py                      # default recipe, full MNIST, 10 epochs
    python scripts/train_lenet.py --impl both --dtype float64 --epochs 1
    python scripts/train_lenet.py --resume runs/lenet/checkpoint.pt --epochs 15
    torchrun --nproc_per_node 2 scripts/train_lenet.py  # data-parallel (gloo on CPU, nccl on CUDA)

Default recipe: ReLU, max pooling, the 1998 C3 table, Adam (lr 2e-3, cosine decay over the
epochs), batch 64, shifts of up to 2 pixels, 10 epochs, 1 CPU thread. ``--impl both`` starts
the torch twin from a copy of our initial weights and the two take turns batch by batch, on
the same batches; each impl's epoch time sums only its own steps.

Under torchrun each process takes an equal share of every batch (--batch-size stays the
whole batch) and DistributedDataParallel averages the gradients, so training follows the
single-process recipe; the first process alone prints and writes the outputs.

Writes to --out: metrics.json, checkpoint.pt (after every epoch and on Ctrl-C; load the model
with LeNet5.from_checkpoint), and the plots curves.png, c1_filters.png, feature_maps.png and
confusion_matrix.png. The code is torchconv_impl.training.
"""
from __future__ import annotations

import argparse

import torch.distributed as dist

from torchconv_impl import training
from torchconv_impl.training import cli


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=cli.HelpFormatter, parents=[cli.common_parser()])
    parser.add_argument("--impl", choices=("ours", "torch", "both"), default="ours", help="whose layers: ours, the torch.nn twin, or both")
    parser.add_argument("--out", default="runs/lenet", help="output directory")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint.pt; its model options win (default: start afresh)")
    args = parser.parse_args(argv)
    cli.check_out(parser, args.out)
    recipe, device, dtype = cli.recipe_and_machine(parser, args)
    resume = None
    if args.resume:
        resume, recipe = cli.checkpoint_to_resume(parser, args.resume, recipe)
    cli.ensure_mnist(parser, args.data_root)
    device = training.init_distributed(device)
    try:
        training.train(recipe, args.data_root, args.out, impl=args.impl, device=device, dtype=dtype,
                       train_subset=args.train_subset, test_subset=args.test_subset, resume=resume,
                       progress=not args.no_progress, config=dict(device=str(device), threads=args.threads))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
