"""torchconv_impl.training: data (padding, shifts, the data root's errors), the recipe, the
shared flags' errors, checkpoints, the plots' colour bars, and short runs on real MNIST (ours
and the twin together, a resume after Ctrl-C, the noise floor)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import pickle
from urllib.error import URLError

import matplotlib.pyplot as plt
import pytest
import torch
from support import PickledCall

from torchconv_impl import training
from torchconv_impl.models import LeNet5
from torchconv_impl.training import cli, noise_floor, plots

DATA_ROOT = pathlib.Path(os.environ.get("TORCHCONV_DATA") or "./data")
needs_mnist = pytest.mark.skipif(
    not training.data.has_mnist(DATA_ROOT / "MNIST" / "raw"),
    reason=f"real MNIST not found under {DATA_ROOT.resolve()}/MNIST/raw (set TORCHCONV_DATA to the directory holding MNIST/raw)",
)


def fake_mnist(folder: pathlib.Path) -> pathlib.Path:
    """Empty files named as MNIST's, in ``folder``/MNIST/raw: enough for the layout checks."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in training.MNIST_FILES:
        (raw / name).touch()
    return folder


# ------------------------------------------------------------------------------------- data

def test_translate_is_a_per_image_roll():
    images = torch.randn(5, 1, 32, 32)
    shifts = torch.tensor([[0, 0], [2, -1], [-2, 2], [1, 1], [-1, 0]])
    expected = torch.stack([torch.roll(image, tuple(shift.tolist()), dims=(1, 2)) for image, shift in zip(images, shifts)])
    assert torch.equal(training.translate(images, shifts), expected)


def test_epoch_plan_is_a_seeded_permutation():
    order, drawn = training.epoch_plan(1000, seed=0, epoch=3, max_shift=2)
    assert sorted(order.tolist()) == list(range(1000)) and set(drawn.flatten().tolist()) == {-2, -1, 0, 1, 2}
    assert torch.equal(order, training.epoch_plan(1000, seed=0, epoch=3, max_shift=2)[0])
    assert not torch.equal(order, training.epoch_plan(1000, seed=0, epoch=4, max_shift=2)[0])
    assert not training.epoch_plan(1000, seed=0, epoch=3, max_shift=0)[1].any()


@pytest.mark.parametrize("too_deep", ["MNIST", "MNIST/raw"])
def test_a_data_root_too_deep_names_the_root_meant(tmp_path, too_deep):
    root = fake_mnist(tmp_path / "data")
    assert training.mnist_root(root) == root
    with pytest.raises(FileNotFoundError, match=f"is too deep: .* holds MNIST/raw/, here {root}$"):
        training.mnist_root(root / too_deep)


@pytest.mark.parametrize("existing", ["", "data", "data/MNIST"])
def test_a_failed_download_leaves_no_folder_it_made(tmp_path, monkeypatch, existing):
    """The download makes data/MNIST/raw/ and writes there before it fails: afterwards only
    the folders that existed before are left, and the error says what to do."""
    from torchvision.datasets import mnist

    def failing_download(url, download_root, filename, md5):
        pathlib.Path(download_root, filename).write_bytes(b"partial")
        raise URLError("no network")

    monkeypatch.setattr(mnist, "download_and_extract_archive", failing_download)
    if existing:
        (tmp_path / existing).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"the download failed \(.*no network.*\); put train-images-idx3-ubyte"):
        training.mnist_root(tmp_path / "data")
    left = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    assert left == (["data", "data/MNIST"][:existing.count("/") + 1] if existing else [])


# ----------------------------------------------------------------------------------- recipe

def test_recipe_defaults_and_checks():
    recipe = training.Recipe()
    assert (recipe.activation, recipe.pooling, recipe.optimizer, recipe.lr, recipe.batch_size, recipe.epochs) == \
        ("relu", "max", "adam", 2e-3, 64, 10)
    assert recipe.learning_rate(0) == 2e-3 and recipe.learning_rate(5) == pytest.approx(1e-3)
    assert dataclasses.replace(recipe, lr_schedule="none").learning_rate(5) == 2e-3
    for field, value in (("lr", -1.0), ("epochs", 0), ("batch_size", 0)):
        with pytest.raises(ValueError, match=f"^{field} must be positive"):
            training.Recipe(**{field: value})
    with pytest.raises(ValueError, match="^optimizer must be one of"):
        training.Recipe(optimizer="lbfgs")


def _common_flags(argv):
    parser = argparse.ArgumentParser(prog="train", parents=[cli.common_parser()])
    return parser, parser.parse_args(argv)


@pytest.mark.parametrize("argv, message", [
    (["--lr", "-1"], "--lr must be positive, got -1.0"),
    (["--epochs", "0"], "--epochs must be positive, got 0"),
    (["--batch-size", "0"], "--batch-size must be positive, got 0"),
    (["--threads", "-1"], "--threads must be non-negative, got -1"),
    (["--train-subset", "0"], "--train-subset must be positive, got 0"),
    (["--test-subset", "-5"], "--test-subset must be positive, got -5"),
    pytest.param(["--device", "cuda"], "--device cuda: this torch sees no CUDA device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")),
])
def test_bad_flags_end_in_one_line(capsys, argv, message):
    parser, args = _common_flags(argv)
    threads = torch.get_num_threads()
    with pytest.raises(SystemExit) as exit_:
        cli.recipe_and_machine(parser, args)
    assert exit_.value.code == 2
    usage, error = capsys.readouterr().err.rstrip("\n").rsplit("\n", 1)
    assert usage.startswith("usage: train") and error.startswith(f"train: error: {message}")
    assert torch.get_num_threads() == threads


def test_out_must_be_a_directory(tmp_path, capsys):
    (tmp_path / "file").touch()
    parser, _ = _common_flags([])
    cli.check_out(parser, str(tmp_path / "folder"))
    with pytest.raises(SystemExit):
        cli.check_out(parser, str(tmp_path / "file"))
    assert capsys.readouterr().err.splitlines()[-1] == f"train: error: --out: {tmp_path / 'file'} is a file, not a directory"


def test_flags_make_the_recipe():
    threads = torch.get_num_threads()
    try:
        recipe, device, dtype = cli.recipe_and_machine(*_common_flags(["--lr", "0.01", "--pooling", "avg", "--dtype", "float64",
                                                                       "--device", "cpu", "--threads", "1"]))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert recipe == training.Recipe(lr=0.01, pooling="avg")
    assert (device, dtype) == (torch.device("cpu"), torch.float64)


# ------------------------------------------------------------------------------ checkpoints

def _runs(impls=("ours", "torch")):
    recipe = training.Recipe(epochs=2, batch_size=4)
    first = LeNet5(**recipe.model_options)
    return recipe, [training.Run(model, recipe) for model in [first, first.twin()][:len(impls)]]


def test_checkpoint_round_trip(tmp_path):
    recipe, runs = _runs()
    runs[0].step = runs[1].step = 3
    training.save_checkpoint(tmp_path / "checkpoint.pt", runs, recipe)
    checkpoint = training.load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["recipe"] == dataclasses.asdict(recipe) and set(checkpoint["runs"]) == {"ours", "torch"}
    model = LeNet5.from_checkpoint(tmp_path / "checkpoint.pt", impl="torch")
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(model(x), runs[0].model(x))
    # The checkpoint's model options win; a mid-epoch stop resumes only with its batch size.
    resumed = training.resumed_recipe(checkpoint, training.Recipe(activation="tanh", batch_size=4, epochs=5))
    assert resumed == dataclasses.replace(recipe, epochs=5)
    with pytest.raises(ValueError, match="stopped mid-epoch with batch size 4"):
        training.resumed_recipe(checkpoint, training.Recipe(batch_size=8))


def test_load_checkpoint_refuses_a_pickled_callable(tmp_path):
    marker = tmp_path / "ran"
    recipe, runs = _runs()
    torch.save(dict(recipe={}, model={}, runs={}, payload=PickledCall(marker)), tmp_path / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global"):
        training.load_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()
    torch.save(runs[0].model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="is not a training checkpoint"):
        training.load_checkpoint(tmp_path / "weights.pt")



# ------------------------------------------------------------------------------------ plots

def _colorbars(fig) -> int:
    return sum(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_every_plot_of_values_in_colours_has_a_colour_bar(tmp_path, monkeypatch):
    """c1_filters: one (weights); feature_maps: input, C1 and C3 each on their own scale;
    confusion_matrix: one (counts). The curves use colour for the impl only."""
    figures = {}
    real_save = plots._save

    def keep(fig, path):
        figures[path.stem] = _colorbars(fig)
        real_save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    recipe, runs = _runs()
    images, labels = torch.randn(20, 1, 32, 32), torch.arange(20) % 10
    training.train_epoch(runs, images, labels, recipe, progress=False)
    for run in runs:
        training.finish_epoch(run, len(images), images, labels, recipe)
    plots.write_all(runs, runs[0].model, images, labels, tmp_path)
    assert figures == dict(curves=0, c1_filters=1, feature_maps=3, confusion_matrix=1)
    for name in plots.PLOTS:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not plt.get_fignums()  # every figure closed


# --------------------------------------------------------------------------- real MNIST runs

@needs_mnist
def test_train_both_on_real_mnist(tmp_path):
    """One epoch on 5,000 real training images: both impls > 90 % on 1,000 test images, and
    they stay together (identical initial weights and batches)."""
    recipe = training.Recipe(epochs=1, batch_size=16, shift=0)
    metrics = training.train(recipe, DATA_ROOT, tmp_path, impl="both", train_subset=5000, test_subset=1000, progress=False)
    ours, twin = metrics["impls"]["ours"][0], metrics["impls"]["torch"][0]
    assert ours["test_accuracy"] > 90 and twin["test_accuracy"] > 90
    assert abs(ours["test_accuracy"] - twin["test_accuracy"]) <= 0.5
    assert ours["train_loss"] == pytest.approx(twin["train_loss"], rel=1e-2)
    # float32 rounding differences grow chaotically over training; early on the curves coincide.
    torch.testing.assert_close(ours["batch_losses"][:40], twin["batch_losses"][:40], rtol=1e-4, atol=0)
    assert metrics == json.loads((tmp_path / "metrics.json").read_text())
    for name in plots.PLOTS:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    # The checkpoint holds both runs; its model (ours) loads into the torch twin, with the recipe's options.
    checkpoint = training.load_checkpoint(tmp_path / "checkpoint.pt")
    assert set(checkpoint["runs"]) == {"ours", "torch"} and checkpoint["runs"]["ours"]["epoch"] == 1
    twin_model = LeNet5.from_checkpoint(tmp_path / "checkpoint.pt", impl="torch")
    assert twin_model.options == recipe.model_options
    images, labels = training.load_mnist(DATA_ROOT, False, 1000)
    assert images.shape == (1000, 1, 32, 32)
    background = -training.MNIST_MEAN / training.MNIST_STD  # the 2-pixel padding that shifts wrap around
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:-2, 2:-2] = False
    assert torch.allclose(images[:, 0, border], torch.tensor(background))
    assert training.evaluate(twin_model, images, labels)[1] == pytest.approx(ours["test_accuracy"], abs=1e-9)
    # LeNet5()'s defaults (tanh, average pooling) are not the recipe's: its weights are refused.
    with pytest.raises(RuntimeError, match="state_dict is of a LeNet5 with activation='relu', pooling='max'"):
        LeNet5().load_state_dict(checkpoint["model"])


@needs_mnist
def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path, monkeypatch):
    """Ctrl-C mid-epoch saves a checkpoint; resuming from it reproduces the uninterrupted run.
    In float64 the two impls' loss curves agree to 1e-6."""
    recipe = training.Recipe(epochs=2)
    common = dict(impl="both", dtype=torch.float64, train_subset=640, test_subset=200, progress=False)
    straight = training.train(recipe, DATA_ROOT, tmp_path / "straight", **common)
    for ours, twin in zip(straight["impls"]["ours"], straight["impls"]["torch"], strict=True):
        torch.testing.assert_close(ours["batch_losses"], twin["batch_losses"], rtol=1e-6, atol=0)

    # Training checks for a stop request after each of the 10 batches of an epoch and after the
    # epoch's checkpoint: the 16th check follows the 5th batch of epoch 2.
    checks = 0
    original_check = training.StopRequested.check

    def ctrl_c_before_check_16(self):
        nonlocal checks
        checks += 1
        self.requested = self.requested or checks == 16
        original_check(self)

    monkeypatch.setattr(training.StopRequested, "check", ctrl_c_before_check_16)
    with pytest.raises(SystemExit) as exit_:
        training.train(recipe, DATA_ROOT, tmp_path / "interrupted", **common)
    assert exit_.value.code == 130
    saved = training.load_checkpoint(tmp_path / "interrupted" / "checkpoint.pt")["runs"]
    assert [(run["epoch"], run["step"]) for run in saved.values()] == [(1, 5), (1, 5)]
    monkeypatch.setattr(training.StopRequested, "check", original_check)

    checkpoint = training.load_checkpoint(tmp_path / "interrupted" / "checkpoint.pt")
    resumed = training.train(recipe, DATA_ROOT, tmp_path / "resumed", resume=checkpoint, **common)
    for impl in ("ours", "torch"):
        for a, b in zip(resumed["impls"][impl], straight["impls"][impl], strict=True):
            for key in ("train_loss", "test_loss", "test_accuracy", "batch_losses"):
                assert a[key] == b[key], (impl, a["epoch"], key)


def test_noise_floor_perturbs_one_weight_by_one_ulp():
    for dtype in (torch.float32, torch.float64):
        model = LeNet5(impl="torch").to(dtype=dtype)
        before = {name: p.clone() for name, p in model.named_parameters()}
        noise_floor.one_ulp_higher(model)
        for name, p in model.named_parameters():
            changed = (p != before[name]).nonzero().tolist()
            assert changed == ([[0, 0, 0, 0]] if name == "c1.weight" else []), name
        old, new = before["c1.weight"][0, 0, 0, 0], model.c1.weight[0, 0, 0, 0]
        assert new > old and new == torch.nextafter(old, torch.tensor(float("inf"), dtype=dtype))


@needs_mnist
def test_noise_floor_reports_both_gaps():
    data = [training.load_mnist(DATA_ROOT, train, subset) for train, subset in ((True, 640), (False, 200))]
    report = noise_floor.noise_floor(training.Recipe(epochs=2), [0, 1], data, progress=False)
    for seed in (0, 1):
        accuracies = report["seeds"][seed]
        assert set(accuracies) == {"ours", "twin", "twin_ulp"} and all(len(a) == 2 for a in accuracies.values())
        assert accuracies["twin"][-1] > 30  # they learned (chance: 10 %)
    ours_gaps = [report["seeds"][s]["ours"][-1] - report["seeds"][s]["twin"][-1] for s in (0, 1)]
    assert report["summary"]["ours - twin"]["mean"] == pytest.approx(sum(ours_gaps) / 2)
    assert report["summary"]["ours - twin"]["max_abs"] == pytest.approx(max(map(abs, ours_gaps)))
