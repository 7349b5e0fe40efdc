"""LeNet-5: architecture and parameter counts, the 1998 C3 table, ours vs the torch.nn twin
(outputs, gradients, checkpoints), and scripts/train_lenet.py on real MNIST."""
from __future__ import annotations

import importlib.util
import io
import itertools
import json
import os
from pathlib import Path

import pytest
import torch
from support import assert_close, no_native_ops

from torchconv_impl import ArgumentError
from torchconv_impl.models import LeNet5
from torchconv_impl.models.lenet import LECUN1998_C3_TABLE, c3_connection_table, num_trainable_parameters

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "seeds"
DATA_ROOT = Path(os.environ.get("TORCHCONV_DATA", "./data"))
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
needs_mnist = pytest.mark.skipif(
    not all((DATA_ROOT / "MNIST" / "raw" / name).exists() for name in MNIST_FILES),
    reason=f"real MNIST not found under {DATA_ROOT.resolve()}/MNIST/raw (set TORCHCONV_DATA to the directory holding MNIST/raw)",
)
OPTIONS = [
    dict(activation=a, pooling=p, c3_connections=c)
    for a, p, c in itertools.product(("tanh", "relu"), ("avg", "max"), ("lecun1998", "full"))
]


@pytest.fixture
def script():
    """scripts/train_lenet.py as a module; main() runs it in-process. Its thread setting
    (default 1) must not outlive the test."""
    threads = torch.get_num_threads()
    spec = importlib.util.spec_from_file_location("train_lenet", ROOT / "scripts" / "train_lenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------ architecture

@pytest.mark.parametrize("impl", ["ours", "torch"])
def test_parameter_counts(impl):
    model = LeNet5(impl=impl)
    # C1 156 + C3 1,516 (60 of 96 maps connected: 60·25 + 16) + C5 48,120 + F6 10,164 + output 850
    counts = {name: num_trainable_parameters(child) for name, child in model.named_children()}
    assert counts == dict(c1=156, s2=0, c3=1516, s4=0, c5=48120, f6=10164, output=850, activation=0)
    assert model.num_trainable_parameters() == 60806
    assert sum(p.numel() for p in model.parameters()) == 61706  # the masked conv keeps a full 16×6×5×5 weight
    full = LeNet5(c3_connections="full", impl=impl)
    assert getattr(full.c3, "connection_table", None) is None
    assert full.num_trainable_parameters() == 61706 and num_trainable_parameters(full.c3) == 2416


def test_c3_table_structure():
    table = c3_connection_table("lecun1998")  # (C3 maps, S2 maps)
    assert table.shape == (16, 6) and table.dtype == torch.bool and int(table.sum()) == 60
    for o in range(16):
        seen = {c for c in range(6) if table[o, c]}
        if o < 6:  # 3 contiguous (cyclically)
            assert seen == {(o + k) % 6 for k in range(3)}, o
        elif o < 12:  # 4 contiguous
            assert seen == {(o - 6 + k) % 6 for k in range(4)}, o
        elif o < 15:  # 4 non-contiguous: two pairs with a gap
            assert seen == {(o - 12 + k) % 6 for k in (0, 1, 3, 4)}, o
            assert all(seen != {(s + k) % 6 for k in range(4)} for s in range(6)), o
        else:
            assert seen == set(range(6))
    assert c3_connection_table("full") is None


def test_c3_table_matches_the_seed():
    """The table as transcribed in the lecture notes ("Feature map selection", LeNet5, 1998)."""
    notes = sorted(SEEDS.glob("004_*.txt"))
    if not notes:
        pytest.skip(f"lecture notes not found under {SEEDS}")
    lines = notes[0].read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == [str(c) for c in range(16)])
    rows = [line.split("\t") for line in lines[header + 1:header + 7]]
    seed_table = [[cell.strip() == "X" for cell in row[1:17] + [""] * (17 - len(row))] for row in rows]
    assert seed_table == [[mark == "X" for mark in row] for row in LECUN1998_C3_TABLE]


def test_bad_options():
    with pytest.raises(ArgumentError, match="expected activation to be one of"):
        LeNet5(activation="sigmoid")
    with pytest.raises(ArgumentError, match="expected c3_connections to be one of"):
        LeNet5(c3_connections="random")
    with pytest.raises(ArgumentError, match="expected impl to be one of"):
        LeNet5(impl="numpy")


# ---------------------------------------------------------------------------- ours vs twin

@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o.values()))
def test_matches_torch_twin(options):
    """Same weights → same logits and the same gradient for every parameter (float64), and
    our forward and backward dispatch no native conv/pool op."""
    ours = LeNet5(**options).double()
    twin = ours.twin()
    assert twin.impl == "torch" and list(twin.state_dict()) == list(ours.state_dict())
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    labels = torch.tensor([3, 1, 4])
    with no_native_ops():
        loss = torch.nn.functional.cross_entropy(ours(x), labels)
        loss.backward()
    expected = torch.nn.functional.cross_entropy(twin(x), labels)
    expected.backward()
    assert_close(loss, expected)
    for (name, p), q in zip(ours.named_parameters(), twin.parameters()):
        assert_close(p.grad, q.grad, msg=f"gradient of {name}")


@pytest.mark.parametrize("source", ["ours", "torch"])
def test_checkpoint_round_trip(source):
    model = LeNet5(impl=source)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    other = LeNet5(impl="torch" if source == "ours" else "ours")
    other.load_state_dict(torch.load(buffer))
    x = torch.randn(4, 1, 32, 32)
    assert_close(other(x), model(x))
    assert torch.equal(other.c3.connection_table, model.c3.connection_table)


@pytest.mark.parametrize("impl", ["ours", "torch"])
@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
def test_masked_weights_stay_zero(impl, optimizer):
    model = LeNet5(impl=impl)
    masked = ~model.c3.connection_table
    assert not model.c3.weight[masked].any()
    opt = optimizer(model.parameters(), lr=0.1, weight_decay=1e-3)
    before = model.c3.weight.detach().clone()
    torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 32, 32)), torch.arange(8)).backward()
    assert not model.c3.weight.grad[masked].any()
    opt.step()
    assert not model.c3.weight[masked].any()
    assert (model.c3.weight[~masked] != before[~masked]).all()


# -------------------------------------------------------------------------------- the script

def test_translate_is_a_per_image_roll(script):
    images = torch.randn(5, 1, 32, 32)
    shifts = torch.tensor([[0, 0], [2, -1], [-2, 2], [1, 1], [-1, 0]])
    expected = torch.stack([torch.roll(image, tuple(shift.tolist()), dims=(1, 2)) for image, shift in zip(images, shifts)])
    assert torch.equal(script.translate(images, shifts), expected)
    order, drawn = script.epoch_plan(1000, seed=0, epoch=3, max_shift=2)
    assert sorted(order.tolist()) == list(range(1000)) and set(drawn.flatten().tolist()) == {-2, -1, 0, 1, 2}
    assert torch.equal(order, script.epoch_plan(1000, seed=0, epoch=3, max_shift=2)[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_cuda_is_a_clear_error(tmp_path, script):
    with pytest.raises(SystemExit, match="--device cuda: this torch sees no CUDA device"):
        script.main(["--device", "cuda", "--out", str(tmp_path), "--no-progress"])


@needs_mnist
def test_train_both_on_real_mnist(tmp_path, script):
    """One epoch on 5,000 real training images: both impls > 90 % on 1,000 test images, and
    they stay together (identical initial weights and batches)."""
    metrics = script.main([
        "--impl", "both", "--epochs", "1", "--train-subset", "5000", "--test-subset", "1000", "--batch-size", "16", "--shift", "0",
        "--data-root", str(DATA_ROOT), "--out", str(tmp_path), "--no-progress",
    ])
    ours, twin = metrics["impls"]["ours"][0], metrics["impls"]["torch"][0]
    assert ours["test_accuracy"] > 90 and twin["test_accuracy"] > 90
    assert abs(ours["test_accuracy"] - twin["test_accuracy"]) <= 0.5
    assert ours["train_loss"] == pytest.approx(twin["train_loss"], rel=1e-2)
    # float32 rounding differences grow chaotically over training; early on the curves coincide.
    torch.testing.assert_close(ours["batch_losses"][:40], twin["batch_losses"][:40], rtol=1e-4, atol=0)
    assert metrics == json.loads((tmp_path / "metrics.json").read_text())
    for name in ("curves", "c1_filters", "feature_maps", "confusion_matrix"):
        with open(tmp_path / f"{name}.png", "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n", name

    # The checkpoint holds both runs; its model (ours) loads into the torch twin.
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert set(checkpoint["runs"]) == {"ours", "torch"} and checkpoint["runs"]["ours"]["epoch"] == 1
    twin_model = LeNet5(**checkpoint["options"], impl="torch")
    twin_model.load_state_dict(checkpoint["model"])
    images, labels = script.load_mnist(DATA_ROOT, False, 1000, torch.float32, "cpu")
    assert images.shape == (1000, 1, 32, 32)
    background = -script.MNIST_MEAN / script.MNIST_STD  # the 2-pixel padding that shifts wrap around
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:-2, 2:-2] = False
    assert torch.allclose(images[:, 0, border], torch.tensor(background))
    assert script.evaluate(twin_model, images, labels)[1] == pytest.approx(ours["test_accuracy"], abs=1e-9)


@needs_mnist
def test_torchrun_two_processes_match_one(tmp_path, script):
    """``torchrun --nproc_per_node 2 scripts/train_lenet.py``: each process trains on half of
    every batch under DistributedDataParallel (gloo), whose averaged gradients are the whole
    batch's: after 8 steps in float64 the test loss and accuracy equal the single-process
    run's. Only the first process reports and writes outputs."""
    import subprocess
    import sys

    flags = ["--epochs", "1", "--train-subset", "512", "--test-subset", "200", "--dtype", "float64", "--no-progress",
             "--data-root", str(DATA_ROOT)]
    single = script.main([*flags, "--out", str(tmp_path / "single")])
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "scripts" / "train_lenet.py"), *flags, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # the first process alone reports
    distributed = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    ours, theirs = single["impls"]["ours"][0], distributed["impls"]["ours"][0]
    assert theirs["test_loss"] == pytest.approx(ours["test_loss"], rel=1e-9)
    assert theirs["test_accuracy"] == ours["test_accuracy"]


@needs_mnist
def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path, monkeypatch, script):
    """Ctrl-C mid-epoch saves a checkpoint; resuming from it reproduces the uninterrupted run.
    In float64 the two impls' loss curves agree to 1e-6."""
    common = ["--epochs", "2", "--train-subset", "640", "--test-subset", "200", "--impl", "both", "--dtype", "float64",
              "--data-root", str(DATA_ROOT), "--no-progress"]
    straight = script.main(common + ["--out", str(tmp_path / "straight")])
    for ours, twin in zip(straight["impls"]["ours"], straight["impls"]["torch"], strict=True):
        torch.testing.assert_close(ours["batch_losses"], twin["batch_losses"], rtol=1e-6, atol=0)

    # Training checks for a stop request after each of the 10 batches of an epoch and after the
    # epoch's checkpoint: the 16th check follows the 5th batch of epoch 2.
    checks = 0
    original_check = script.StopRequested.check

    def ctrl_c_before_check_16(self):
        nonlocal checks
        checks += 1
        self.requested = self.requested or checks == 16
        original_check(self)

    monkeypatch.setattr(script.StopRequested, "check", ctrl_c_before_check_16)
    with pytest.raises(SystemExit) as exit_:
        script.main(common + ["--out", str(tmp_path / "interrupted")])
    assert exit_.value.code == 130
    saved = torch.load(tmp_path / "interrupted" / "checkpoint.pt", weights_only=False)["runs"]
    assert [(run["epoch"], run["step"]) for run in saved.values()] == [(1, 5), (1, 5)]
    monkeypatch.setattr(script.StopRequested, "check", original_check)

    resumed = script.main(common + ["--out", str(tmp_path / "resumed"), "--resume", str(tmp_path / "interrupted" / "checkpoint.pt")])
    for impl in ("ours", "torch"):
        for a, b in zip(resumed["impls"][impl], straight["impls"][impl], strict=True):
            for key in ("train_loss", "test_loss", "test_accuracy", "batch_losses"):
                assert a[key] == b[key], (impl, a["epoch"], key)


@pytest.fixture
def noise_floor_script(script):
    spec = importlib.util.spec_from_file_location("lenet_noise_floor", ROOT / "scripts" / "lenet_noise_floor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noise_floor_perturbs_one_weight_by_one_ulp(noise_floor_script):
    for dtype in (torch.float32, torch.float64):
        model = LeNet5(impl="torch").to(dtype=dtype)
        before = {name: p.clone() for name, p in model.named_parameters()}
        noise_floor_script.one_ulp_higher(model)
        for name, p in model.named_parameters():
            changed = (p != before[name]).nonzero().tolist()
            assert changed == ([[0, 0, 0, 0]] if name == "c1.weight" else []), name
        old, new = before["c1.weight"][0, 0, 0, 0], model.c1.weight[0, 0, 0, 0]
        assert new > old and new == torch.nextafter(old, torch.tensor(float("inf"), dtype=dtype))


@needs_mnist
def test_noise_floor_script_reports_both_gaps(tmp_path, noise_floor_script):
    report = noise_floor_script.main([
        "--seeds", "0", "1", "--epochs", "2", "--train-subset", "640", "--test-subset", "200",
        "--data-root", str(DATA_ROOT), "--out", str(tmp_path), "--no-progress",
    ])
    assert json.loads((tmp_path / "noise_floor.json").read_text())["summary"] == report["summary"]
    for seed in (0, 1):
        accuracies = report["seeds"][seed]
        assert set(accuracies) == {"ours", "twin", "twin_ulp"} and all(len(a) == 2 for a in accuracies.values())
        assert accuracies["twin"][-1] > 30  # they learned (chance: 10 %)
    ours_gaps = [report["seeds"][s]["ours"][-1] - report["seeds"][s]["twin"][-1] for s in (0, 1)]
    assert report["summary"]["ours - twin"]["mean"] == pytest.approx(sum(ours_gaps) / 2)
    assert report["summary"]["ours - twin"]["max_abs"] == pytest.approx(max(map(abs, ours_gaps)))
