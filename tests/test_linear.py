"""linear and Linear against torch.nn.functional and torch.nn: outputs and every gradient over
bias shapes, batch shapes and zero features, float64 gradcheck/gradgradcheck, and argument errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck, gradgradcheck

import torchconv_impl
import torchconv_impl.functional as F
import torchconv_impl.nn as ours
from support import DEVICE, DTYPES, TORCH_REJECTS, check_against_torch, leaf, module_pair


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias_shape", [None, (4,), (1,), ()], ids=["nobias", "bias", "bias1", "bias0d"])
@pytest.mark.parametrize("input_shape", [(5,), (3, 5), (2, 3, 5), (0, 5)], ids=str)
def test_linear_matches_torch(input_shape, bias_shape, dtype):
    input, weight = leaf(*input_shape, dtype=dtype), leaf(4, 5, dtype=dtype)
    bias = None if bias_shape is None else leaf(*bias_shape, dtype=dtype)
    check_against_torch(F.linear, TF.linear, input, weight, bias)


@pytest.mark.parametrize("in_features, out_features", [(0, 4), (5, 0), (0, 0)])
@pytest.mark.parametrize("leading", [(), (3,), (2, 3)], ids=str)
def test_linear_zero_features(leading, in_features, out_features):
    """No input or no output features, as torch allows: every gradient (they were a reshape error)."""
    check_against_torch(F.linear, TF.linear, leaf(*leading, in_features), leaf(out_features, in_features), leaf(out_features))


@pytest.mark.parametrize("input_shape", [(5,), (3, 5)], ids=str)
def test_linear_vector_weight_matches_torch(input_shape):
    """A 1-D weight (in_features,) gives one output that is not kept as a dimension."""
    check_against_torch(F.linear, TF.linear, leaf(*input_shape), leaf(5))
    # torch rejects a bias with a 1-D weight and a 2-D input; ours adds it to the output.
    bias = leaf(*input_shape[:-1])
    check_against_torch(F.linear, lambda x, w, b: TF.linear(x, w) + b, leaf(*input_shape), leaf(5), bias)


@pytest.mark.parametrize("input_shape", [(5,), (2, 3, 5)], ids=str)
def test_linear_gradcheck(input_shape):
    inputs = (leaf(*input_shape), leaf(4, 5), leaf(4))
    assert gradcheck(F.linear, inputs)
    assert gradgradcheck(F.linear, inputs)


def test_linear_module_matches_torch():
    check_against_torch(*module_pair(ours.Linear, torch.nn.Linear, 5, 4), leaf(2, 3, 5, dtype=torch.float32))


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((3, 4), (2, 5), None), r"in_features=5"),
        (((), (2, 5), None), r"at least 1-D"),
        (((3, 5), (2, 5, 1), None), r"weight to be 2-D"),
        (((3, 5), (2, 5), (3,)), r"bias to broadcast to the output size \[3, 2\]"),
        (((5,), (2, 5), (2, 1, 2)), r"bias to broadcast"),
    ],
)
def test_linear_errors(shapes, match):
    args = [None if s is None else torch.randn(s, device=DEVICE) for s in shapes]
    with pytest.raises(TORCH_REJECTS):
        TF.linear(*args)
    with pytest.raises(torchconv_impl.ArgumentError, match=match):
        F.linear(*args)


def test_linear_dtype_mismatch():
    with pytest.raises(torchconv_impl.ArgumentError, match=r"weight to have the same dtype as input"):
        F.linear(torch.randn(3, 5, device=DEVICE), torch.randn(2, 5, device=DEVICE, dtype=torch.float64))
