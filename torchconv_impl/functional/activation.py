"""relu, relu_, sigmoid and tanh with torch.nn.functional's signatures."""
from __future__ import annotations

import torch

from .. import backends
from .._geometry import check
from ..autograd.activation import ReLU, Sigmoid, Tanh

__all__ = ["relu", "relu_", "sigmoid", "tanh"]


def _check_input(input, op: str) -> None:
    check(isinstance(input, torch.Tensor), lambda: f"{op}: expected input to be a Tensor, got {type(input).__name__}")


def relu(input, inplace=False):
    """max(x, 0) element-wise; ``inplace`` overwrites ``input``. See ``torch.nn.functional.relu``."""
    _check_input(input, "relu")
    check(input.dtype != torch.bool, "relu: expected a numeric input, got a bool tensor")
    return ReLU.apply(input, bool(inplace), backends.resolve(input))


def relu_(input):
    """In-place ``relu``."""
    return relu(input, inplace=True)


def sigmoid(input):
    """1 / (1 + e⁻ˣ) element-wise. See ``torch.nn.functional.sigmoid``."""
    _check_input(input, "sigmoid")
    return Sigmoid.apply(input)


def tanh(input):
    """tanh x element-wise. See ``torch.nn.functional.tanh``."""
    _check_input(input, "tanh")
    return Tanh.apply(input)
