"""The training recipe, the loop, evaluation, checkpoints and the comparison of ours with the twin."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .. import nn as ours_nn
from ..models import LeNet5
from .data import epoch_plan, load_mnist, translate

IMPL_LABELS = {"ours": "torchconv_impl", "torch": "torch.nn twin"}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What decides the trained weights. The defaults are the default recipe: ReLU, max
    pooling, the 1998 C3 table, Adam (lr 2e-3, cosine decay over the epochs), batch 64, random
    shifts of up to 2 pixels, 10 epochs."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"  # or "sgd", with momentum 0.9
    lr_schedule: str = "cosine"  # per-epoch cosine decay from lr to 0, or "none"
    shift: int = 2  # augmentation: each training digit moves by up to this many pixels per axis
    seed: int = 0
    activation: str = "relu"
    pooling: str = "max"
    c3_connections: str = "lecun1998"

    OPTIMIZERS = ("adam", "sgd")
    LR_SCHEDULES = ("cosine", "none")
    SHIFTS = (0, 1, 2)  # the 2 pixels of padding that a shift wraps around

    def __post_init__(self):
        for name in ("epochs", "batch_size", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name, allowed in (("optimizer", self.OPTIMIZERS), ("lr_schedule", self.LR_SCHEDULES), ("shift", self.SHIFTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    @property
    def model_options(self) -> dict[str, str]:
        return dict(activation=self.activation, pooling=self.pooling, c3_connections=self.c3_connections)

    def learning_rate(self, epoch: int) -> float:
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))
        return self.lr


class Run:
    """One impl's model, optimizer, loss and progress: epochs done, batches done in the
    current epoch (nonzero only after Ctrl-C), and the metrics history."""

    def __init__(self, model: LeNet5, recipe: Recipe):
        self.impl, self.model = model.impl, model
        # What training calls: the model itself, or under torchrun its DistributedDataParallel wrapper.
        self.trained = torch.nn.parallel.DistributedDataParallel(model) if dist.is_initialized() else model
        if recipe.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9)
        else:
            self.optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        self.loss_fn = (ours_nn if self.impl == "ours" else torch.nn).CrossEntropyLoss()
        self.epoch, self.step, self.loss_sum, self.seconds = 0, 0, 0.0, 0.0
        self.batch_losses: list[float] = []  # of the current epoch
        self.history: list[dict] = []

    def state_dict(self) -> dict:
        return dict(
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(), epoch=self.epoch, step=self.step,
            loss_sum=self.loss_sum, seconds=self.seconds, batch_losses=self.batch_losses, history=self.history,
        )

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.loss_sum, self.seconds = state["epoch"], state["step"], state["loss_sum"], state["seconds"]
        self.batch_losses, self.history = list(state["batch_losses"]), list(state["history"])


class StopRequested:
    """SIGINT handler: the first Ctrl-C asks training to stop after the current batch (so the
    checkpoint is consistent); a second one interrupts at once. Not entered as a context, it
    never stops anything."""

    def __init__(self):
        self.requested = self.aborted = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            self.aborted = True
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("Ctrl-C: stopping after this batch and saving a checkpoint (Ctrl-C again to abort now)")

    def check(self):
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


def train_epoch(runs: list[Run], images, labels, recipe: Recipe, stop: StopRequested | None = None, progress: bool = True) -> None:
    """Trains every run through epoch ``run.epoch``, from batch ``run.step`` on. The runs take
    turns batch by batch, so they see the same batches under the same machine load (fair
    timings on a shared CPU). Under torchrun each process trains on its share of every batch."""
    stop = stop or StopRequested()
    epoch, step = runs[0].epoch, runs[0].step
    lr = recipe.learning_rate(epoch)
    for run in runs:
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        run.model.train()
    order, shifts = (t.to(images.device) for t in epoch_plan(len(images), recipe.seed, epoch, recipe.shift))
    starts = range(step * recipe.batch_size, len(images), recipe.batch_size)
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    with tqdm(
        total=len(images), initial=starts.start, unit="img", unit_scale=True, leave=False, disable=not progress or rank > 0,
        desc=f"epoch {epoch + 1}/{recipe.epochs}",
    ) as bar:
        for start in starts:
            index = order[start:start + recipe.batch_size].tensor_split(world_size)[rank]  # this process's share
            batch_images, batch_labels = translate(images[index], shifts[index]), labels[index]
            seen = min(start + recipe.batch_size, len(images))
            for run in runs:
                began = time.perf_counter()
                loss = run.loss_fn(run.trained(batch_images), batch_labels)
                run.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                run.optimizer.step()
                run.seconds += time.perf_counter() - began
                run.batch_losses.append(loss.item())
                run.loss_sum += loss.item() * len(index)
                run.step += 1
            bar.update(len(index))
            bar.set_postfix_str(
                "  ".join(f"{run.impl} loss {run.loss_sum / seen:.4f} {seen / run.seconds:.0f} img/s" for run in runs),
                refresh=False,
            )
            stop.check()


@torch.no_grad()
def evaluate(model: LeNet5, images, labels, batch_size: int = 1000) -> tuple[float, float, torch.Tensor]:
    """(mean cross-entropy, accuracy in %, predictions) over the whole set."""
    model.eval()
    loss_sum, predictions = 0.0, []
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        loss_sum += torch.nn.functional.cross_entropy(logits, labels[start:start + batch_size], reduction="sum").item()
        predictions.append(logits.argmax(1))
    predictions = torch.cat(predictions)
    return loss_sum / len(images), 100.0 * (predictions == labels).double().mean().item(), predictions


def finish_epoch(run: Run, n_train: int, test_images, test_labels, recipe: Recipe) -> None:
    """Evaluates ``run`` on the test set and closes its epoch into its history."""
    test_loss, test_accuracy, _ = evaluate(run.model, test_images, test_labels)
    run.history.append(dict(
        epoch=run.epoch + 1, lr=recipe.learning_rate(run.epoch), train_loss=run.loss_sum / n_train,
        test_loss=test_loss, test_accuracy=test_accuracy, epoch_seconds=run.seconds,
        images_per_second=n_train / run.seconds, batch_losses=run.batch_losses,
    ))
    run.epoch, run.step, run.loss_sum, run.seconds, run.batch_losses = run.epoch + 1, 0, 0.0, 0.0, []


# ----------------------------------------------------------------------------------- comparison

def compare(runs: list[Run]) -> list[dict]:
    """Per epoch, the largest differences between the two impls' metrics."""
    ours, twin = (run.history for run in runs)
    rows = []
    for a, b in zip(ours, twin):
        curve_a, curve_b = np.array(a["batch_losses"]), np.array(b["batch_losses"])
        rows.append(dict(
            epoch=a["epoch"],
            train_loss_abs=abs(a["train_loss"] - b["train_loss"]),
            test_loss_abs=abs(a["test_loss"] - b["test_loss"]),
            test_accuracy_pp=abs(a["test_accuracy"] - b["test_accuracy"]),
            batch_loss_rel=float(np.max(np.abs(curve_a - curve_b) / np.abs(curve_b))) if len(curve_a) == len(curve_b) else None,
            time_ratio=a["epoch_seconds"] / b["epoch_seconds"],
        ))
    return rows


def summary(runs: list[Run], comparison) -> str:
    """A table of each run's last epoch and mean speed, and with two runs their largest differences."""
    lines = [f"{'impl':<16}{'epochs':>7}{'train loss':>12}{'test loss':>11}{'test acc %':>12}{'s/epoch':>9}{'img/s':>9}"]
    for run in runs:
        last = run.history[-1]
        mean_seconds = np.mean([h["epoch_seconds"] for h in run.history])
        lines.append(
            f"{IMPL_LABELS[run.impl]:<16}{last['epoch']:>7}{last['train_loss']:>12.5f}{last['test_loss']:>11.5f}"
            f"{last['test_accuracy']:>12.2f}{mean_seconds:>9.1f}{np.mean([h['images_per_second'] for h in run.history]):>9.0f}"
        )
    if comparison:
        worst = {key: max((row[key] for row in comparison if row[key] is not None), default=float("nan")) for key in comparison[0] if key != "epoch"}
        lines.append(
            f"ours vs twin, final |Δ test acc| {comparison[-1]['test_accuracy_pp']:.3f} pp; largest over epochs: "
            f"|Δ test acc| {worst['test_accuracy_pp']:.3f} pp, "
            f"|Δ train loss| {worst['train_loss_abs']:.2e}, |Δ test loss| {worst['test_loss_abs']:.2e}, "
            f"batch-loss curve rel. diff {worst['batch_loss_rel']:.2e}; "
            f"epoch time ours/twin {np.mean([row['time_ratio'] for row in comparison]):.2f}×"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: Path, runs: list[Run], recipe: Recipe) -> None:
    """Writes (atomically) the recipe, the first run's model state_dict — which
    ``LeNet5.from_checkpoint`` loads, into either impl — and every run's full state."""
    state = dict(
        recipe=dataclasses.asdict(recipe),
        model=runs[0].model.state_dict(),
        runs={run.impl: run.state_dict() for run in runs},
    )
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def load_checkpoint(path: str | Path, map_location=None) -> dict:
    """A checkpoint written by ``save_checkpoint``, loaded with ``weights_only=True``: a file
    holding anything but tensors and plain containers (a pickled callable, say) is refused
    with pickle.UnpicklingError, never run; a file that is no such checkpoint is a ValueError."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or not {"recipe", "model", "runs"} <= set(checkpoint):
        raise ValueError(f"{path} is not a training checkpoint (expected the keys 'recipe', 'model' and 'runs')")
    return checkpoint


def resumed_recipe(checkpoint: dict, recipe: Recipe) -> Recipe:
    """``recipe`` with the checkpoint's model options, which win. A checkpoint that stopped
    mid-epoch resumes only with its own batch size (ValueError otherwise)."""
    saved = checkpoint["recipe"]
    first = next(iter(checkpoint["runs"].values()))
    if first["step"] and saved["batch_size"] != recipe.batch_size:
        raise ValueError(f"the checkpoint stopped mid-epoch with batch size {saved['batch_size']}; resume with that "
                         f"(got {recipe.batch_size})")
    return dataclasses.replace(recipe, **{name: saved[name] for name in recipe.model_options})


# ------------------------------------------------------------------------------------- driving

def train(recipe: Recipe, data_root: str | Path, out: str | Path, *, impl: str = "ours", device="cpu", dtype=torch.float32,
          train_subset: int | None = None, test_subset: int | None = None, resume: dict | None = None,
          progress: bool = True, config: dict | None = None) -> dict | None:
    """Trains LeNet-5 on MNIST by ``recipe`` with ``impl`` "ours", "torch" (the twin) or "both"
    (the twin starts from a copy of our initial weights; the two take turns batch by batch).
    ``resume`` is a checkpoint from load_checkpoint to continue, up to ``recipe.epochs``.

    Writes to ``out``: checkpoint.pt (after every epoch and on Ctrl-C), metrics.json (with
    ``config`` added to the recipe) and the plots of ``torchconv_impl.training.plots``. Returns
    the metrics; under torchrun the first process alone prints and writes, the others return None.
    On Ctrl-C it saves the checkpoint and exits with status 130.
    """
    from . import plots

    writer = not dist.is_initialized() or dist.get_rank() == 0
    say = tqdm.write if writer else (lambda *_: None)
    out = Path(out)
    if writer:
        out.mkdir(parents=True, exist_ok=True)
    if resume is not None:
        recipe = resumed_recipe(resume, recipe)

    torch.manual_seed(recipe.seed)
    impls = ["ours", "torch"] if impl == "both" else [impl]
    first = LeNet5(**recipe.model_options, impl=impls[0]).to(device, dtype)
    runs = [Run(model, recipe) for model in [first] + [first.twin() for _ in impls[1:]]]
    if resume is not None:
        say(f"resuming at epoch {next(iter(resume['runs'].values()))['epoch'] + 1} with the checkpoint's model options")
        for run in runs:
            # An impl the checkpoint lacks starts from another impl's state (same parameter order).
            run.load_state_dict(resume["runs"].get(run.impl) or next(iter(resume["runs"].values())))

    train_images, train_labels = load_mnist(data_root, True, train_subset, dtype, device)
    test_images, test_labels = load_mnist(data_root, False, test_subset, dtype, device)
    say(
        f"LeNet-5 {recipe.model_options}, {first.num_trainable_parameters():,} trainable parameters; impl {impl}; "
        f"{len(train_images):,} train / {len(test_images):,} test images; {torch.device(device)}, {dtype}; "
        f"{recipe.optimizer} lr {recipe.lr} ({recipe.lr_schedule}), batch {recipe.batch_size}"
    )

    interrupted = False
    with StopRequested() as stop:
        try:
            for _ in range(runs[0].epoch, recipe.epochs):
                train_epoch(runs, train_images, train_labels, recipe, stop, progress)
                for run in runs:
                    finish_epoch(run, len(train_images), test_images, test_labels, recipe)
                    h = run.history[-1]
                    say(
                        f"epoch {h['epoch']:>2} {IMPL_LABELS[run.impl]:<15} train loss {h['train_loss']:.4f}  "
                        f"test loss {h['test_loss']:.4f}  test acc {h['test_accuracy']:.2f}%  "
                        f"{h['epoch_seconds']:.1f}s ({h['images_per_second']:.0f} img/s)"
                    )
                if writer:
                    save_checkpoint(out / "checkpoint.pt", runs, recipe)
                stop.check()
        except KeyboardInterrupt:
            interrupted = True
            if writer and not stop.aborted:  # an abort may have hit mid-step: keep the last epoch's checkpoint
                save_checkpoint(out / "checkpoint.pt", runs, recipe)
            say(f"\ninterrupted: continue with --resume {out / 'checkpoint.pt'}")

    if not writer:
        return None
    comparison = compare(runs) if len(runs) == 2 else None
    metrics = dict(
        config={**dataclasses.asdict(recipe), "impl": impl, "dtype": str(dtype).removeprefix("torch."),
                "train_subset": train_subset, "test_subset": test_subset, **(config or {})},
        parameters=first.num_trainable_parameters(),
        impls={run.impl: run.history for run in runs},
        comparison=comparison,
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if all(run.history for run in runs):
        plots.write_all(runs, first, test_images, test_labels, out)
        print(summary(runs, comparison))
    print(f"wrote {out}/")
    if interrupted:
        sys.exit(130)
    return json.loads((out / "metrics.json").read_text())


def init_distributed(device: torch.device) -> torch.device:
    """Under torchrun (WORLD_SIZE set), joins the process group — gloo on CPU, nccl on CUDA, one
    GPU per process — and returns this process's device; elsewhere returns ``device``."""
    if "WORLD_SIZE" not in os.environ or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


__all__ = ["IMPL_LABELS", "Recipe", "Run", "StopRequested", "train_epoch", "evaluate", "finish_epoch", "compare", "summary",
           "save_checkpoint", "load_checkpoint", "resumed_recipe", "train", "init_distributed"]
