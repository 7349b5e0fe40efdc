"""The backend seam: which code computes the core operations.

A backend is a module that implements some of the operations registered in
``torchconv_impl.ops`` (the autograd Functions never do arithmetic of their own; they call
those operators, whose real implementation calls the backend's function of the same name)::

    conv_forward(input, weight, bias, geometry, activation) -> y        y = x ⋆ W + b (ReLU'd)
    conv_input_grad(grad_output, weight, input_size, bias, geometry)    dX = δ ⋆ᵀ W (+ b)
    conv_weight_grad(input, grad_output, kernel_size, geometry)         dW = x ⋆ δ
    max_pool_forward(input, geometry) -> (y, indices)                   y[p] = max over window p
    adaptive_max_pool_forward(input, output_size) -> (y, indices)       … over adaptive windows
    max_pool_backward(grad_output, indices, input_size, windows)        dX = Σ_p δ[p] at indices[p] (scatter-add)
    max_unpool_forward(input, indices, output_size)                     z[indices[p]] = x[p], else 0
    max_unpool_backward(grad_output, indices)                           dX[p] = δ[indices[p]] (gather)
    avg_pool_forward(input, geometry, count_include_pad, divisor_override)            y[p] = Σ_window x_pad / divisor[p]
    avg_pool_backward(grad_output, input_size, geometry, count_include_pad, divisor_override)   its adjoint
    adaptive_avg_pool_forward(input, output_size) / adaptive_avg_pool_backward(grad_output, input_size)
    relu_input_grad(grad_output, output)                                dX = where(y ≤ 0, 0, δ)

Conventions every backend keeps:

* tensors are batched, (N, C, *S) in and (N, C, *P) out (functional adds the batch dim), in
  any memory layout; results may be in any layout (the operators lay them out as torch does);
* geometry is a ``ConvGeometry`` or ``PoolGeometry`` (``torchconv_impl._geometry``); every
  argument has been checked by ``torchconv_impl.functional``;
* max pooling's ``indices`` are int64, shaped like its output, and hold torch's index: the
  flat position in the input plane, Σ_d s_d·∏_{e>d} S_e, of the first maximum in window scan
  order (row-major over kernel offsets), or of the last NaN; padding never wins (an all −∞
  window gives its first in-bounds element). ``max_pool_backward``'s ``windows`` says where
  they came from — the ``PoolGeometry``, ``"adaptive"``, or None (any indices: max
  unpooling's adjoint) — for a backend that gathers rather than scatters;
* max pooling and unpooling also take integer inputs, average pooling int64 (truncating, as
  torch does), convolution integers and complex numbers; integers need no gradient.

Backends:

* ``"reference"``: the seeds' formulas as plain tensor code, written to be read — im2col as a
  view, one matrix product, pooling by window views; no caches, no tricks. Any device.
* ``"cpu"``: the tuned engine — the same results by every trick that pays on a CPU (scratch
  buffers, batch chunks, plane-span columns, float masks). Plain tensor ops too, so it runs
  on any device, and it serves what the Triton backend lacks.
* ``"triton"``: GPU kernels in ``triton_kernels`` (implicit GEMM, pooling, fused epilogues).

``"auto"`` picks Triton for CUDA tensors when Triton is installed, the CPU engine otherwise.
An operation a backend lacks falls back to the CPU engine.

The selection is resolved once per forward call, into the name the operators receive, so
the backward of that call uses the same backend. ``set_backend`` (or the environment
variable ``TORCHCONV_BACKEND``) sets the process default; ``use_backend`` overrides it for
the current thread only, as ``torch.no_grad`` does. Both are plain attributes that
``torch.compile`` guards on: a compiled function recompiles when the selection changes.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import threading
from types import ModuleType

import torch

from ..errors import ArgumentError

_MODULES = {name: f"torchconv_impl.backends.{name}" for name in ("reference", "cpu", "triton")}
NAMES = ("auto", *_MODULES)
# Whether Triton is installed, found without importing it (that takes seconds).
TRITON_INSTALLED = importlib.util.find_spec("triton") is not None


class _Selection:
    def __init__(self, name: str | None):
        self.name = name


class _ThreadSelection(threading.local):
    # Set in __init__, which runs once per thread: an instance attribute is what
    # torch.compile's guards read in the calling thread (a class attribute would not be).
    def __init__(self):
        self.name = None  # None: the process default


_process = _Selection("auto")
_thread = _ThreadSelection()


def _validate(name: str) -> str:
    if name not in NAMES:
        raise ArgumentError(f"backend must be one of {NAMES}, got {name!r}")
    return name


def set_backend(name: str) -> None:
    """Select the process-wide default backend: 'auto', 'reference', 'cpu' or 'triton'."""
    _process.name = _validate(name)


def get_backend() -> str:
    """The backend selected in this thread ('auto' unless changed)."""
    return _thread.name or _process.name


@contextlib.contextmanager
def use_backend(name: str):
    """``with use_backend("reference"): ...`` selects a backend for the block, in this thread only."""
    previous = _thread.name
    _thread.name = _validate(name)
    try:
        yield
    finally:
        _thread.name = previous


def resolve(tensor: torch.Tensor) -> str:
    """The name of the backend that serves ``tensor`` under this thread's selection."""
    name = _thread.name or _process.name
    if name == "auto":
        name = "triton" if tensor.is_cuda and TRITON_INSTALLED else "cpu"
    return name


_LOADED: dict[str, ModuleType] = {}


def load(name: str) -> ModuleType:
    """The backend module ``name``, imported on first use (Triton's import takes seconds)."""
    module = _LOADED.get(name)
    if module is None:
        module = _LOADED[name] = importlib.import_module(_MODULES[name])
    return module


def implementation(backend: str, operation: str):
    """``backend``'s function for ``operation``, else the CPU engine's."""
    found = getattr(load(backend), operation, None)
    return found if found is not None else getattr(load("cpu"), operation)


if "TORCHCONV_BACKEND" in os.environ:
    set_backend(os.environ["TORCHCONV_BACKEND"])
