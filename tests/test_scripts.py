"""The scripts' command lines, run as subprocesses: every default in --help, bad flags and paths
ending in argparse's one-line error (exit 2, no traceback), bench.py's case selection, and
train_lenet.py under torchrun on real MNIST."""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import torch
from support import PickledCall

from torchconv_impl import training

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA_ROOT = pathlib.Path(os.environ.get("TORCHCONV_DATA") or "./data").resolve()
# This checkout's package, whatever is installed; one thread, as on a shared CPU.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))), "OMP_NUM_THREADS": "1"}


def run(script: str, *args: str, cwd=ROOT, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=timeout)


def assert_one_line_error(done: subprocess.CompletedProcess, script: str, message: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    error = done.stderr.rstrip("\n").splitlines()[-1]
    assert done.stderr.startswith("usage: ") and error.startswith(f"{script}: error: "), done.stderr
    assert re.search(message, error), error


@pytest.mark.parametrize("script", ["train_lenet.py", "lenet_noise_floor.py", "bench.py"])
def test_help_shows_every_default(script):
    """Every option's help says its default: argparse's "(default: …)", or for an option with
    none, what happens without it."""
    done = run(script, "--help")
    assert done.returncode == 0, done.stderr
    options = re.split(r"\n  (?=-)", done.stdout.split("\noptions:\n", 1)[1])
    assert len(options) > 5
    for option in options:
        if not option.strip().startswith("-h, --help"):
            assert "default:" in " ".join(option.split()), option
    if script == "bench.py":
        assert re.search(r"--threads THREADS .*\(default: 1\)", " ".join(done.stdout.split()))


@pytest.mark.parametrize("args, message", [
    (["--resume", "missing.pt"], "--resume: no such file: missing.pt$"),
    (["--lr", "-1"], "--lr must be positive, got -1.0$"),
])
def test_train_lenet_bad_flags(args, message):
    assert_one_line_error(run("train_lenet.py", *args), "train_lenet.py", message)


def test_train_lenet_data_root_too_deep_names_the_root_meant(tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in training.MNIST_FILES:
        (raw / name).touch()
    done = run("train_lenet.py", "--data-root", str(tmp_path / "data" / "MNIST"), "--out", str(tmp_path / "out"))
    assert_one_line_error(done, "train_lenet.py", f"--data-root: .* is too deep: .*, here {re.escape(str(tmp_path / 'data'))}$")
    assert not (tmp_path / "out").exists()



def test_train_lenet_refuses_a_checkpoint_with_a_pickled_callable(tmp_path):
    marker = tmp_path / "ran"
    torch.save(dict(recipe={}, model={}, runs={}, payload=PickledCall(marker)), tmp_path / "checkpoint.pt")
    done = run("train_lenet.py", "--resume", str(tmp_path / "checkpoint.pt"))
    assert_one_line_error(done, "train_lenet.py", r"refused: it holds more than tensors and plain containers \(.*\)")
    assert not marker.exists()


def test_noise_floor_bad_flag():
    assert_one_line_error(run("lenet_noise_floor.py", "--batch-size", "0"), "lenet_noise_floor.py", "--batch-size must be positive")


def test_bench_bad_case_and_backend():
    done = run("bench.py", "--only", "no such case")
    assert_one_line_error(done, "bench.py", "--only 'no such case' matches no cpu case; the cases are: LeNet C1 .*; LeNet-5 whole net b64")
    done = run("bench.py", "--backend", "cuda")
    assert_one_line_error(done, "bench.py", r"argument --backend: invalid choice: 'cuda' \(choose from .*'reference', 'cpu', 'triton'\)")
    done = run("bench.py", "--no-layers")
    assert_one_line_error(done, "bench.py", "--no-layers leaves nothing to run without --compile, --networks or --floors")
    done = run("bench.py", "--floors", "--device", "cuda")
    assert_one_line_error(done, "bench.py", "--floors times the CPU engine's floors: it runs with --device cpu")


def test_bench_floors_table():
    """Each floor layer printed once, with its kind of floor and five positive figures."""
    done = run("bench.py", "--floors", "--no-layers", "--repeats", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    header = next(i for i, line in enumerate(done.stdout.splitlines()) if line.startswith("layer (forward)"))
    rows = done.stdout.splitlines()[header + 1:]
    assert [row.split("  ")[0] for row in rows] == [
        "resnet18 3×3 64→64 28² b8", "LeNet C3 6→16 5×5 14² b64", "mobilenet_v2 depthwise 3×3 144ch 28² b8",
        "mobilenet_v2 depthwise 3×3 960ch 4² b8", "1×1 2→2 4² b2 (a call's own cost)",
    ], done.stdout
    for row, what in zip(rows, ["one BLAS product", "one BLAS product", "9 multiply-add passes", "9 multiply-add passes", "the engine's function"]):
        assert what in row and all(float(figure) > 0 for figure in row.split()[-5:]), row


def test_bench_only_matches_any_case(tmp_path):
    done = run("bench.py", "--only", "lenet c5", "--repeats", "1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {row["case"] for row in rows} == {"LeNet C5 16→120 5×5 5² b64"}
    assert (tmp_path / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_only_filters_the_network_table():
    done = run("bench.py", "--networks", "--no-layers", "--only", "lenet")  # a word's start: not mobilenet_v2
    assert done.returncode == 0, done.stderr[-3000:]
    timed = [line.split("  ")[0] for line in done.stdout.splitlines() if "step" in line or "inference" in line]
    assert timed == ["LeNet-5 training step b64"], done.stdout


@pytest.mark.skipif(not training.data.has_mnist(DATA_ROOT / "MNIST" / "raw"), reason=f"real MNIST not found under {DATA_ROOT}/MNIST/raw")
def test_torchrun_two_processes_match_one(tmp_path):
    """``torchrun --nproc_per_node 2 scripts/train_lenet.py``: each process trains on half of
    every batch under DistributedDataParallel (gloo), whose averaged gradients are the whole
    batch's: after 8 steps in float64 the test loss and accuracy equal the single-process
    run's. Only the first process reports and writes outputs."""
    single = training.train(training.Recipe(epochs=1), DATA_ROOT, tmp_path / "single", dtype=torch.float64,
                            train_subset=512, test_subset=200, progress=False)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "scripts" / "train_lenet.py"), "--epochs", "1", "--train-subset", "512", "--test-subset", "200",
               "--dtype", "float64", "--no-progress", "--data-root", str(DATA_ROOT), "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # the first process alone reports
    distributed = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    ours, theirs = single["impls"]["ours"][0], distributed["impls"]["ours"][0]
    assert theirs["test_loss"] == pytest.approx(ours["test_loss"], rel=1e-9)
    assert theirs["test_accuracy"] == ours["test_accuracy"]


def test_gpu_check_dry_run(tmp_path):
    """scripts/gpu_check.sh's stages, run tiny on CPU (DRY_RUN=1): each reports how it ended,
    each benchmark leaves its JSON, CSV and plot, and the whole stays inside its budget."""
    out = tmp_path / "gpu_check"
    env = {**os.environ, "DRY_RUN": "1", "OUT": str(out), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (out / "summary.txt").read_text()
    for stage in ("tests", "bench-bfloat16-channels-last", "bench-float16-channels-last", "bench-float32"):
        assert f"{stage}: passed" in summary, summary
        if stage != "tests":
            assert {"results.json", "results.csv", "ratios.png"} <= {p.name for p in (out / stage).iterdir()}
    assert re.search(r"total: \d+ s of a 480 s budget", summary)
