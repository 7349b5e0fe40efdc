"""The backend seam: which code computes the core operations.

A backend is a module that implements some of these functions (the autograd Functions
never do arithmetic on their own, they call these):

    conv_forward(input, weight, bias, geometry)                    y = x ⋆ W + b
    conv_input_grad(grad_output, weight, input_size, bias, geometry)  dX = δ ⋆ᵀ W (+ b)
    conv_weight_grad(input, grad_output, kernel_size, geometry)    dW = x ⋆ δ
    max_pool_forward / max_pool_backward / avg_pool_forward / avg_pool_backward / ...

Backends: ``"reference"`` (plain tensor ops, any device; the readable statement of each
algorithm) and ``"triton"`` (GPU kernels in ``torchconv_impl.triton_kernels``). ``"auto"``
picks Triton for CUDA tensors when Triton is installed, the reference backend otherwise.
An operation a backend lacks falls back to the reference backend.

The choice is process-wide (``set_backend``, ``use_backend``, env ``TORCHCONV_BACKEND``) and
is resolved once per forward call; the backward of that call uses the same backend.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from types import ModuleType

import torch

from .._geometry import ArgumentError

_MODULES = {"reference": "torchconv_impl.backends.reference", "triton": "torchconv_impl.backends.triton"}
NAMES = ("auto", *_MODULES)
_current = "auto"


def _validate(name: str) -> str:
    if name not in NAMES:
        raise ArgumentError(f"backend must be one of {NAMES}, got {name!r}")
    return name


def set_backend(name: str) -> None:
    """Select the backend for all later calls: 'auto', 'reference' or 'triton'."""
    global _current
    _current = _validate(name)


def get_backend() -> str:
    """The selected backend's name ('auto' unless changed)."""
    return _current


@contextlib.contextmanager
def use_backend(name: str):
    """``with use_backend("reference"): ...`` selects a backend for the block."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def load(name: str) -> ModuleType:
    return importlib.import_module(_MODULES[name])


def triton_available() -> bool:
    try:
        importlib.import_module("triton")
    except ImportError:
        return False
    return True


def resolve(tensor: torch.Tensor) -> ModuleType:
    """The backend module that serves ``tensor`` under the current selection."""
    name = _current
    if name == "auto":
        name = "triton" if tensor.is_cuda and triton_available() else "reference"
    return load(name)


def op(backend: ModuleType, name: str):
    """``backend``'s implementation of operation ``name``, else the reference one."""
    found = getattr(backend, name, None)
    return found if found is not None else getattr(load("reference"), name)


if "TORCHCONV_BACKEND" in os.environ:
    set_backend(os.environ["TORCHCONV_BACKEND"])
