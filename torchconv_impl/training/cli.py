"""The command-line flags that scripts/train_lenet.py and scripts/lenet_noise_floor.py share:
the recipe's and the machine's. Every bad flag or path ends in argparse's one-line error."""
from __future__ import annotations

import argparse
import os
import pickle
import re
from pathlib import Path

import torch

from ..models.lenet import ACTIVATIONS, C3_CONNECTIONS, POOLINGS
from .data import mnist_root
from .loop import Recipe, load_checkpoint, resumed_recipe

DEFAULT = Recipe()


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default, and the description as written. A flag without a default
    (None) says in its own help what it does when absent."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def common_parser() -> argparse.ArgumentParser:
    """A parent parser (``ArgumentParser(parents=[common_parser()])``) with the recipe's flags
    and the machine's: data root, device, dtype, threads, subsets, progress bars."""
    p = argparse.ArgumentParser(add_help=False)
    recipe = p.add_argument_group("recipe")
    recipe.add_argument("--epochs", type=int, default=DEFAULT.epochs, help="total epochs (a resumed run continues up to this)")
    recipe.add_argument("--batch-size", type=int, default=DEFAULT.batch_size, help="images per step")
    recipe.add_argument("--lr", type=float, default=DEFAULT.lr, help="learning rate")
    recipe.add_argument("--optimizer", choices=Recipe.OPTIMIZERS, default=DEFAULT.optimizer, help="sgd uses momentum 0.9")
    recipe.add_argument("--lr-schedule", choices=Recipe.LR_SCHEDULES, default=DEFAULT.lr_schedule,
                        help="cosine: per-epoch cosine decay from --lr to 0")
    recipe.add_argument("--shift", type=int, choices=Recipe.SHIFTS, default=DEFAULT.shift,
                        help="augmentation: move each training digit by up to this many pixels (random, per axis)")
    recipe.add_argument("--seed", type=int, default=DEFAULT.seed, help="initial weights, sample order and shifts")
    recipe.add_argument("--activation", choices=ACTIVATIONS, default=DEFAULT.activation, help="LeNet-5's activation")
    recipe.add_argument("--pooling", choices=POOLINGS, default=DEFAULT.pooling, help="LeNet-5's S2 and S4")
    recipe.add_argument("--c3-connections", choices=C3_CONNECTIONS, default=DEFAULT.c3_connections,
                        help="C3's connections: the 1998 paper's table or all")
    machine = p.add_argument_group("data and machine")
    machine.add_argument("--data-root", default=os.environ.get("TORCHCONV_DATA") or "./data",
                         help="the folder that holds MNIST/raw/ (downloaded there if missing); env TORCHCONV_DATA")
    machine.add_argument("--train-subset", type=int, metavar="N", help="train on the first N training images (default: all 60,000)")
    machine.add_argument("--test-subset", type=int, metavar="N", help="evaluate on the first N test images (default: all 10,000)")
    machine.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: cuda if available, else cpu")
    machine.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="of the weights and images")
    machine.add_argument("--threads", type=int, default=1,
                         help="CPU threads, 0 = torch's default. LeNet's layers are too small to gain from more, and on a CPU "
                              "shared with other jobs more threads are many times slower")
    machine.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def recipe_and_machine(parser: argparse.ArgumentParser, args) -> tuple[Recipe, torch.device, torch.dtype]:
    """Checks the common flags (``parser.error`` on a bad one: a one-line message, exit 2),
    applies ``--threads``, and returns the recipe, the device and the dtype."""
    try:
        recipe = Recipe(**{field: getattr(args, field) for field in Recipe.__dataclass_fields__})
    except ValueError as error:  # "<field> must be ...": the field is the flag
        field, complaint = str(error).split(" ", 1)
        parser.error(f"--{field.replace('_', '-')} {complaint}")
    if args.threads < 0:
        parser.error(f"--threads must be non-negative, got {args.threads}")
    for name in ("train_subset", "test_subset"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch sees no CUDA device (torch.cuda.is_available() is False); use --device cpu or auto")
    if args.threads:
        torch.set_num_threads(args.threads)
    return recipe, torch.device(device), getattr(torch, args.dtype)


def checkpoint_to_resume(parser: argparse.ArgumentParser, path: str, recipe: Recipe) -> tuple[dict, Recipe]:
    """The checkpoint at ``path`` and the recipe it resumes with, or ``parser.error`` naming
    what is wrong with it: missing, unreadable, refused (it holds more than tensors and plain
    containers), not a training checkpoint, or stopped mid-epoch with another batch size."""
    if not Path(path).is_file():
        parser.error(f"--resume: no such file: {path}")
    try:
        checkpoint = load_checkpoint(path, map_location="cpu")
        return checkpoint, resumed_recipe(checkpoint, recipe)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found is None:
            parser.error(f"--resume: {path} is not a checkpoint (torch.load could not read it)")
        parser.error(f"--resume: {path} refused: it holds more than tensors and plain containers ({found[1]}), "
                     "which torch.load(weights_only=True) will not run")
    except (ValueError, RuntimeError, OSError, EOFError) as error:
        parser.error(f"--resume: {path}: {' '.join(str(error).split())}")


def ensure_mnist(parser: argparse.ArgumentParser, root: str) -> None:
    """Makes sure MNIST is under ``--data-root``, downloading it if missing, or ``parser.error``
    saying why not (a root too deep names the one meant)."""
    try:
        mnist_root(root)
    except FileNotFoundError as error:
        parser.error(f"--data-root: {error}")


def check_out(parser: argparse.ArgumentParser, out: str) -> None:
    """``parser.error`` unless ``--out`` is a directory or can become one."""
    if Path(out).exists() and not Path(out).is_dir():
        parser.error(f"--out: {out} is a file, not a directory")
