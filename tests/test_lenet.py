"""torchconv_impl.models.lenet: architecture and parameter counts, the 1998 C3 table, ours vs
the torch.nn twin (outputs, gradients), and state_dicts and checkpoints, which carry the model
options and load only into a model with the same ones."""
from __future__ import annotations

import io
import itertools
import pathlib
import pickle
import subprocess
import sys

import pytest
import torch
from support import PickledCall, assert_close, no_native_ops

from torchconv_impl import ArgumentError
from torchconv_impl.models import LeNet5
from torchconv_impl.models.lenet import c3_connection_table, num_trainable_parameters

OPTIONS = [
    dict(activation=a, pooling=p, c3_connections=c)
    for a, p, c in itertools.product(("tanh", "relu"), ("avg", "max"), ("lecun1998", "full"))
]

# LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document recognition"
# (Proc. IEEE, 1998), Table I: the S2 feature maps that each C3 feature map combines.
PAPER_C3_INPUTS = {
    0: {0, 1, 2}, 1: {1, 2, 3}, 2: {2, 3, 4}, 3: {3, 4, 5}, 4: {4, 5, 0}, 5: {5, 0, 1},
    6: {0, 1, 2, 3}, 7: {1, 2, 3, 4}, 8: {2, 3, 4, 5}, 9: {3, 4, 5, 0}, 10: {4, 5, 0, 1}, 11: {5, 0, 1, 2},
    12: {0, 1, 3, 4}, 13: {1, 2, 4, 5}, 14: {0, 2, 3, 5},
    15: {0, 1, 2, 3, 4, 5},
}


def test_the_package_brings_models_and_explain():
    """``import torchconv_impl`` alone makes torchconv_impl.models and torchconv_impl.explain
    available (a fresh interpreter: in this one the tests have imported them already)."""
    code = "import torchconv_impl as t; print(t.models.LeNet5.__name__, t.explain.conv_matrix.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["LeNet5", "conv_matrix"]


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


def test_c3_table_is_the_papers():
    table = c3_connection_table("lecun1998")  # (C3 maps, S2 maps)
    assert table.shape == (16, 6) and table.dtype == torch.bool
    assert {o: {c for c in range(6) if table[o, c]} for o in range(16)} == PAPER_C3_INPUTS
    assert int(table.sum()) == 60
    assert c3_connection_table("full") is None


@pytest.mark.parametrize("impl", ["ours", "torch"])
def test_c3_weights_follow_the_table(impl):
    """The table is what C3 computes with: a C3 map changes with exactly the S2 maps it lists."""
    c3 = LeNet5(impl=impl).double().c3
    x = torch.randn(1, 6, 14, 14, dtype=torch.float64)
    for s2 in range(6):
        bumped = x.clone()
        bumped[0, s2] += 1
        changed = (c3(bumped) - c3(x)).abs().amax(dim=(0, 2, 3)) > 0
        assert {o for o in range(16) if changed[o]} == {o for o, inputs in PAPER_C3_INPUTS.items() if s2 in inputs}, s2


def test_bad_options():
    with pytest.raises(ArgumentError, match="expected activation to be one of"):
        LeNet5(activation="sigmoid")
    with pytest.raises(ArgumentError, match="expected pooling to be one of"):
        LeNet5(pooling="lp")
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


# -------------------------------------------------------------------- state_dicts, checkpoints

def _saved(obj) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("source", ["ours", "torch"])
def test_state_dict_round_trip_across_impls(source):
    model = LeNet5(activation="relu", pooling="max", impl=source)
    other = LeNet5(activation="relu", pooling="max", impl="torch" if source == "ours" else "ours")
    other.load_state_dict(torch.load(_saved(model.state_dict()), weights_only=True))
    x = torch.randn(4, 1, 32, 32)
    assert_close(other(x), model(x))
    assert torch.equal(other.c3.connection_table, model.c3.connection_table)


@pytest.mark.parametrize("impl", ["ours", "torch"])
@pytest.mark.parametrize("option, value, other", [
    ("activation", "relu", "tanh"), ("pooling", "max", "avg"), ("c3_connections", "lecun1998", "full")])
def test_state_dict_of_other_options_is_refused(impl, option, value, other):
    """A state_dict carries its model's options; one of a model with other options (the
    training recipe's ReLU and max pooling into LeNet5()'s tanh and average pooling, say,
    whose tensors all fit) raises, naming both, and leaves the weights untouched."""
    trained = LeNet5(**{option: value})
    model = LeNet5(**{option: other}, impl=impl)
    before = {name: t.clone() for name, t in model.state_dict().items() if isinstance(t, torch.Tensor)}
    with pytest.raises(RuntimeError, match=f"state_dict is of a LeNet5 with .*{option}={value!r}.*this model has .*{option}={other!r}"):
        model.load_state_dict(trained.state_dict())
    for name, tensor in model.state_dict().items():
        if isinstance(tensor, torch.Tensor):
            assert torch.equal(tensor, before[name]), name


def test_state_dict_without_options_is_refused():
    state = LeNet5().state_dict()
    del state["_extra_state"]
    with pytest.raises(RuntimeError, match="Missing key.*_extra_state"):
        LeNet5().load_state_dict(state)


@pytest.mark.parametrize("impl", ["ours", "torch"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["state_dict", "training-checkpoint"])
def test_from_checkpoint_builds_the_saved_model(tmp_path, impl, wrapped):
    """From a file holding a state_dict or a training checkpoint ({"model": state_dict, ...}),
    from_checkpoint builds the saved options in the saved dtype, with the saved weights."""
    saved = LeNet5(activation="relu", pooling="max", c3_connections="full").double()
    state = saved.state_dict()
    torch.save(dict(model=state, runs={}) if wrapped else state, tmp_path / "checkpoint.pt")
    model = LeNet5.from_checkpoint(tmp_path / "checkpoint.pt", impl=impl)
    assert model.options == saved.options and model.impl == impl
    assert model.c1.weight.dtype == torch.float64
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    assert_close(model(x), saved(x))


def test_from_checkpoint_of_something_else():
    with pytest.raises(RuntimeError, match="expected a LeNet5 state_dict"):
        LeNet5.from_checkpoint(_saved(torch.nn.Linear(2, 2).state_dict()))



def test_from_checkpoint_refuses_a_pickled_callable(tmp_path):
    marker = tmp_path / "ran"
    torch.save(dict(model=LeNet5().state_dict(), payload=PickledCall(marker)), tmp_path / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global"):
        LeNet5.from_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)  # what from_checkpoint must not do
    assert marker.exists()
