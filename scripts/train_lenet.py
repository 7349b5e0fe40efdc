#!/usr/bin/env python
"""Train LeNet-5 on MNIST with torchconv_impl's layers, its torch.nn twin, or both side by side.

    python scripts/train_lenet.py                      # default recipe, full MNIST, 10 epochs
    python scripts/train_lenet.py --impl both --dtype float64 --epochs 1
    python scripts/train_lenet.py --resume runs/lenet/checkpoint.pt --epochs 15
    torchrun --nproc_per_node 2 scripts/train_lenet.py  # data-parallel (gloo on CPU, nccl on CUDA)

Data: MNIST is loaded once into tensors — 28×28 digits padded by 2 pixels of background to
32×32 (the padding belongs to the data, see torchconv_impl.models.lenet), then normalised —
and iterated in a permutation seeded by (seed, epoch), each training digit moved by a random
shift of up to ``--shift`` pixels (augmentation: LeCun et al. reached 99.2 % only with
distortions, too). Every impl sees the same batches, also after a resume. ``--impl both``
starts the torch twin from a copy of our initial weights and the two take turns batch by
batch; each impl's epoch time sums only its own steps.

Default recipe: ReLU, max pooling, the 1998 C3 table, Adam (lr 2e-3, cosine decay over the
epochs), batch 64, shifts of up to 2 pixels, 10 epochs, 1 CPU thread.

Under ``torchrun`` each process takes an equal share of every batch (``--batch-size`` stays
the whole batch) and DistributedDataParallel averages the gradients, so training follows the
single-process recipe; the first process alone prints and writes the outputs.

Writes to ``--out``: metrics.json, checkpoint.pt (after every epoch and on Ctrl-C), and PNG
plots: curves.png, c1_filters.png, feature_maps.png, confusion_matrix.png.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from tqdm import tqdm  # noqa: E402

import torchconv_impl  # noqa: E402
from torchconv_impl.models import LeNet5  # noqa: E402
from torchconv_impl.models.lenet import ACTIVATIONS, C3_CONNECTIONS, POOLINGS  # noqa: E402

# MNIST's pixel mean and standard deviation (training set, pixels in [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
IMPL_LABELS = {"ours": "torchconv_impl", "torch": "torch.nn twin"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="total epochs (a resumed run continues up to this)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="adam", help="sgd uses momentum 0.9")
    p.add_argument("--lr-schedule", choices=("cosine", "none"), default="cosine", help="per-epoch cosine decay from --lr to 0")
    p.add_argument("--shift", type=int, choices=range(3), default=2, metavar="{0,1,2}",
                   help="augmentation: move each training digit by up to this many pixels (random, per axis)")
    p.add_argument("--data-root", default=os.environ.get("TORCHCONV_DATA", "./data"), help="holds MNIST/raw/ (env TORCHCONV_DATA)")
    p.add_argument("--impl", choices=("ours", "torch", "both"), default="ours")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads, 0 = torch's default. LeNet's layers are too small to gain from more, and on a CPU "
                        "shared with other jobs more threads are many times slower")
    p.add_argument("--train-subset", type=int, metavar="N", help="train on the first N training images")
    p.add_argument("--test-subset", type=int, metavar="N", help="evaluate on the first N test images")
    p.add_argument("--out", default="runs/lenet", help="output directory")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    p.add_argument("--pooling", choices=POOLINGS, default="max")
    p.add_argument("--c3-connections", choices=C3_CONNECTIONS, default="lecun1998")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint.pt (its model options win)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = p.parse_args(argv)
    if args.threads < 0:
        p.error(f"--threads must be non-negative, got {args.threads}")
    for name in ("epochs", "batch_size", "train_subset", "test_subset"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    return args


# ----------------------------------------------------------------------------------------- data

def load_mnist(root, train: bool, subset, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as (images N×1×32×32 normalised, labels N); downloads only when files are missing."""
    from torchvision.datasets import MNIST

    try:
        dataset = MNIST(root, train=train, download=False)
    except RuntimeError:
        try:
            dataset = MNIST(root, train=train, download=True)
        except Exception as error:
            raise SystemExit(
                f"MNIST not found under {Path(root, 'MNIST', 'raw').resolve()} and the download failed ({error}).\n"
                "Put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                "t10k-labels-idx1-ubyte (or their .gz) there, or point --data-root / TORCHCONV_DATA at a "
                "directory that holds MNIST/raw/."
            ) from None
    images, labels = dataset.data[:subset], dataset.targets[:subset]
    # Pad the raw digit with background (0) before normalising, so the border looks like background.
    images = torch.nn.functional.pad(images.to(dtype) / 255, (2, 2, 2, 2))
    images = ((images - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
    return images.to(device), labels.to(device)


def epoch_plan(n: int, seed: int, epoch: int, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's sample order and per-sample (dy, dx) shifts in [-max_shift, max_shift],
    drawn from a generator seeded by (seed, epoch): the same for every impl, and resumable."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    return torch.from_numpy(order), torch.from_numpy(shifts)


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Moves image i (N×1×H×W) by shifts[i] = (dy, dx) pixels, cyclically: the digits sit in
    2 pixels of padding, so shifts of up to 2 wrap only background around."""
    height, width = images.shape[-2:]
    rows = (torch.arange(height, device=images.device) - shifts[:, :1]) % height  # (N, H)
    cols = (torch.arange(width, device=images.device) - shifts[:, 1:]) % width  # (N, W)
    batch = torch.arange(len(images), device=images.device)[:, None, None]
    return images[:, 0][batch, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


# ------------------------------------------------------------------------------------- training

class Run:
    """One impl's model, optimizer, loss and progress: epochs done, batches done in the
    current epoch (nonzero only after Ctrl-C), and the metrics history."""

    def __init__(self, model: LeNet5, args):
        self.impl, self.model = model.impl, model
        # What training calls: the model itself, or under torchrun its DistributedDataParallel wrapper.
        self.trained = torch.nn.parallel.DistributedDataParallel(model) if dist.is_initialized() else model
        params = model.parameters()
        if args.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9)
        else:
            self.optimizer = torch.optim.Adam(params, lr=args.lr)
        nn = torchconv_impl.nn if self.impl == "ours" else torch.nn
        self.loss_fn = nn.CrossEntropyLoss()
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
    checkpoint is consistent); a second one interrupts at once."""

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


def learning_rate(args, epoch: int) -> float:
    if args.lr_schedule == "cosine":
        return args.lr * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs))
    return args.lr


def train_epoch(runs: list[Run], images, labels, args, stop: StopRequested) -> None:
    """Trains every run through epoch ``run.epoch``, from batch ``run.step`` on. The runs take
    turns batch by batch, so they see the same batches under the same machine load (fair
    timings on a shared CPU)."""
    epoch, step = runs[0].epoch, runs[0].step
    lr = learning_rate(args, epoch)
    for run in runs:
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        run.model.train()
    order, shifts = (t.to(images.device) for t in epoch_plan(len(images), args.seed, epoch, args.shift))
    starts = range(step * args.batch_size, len(images), args.batch_size)
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    with tqdm(
        total=len(images), initial=starts.start, unit="img", unit_scale=True, leave=False, disable=args.no_progress or rank > 0,
        desc=f"epoch {epoch + 1}/{args.epochs}",
    ) as bar:
        for start in starts:
            index = order[start:start + args.batch_size].tensor_split(world_size)[rank]  # this process's share
            batch_images, batch_labels = translate(images[index], shifts[index]), labels[index]
            seen = min(start + args.batch_size, len(images))
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


def finish_epoch(run: Run, n_train: int, test_images, test_labels, args) -> None:
    test_loss, test_accuracy, _ = evaluate(run.model, test_images, test_labels)
    run.history.append(dict(
        epoch=run.epoch + 1, lr=learning_rate(args, run.epoch), train_loss=run.loss_sum / n_train,
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


# ---------------------------------------------------------------------------------------- plots

def plot_curves(runs: list[Run], path: Path) -> None:
    fig, (ax_batch, ax_loss, ax_acc) = plt.subplots(1, 3, figsize=(15, 4))
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _image_grid(ax_row, maps, title: str, **imshow) -> None:
    for i, ax in enumerate(ax_row):
        ax.axis("off")
        if i < len(maps):
            ax.imshow(maps[i], **({"cmap": "gray"} | imshow))
            ax.set_title(f"{title}{i}", fontsize=7)


def plot_c1_filters(model: LeNet5, path: Path) -> None:
    filters = model.c1.weight.detach().cpu().double()[:, 0].numpy()
    limit = float(np.abs(filters).max())  # one symmetric scale: white = 0, red > 0, blue < 0
    fig, axes = plt.subplots(1, len(filters), figsize=(1.6 * len(filters), 1.9))
    _image_grid(axes, filters, "C1 filter ", cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def plot_feature_maps(model: LeNet5, image: torch.Tensor, label: int, path: Path) -> None:
    model.eval()
    maps = {name: m[0].cpu().double().numpy() for name, m in model.feature_maps(image[None]).items()}
    fig, axes = plt.subplots(3, 8, figsize=(12, 5))
    axes[0, 0].imshow(image[0].cpu().double().numpy(), cmap="gray")
    axes[0, 0].set_title(f"input (label {label}, predicted {int(maps['output'].argmax())})", fontsize=7, loc="left")
    for ax in axes[0, :2]:
        ax.axis("off")
    _image_grid(axes[0, 2:], maps["c1"], "C1 map ")
    _image_grid(axes[1:].flat, maps["c3"], "C3 map ")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(predictions: torch.Tensor, labels: torch.Tensor, title: str, path: Path) -> None:
    matrix = torch.zeros(10, 10, dtype=torch.long)
    matrix.index_put_((labels.cpu(), predictions.cpu()), torch.ones(len(labels), dtype=torch.long), accumulate=True)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    ax.imshow(matrix.numpy(), cmap="Blues")
    for (true, predicted), count in np.ndenumerate(matrix.numpy()):
        if count:
            ax.text(predicted, true, count, ha="center", va="center", fontsize=7, color="white" if count > matrix.max() / 2 else "black")
    ax.set(title=title, xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------- main

def save_checkpoint(path: Path, runs: list[Run], args) -> None:
    state = dict(
        options=runs[0].model.options,
        config={k: v for k, v in vars(args).items() if k not in ("resume", "out", "data_root")},
        model=runs[0].model.state_dict(),  # loads into LeNet5(**options, impl="ours" or "torch")
        runs={run.impl: run.state_dict() for run in runs},
    )
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def write_metrics(path: Path, runs: list[Run], args, comparison) -> None:
    metrics = dict(
        config={k: v for k, v in vars(args).items()},
        parameters=runs[0].model.num_trainable_parameters(),
        impls={run.impl: run.history for run in runs},
        comparison=comparison,
    )
    path.write_text(json.dumps(metrics, indent=1))


def setup(args) -> tuple[torch.device, torch.dtype]:
    """The device and dtype the flags ask for; applies ``--threads``; under torchrun (WORLD_SIZE
    set) joins the process group, gloo on CPU and nccl on CUDA, one GPU per process."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this torch sees no CUDA device (torch.cuda.is_available() is False); use --device cpu or auto")
    device = torch.device(device)
    if "WORLD_SIZE" in os.environ and not dist.is_initialized():
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, getattr(torch, args.dtype)


def main(argv=None) -> dict | None:
    """Runs training; returns the metrics written to metrics.json (None in processes other than
    torchrun's first, which write nothing)."""
    args = parse_args(argv)
    device, dtype = setup(args)
    try:
        return _train(args, device, dtype)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(args, device, dtype) -> dict | None:
    # Under torchrun only the first process prints and writes; the others train their share.
    writer = not dist.is_initialized() or dist.get_rank() == 0
    say = tqdm.write if writer else (lambda *_: None)
    out = Path(args.out)
    if writer:
        out.mkdir(parents=True, exist_ok=True)

    checkpoint = torch.load(args.resume, map_location=device, weights_only=False) if args.resume else None
    options = dict(activation=args.activation, pooling=args.pooling, c3_connections=args.c3_connections)
    if checkpoint is not None and checkpoint["options"] != options:
        say(f"resuming: model options from the checkpoint, {checkpoint['options']}")
        options = checkpoint["options"]

    torch.manual_seed(args.seed)
    impls = ["ours", "torch"] if args.impl == "both" else [args.impl]
    first = LeNet5(**options, impl=impls[0]).to(device, dtype)
    models = [first] + [first.twin() for _ in impls[1:]]
    runs = [Run(model, args) for model in models]
    if checkpoint is not None:
        for run in runs:
            # An impl the checkpoint lacks starts from another impl's state (same parameter order).
            run.load_state_dict(checkpoint["runs"].get(run.impl) or next(iter(checkpoint["runs"].values())))
        if runs[0].step and checkpoint["config"]["batch_size"] != args.batch_size:
            raise SystemExit(f"{args.resume} stopped mid-epoch with --batch-size {checkpoint['config']['batch_size']}; resume with that")

    train_images, train_labels = load_mnist(args.data_root, True, args.train_subset, dtype, device)
    test_images, test_labels = load_mnist(args.data_root, False, args.test_subset, dtype, device)
    say(
        f"LeNet-5 {options}, {first.num_trainable_parameters():,} trainable parameters; impl {args.impl}; "
        f"{len(train_images):,} train / {len(test_images):,} test images; {device}, {args.dtype}; "
        f"{args.optimizer} lr {args.lr} ({args.lr_schedule}), batch {args.batch_size}"
    )

    interrupted = False
    with StopRequested() as stop:
        try:
            for _ in range(runs[0].epoch, args.epochs):
                train_epoch(runs, train_images, train_labels, args, stop)
                for run in runs:
                    finish_epoch(run, len(train_images), test_images, test_labels, args)
                    h = run.history[-1]
                    say(
                        f"epoch {h['epoch']:>2} {IMPL_LABELS[run.impl]:<15} train loss {h['train_loss']:.4f}  "
                        f"test loss {h['test_loss']:.4f}  test acc {h['test_accuracy']:.2f}%  "
                        f"{h['epoch_seconds']:.1f}s ({h['images_per_second']:.0f} img/s)"
                    )
                if writer:
                    save_checkpoint(out / "checkpoint.pt", runs, args)
                stop.check()
        except KeyboardInterrupt:
            interrupted = True
            if writer and not stop.aborted:  # an abort may have hit mid-step: keep the last epoch's checkpoint
                save_checkpoint(out / "checkpoint.pt", runs, args)
            say(f"\ninterrupted: continue with --resume {out / 'checkpoint.pt'}")

    if not writer:
        return None
    comparison = compare(runs) if len(runs) == 2 else None
    write_metrics(out / "metrics.json", runs, args, comparison)
    if all(run.history for run in runs):
        plot_curves(runs, out / "curves.png")
        plot_c1_filters(first, out / "c1_filters.png")
        plot_feature_maps(first, test_images[0], int(test_labels[0]), out / "feature_maps.png")
        _, accuracy, predictions = evaluate(first, test_images, test_labels)
        plot_confusion(predictions, test_labels, f"{IMPL_LABELS[first.impl]}: test accuracy {accuracy:.2f}%", out / "confusion_matrix.png")
        print(summary(runs, comparison))
    print(f"wrote {out}/")
    if interrupted:
        sys.exit(130)
    return json.loads((out / "metrics.json").read_text())


if __name__ == "__main__":
    main()
