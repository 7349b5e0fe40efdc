"""relu, sigmoid and tanh (functional, in-place and modules) against torch: outputs and every
gradient, complex inputs, NaN and non-finite δ at ReLU's zeros, float64 gradcheck/gradgradcheck,
in-place errors, and argument errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck, gradgradcheck

import torchconv_impl
import torchconv_impl.functional as F
import torchconv_impl.nn as ours
from support import DEVICE, DTYPES, TORCH_REJECTS, check_against_torch, grads, leaf, module_pair


ACTIVATIONS = [
    pytest.param(F.relu, TF.relu, ours.ReLU, torch.nn.ReLU, id="relu"),
    pytest.param(F.sigmoid, torch.sigmoid, ours.Sigmoid, torch.nn.Sigmoid, id="sigmoid"),
    pytest.param(F.tanh, torch.tanh, ours.Tanh, torch.nn.Tanh, id="tanh"),
]


def activation_input(dtype):
    """Random values plus exact zeros (ReLU's gradient there is 0) and saturating ±30."""
    values = torch.randn(4, 6, dtype=dtype, device=DEVICE)
    values[0, :4] = torch.tensor([0.0, -0.0, 30.0, -30.0])
    return values.requires_grad_()


@pytest.mark.parametrize("ours_fn, torch_fn", [(F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh)], ids=["sigmoid", "tanh"])
def test_complex_activation_gradients_like_torch(ours_fn, torch_fn):
    """torch accepts complex input; the gradient is the conjugate Wirtinger derivative
    δ·conj(f′), which gradcheck checks, and torch's."""
    z = torch.randn(3, 4, dtype=torch.complex128, device=DEVICE).requires_grad_()
    check_against_torch(ours_fn, torch_fn, z)
    assert gradcheck(ours_fn, (z,)) and gradgradcheck(ours_fn, (z,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours_fn, torch_fn, ours_cls, torch_cls", ACTIVATIONS)
def test_activation_matches_torch(ours_fn, torch_fn, ours_cls, torch_cls, dtype):
    check_against_torch(ours_fn, torch_fn, activation_input(dtype))
    check_against_torch(*module_pair(ours_cls, torch_cls), activation_input(dtype))


@pytest.mark.parametrize("ours_fn, torch_fn, ours_cls, torch_cls", ACTIVATIONS)
def test_activation_gradcheck(ours_fn, torch_fn, ours_cls, torch_cls):
    input = torch.randn(3, 4, dtype=torch.float64, device=DEVICE)
    input = (input + 0.1 * input.sign()).requires_grad_()  # away from ReLU's kink
    assert gradcheck(ours_fn, (input,))
    assert gradgradcheck(ours_fn, (input,))


def test_relu_nan_passes_gradient_like_torch():
    input = torch.tensor([float("nan"), -1.0, 2.0], device=DEVICE, requires_grad=True)
    grad_output = torch.tensor([3.0, 4.0, 5.0], device=DEVICE)
    for fn in (F.relu, TF.relu):
        output = fn(input)
        torch.testing.assert_close(output, torch.tensor([float("nan"), 0.0, 2.0], device=DEVICE), equal_nan=True)
        assert torch.equal(grads(output, [input], grad_output)[0], torch.tensor([3.0, 0.0, 5.0], device=DEVICE))


def test_relu_blocks_non_finite_gradient_like_torch():
    """Where y ≤ 0 the input gradient is exactly 0, even for δ = ±inf or NaN, as torch's."""
    input = torch.tensor([[-1.0, 0.0, -0.0, 2.0, float("nan"), -3.0]], device=DEVICE, requires_grad=True)
    for special in (float("inf"), -float("inf"), float("nan")):
        grad_output = torch.tensor([[special, special, 1.0, special, -2.0, -1.0]], device=DEVICE)
        expected = grads(F.relu(input), [input], grad_output)[0]
        actual = grads(TF.relu(input), [input], grad_output)[0]
        torch.testing.assert_close(actual, expected, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("inplace_fn", [lambda x: F.relu(x, inplace=True), F.relu_, ours.ReLU(inplace=True)], ids=["relu", "relu_", "ReLU"])
def test_relu_inplace_matches_torch(inplace_fn):
    input = activation_input(torch.float64)
    target = input * 2  # a non-leaf to overwrite
    output = inplace_fn(target)
    assert output is target
    expected = TF.relu(input * 2, inplace=True)
    assert torch.equal(output, expected)
    grad_output = torch.randn_like(expected)
    assert torch.equal(grads(output, [input], grad_output)[0], grads(expected, [input], grad_output)[0])


def test_relu_inplace_errors_like_torch():
    """An in-place ReLU of a leaf that requires grad is refused; a saved output changed later is detected."""
    input = leaf(3)
    for fn in (F.relu_, torch.relu_):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            fn(input)
    for fn in (F.relu, TF.relu):
        output = fn(input * 1)
        output.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            output.sum().backward()


def test_relu_rejects_bool():
    with pytest.raises(TORCH_REJECTS):
        TF.relu(torch.ones(2, dtype=torch.bool))
    with pytest.raises(torchconv_impl.ArgumentError, match="bool"):
        F.relu(torch.ones(2, dtype=torch.bool))
