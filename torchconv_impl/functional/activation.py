"""relu, relu_, sigmoid and tanh with torch.nn.functional's signatures."""
from __future__ import annotations

import torch

from .. import backends
from ..autograd.activation import ReLU, Sigmoid, Tanh
from ..errors import ArgumentNotImplementedError, check
from ._checks import check_tensor

__all__ = ["relu", "relu_", "sigmoid", "tanh"]


def _relu(input, inplace: bool, op: str):
    check_tensor(input, "input", op)
    check(
        input.dtype != torch.bool and not input.is_complex(),
        lambda: f"{op}: expected input to have a real, non-bool dtype, got {input.dtype}",
        ArgumentNotImplementedError,
    )
    return ReLU.apply(input, inplace, backends.resolve(input))


def relu(input, inplace=False):
    """max(x, 0) element-wise; ``inplace`` overwrites ``input``. See ``torch.nn.functional.relu``."""
    return _relu(input, bool(inplace), "relu")


def relu_(input):
    """In-place ``relu``."""
    return _relu(input, True, "relu_")


def sigmoid(input):
    """1 / (1 + e⁻ˣ) element-wise. See ``torch.nn.functional.sigmoid``."""
    check_tensor(input, "input", "sigmoid")
    return Sigmoid.apply(input)


def tanh(input):
    """tanh x element-wise. See ``torch.nn.functional.tanh``."""
    check_tensor(input, "input", "tanh")
    return Tanh.apply(input)
