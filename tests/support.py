"""What every test file shares: the device, tolerances per dtype (stated here only), the
backends to run, comparison against the torch oracle, the no-native-ops dispatch check, and a
call recorder for tests that must show which code path ran."""
from __future__ import annotations

import contextlib
import inspect
import re

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# Ours vs torch on the same inputs, same dtype.
TOLERANCES = {
    torch.float64: dict(rtol=1e-7, atol=1e-7),
    torch.complex128: dict(rtol=1e-7, atol=1e-7),
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.bfloat16: dict(rtol=2e-2, atol=2e-2),  # compared with a float32 reference
    torch.float16: dict(rtol=2e-3, atol=2e-3),  # compared with a float32 reference
}

# The reference backend and the CPU engine run everywhere; the Triton backend runs the full
# suite on a GPU (on CPU it is exercised in interpreter mode by test_triton.py's small shapes).
# conftest.py turns this list into the `backend` fixture.
BACKENDS = [
    "reference",
    "cpu",
    pytest.param("triton", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="full Triton suite needs a GPU")),
]


def assert_close(actual, expected, dtype=None, msg=""):
    dtype = dtype or expected.dtype
    torch.testing.assert_close(actual.to(expected.dtype), expected, **TOLERANCES[dtype], msg=msg or None)


def grads(output, inputs, grad_output):
    """Gradients of ⟨output, grad_output⟩ w.r.t. each input that requires grad (None otherwise)."""
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    found = iter(torch.autograd.grad(output, wanted, grad_output, allow_unused=True))
    return [next(found) if t is not None and t.requires_grad else None for t in inputs]


# aten ops the implementation must never dispatch: convolution, pooling, im2col/col2im and
# the cuDNN/oneDNN/MIOpen kernels behind them ("convert" ops are fine). Our own operators
# (namespace torchconv) are recorded too, and what runs inside them is checked in turn.
FORBIDDEN_OPS = re.compile(r"conv(?!ert)|pool|im2col|col2im|cudnn|mkldnn|miopen")


class NoNativeOps(TorchDispatchMode):
    """Records every aten op dispatched (``ops``); ``forbidden`` lists those matching FORBIDDEN_OPS."""

    def __init__(self):
        super().__init__()
        self.ops, self.forbidden = [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops.append(name)
        if func.namespace != "torchconv" and FORBIDDEN_OPS.search(name):
            self.forbidden.append(name)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def no_native_ops():
    """``with no_native_ops(): ...`` fails the test if any forbidden aten op ran inside."""
    mode = NoNativeOps()
    with mode:
        yield mode
    assert not mode.forbidden, f"native conv/pool ops dispatched: {sorted(set(mode.forbidden))}"


def record_calls(monkeypatch, owner, name: str) -> list:
    """Wraps ``owner.name`` (a function or staticmethod) for the test: each call is answered by
    the original and recorded as (args, kwargs, result). Returns the list of records."""
    calls, original = [], getattr(owner, name)

    def recorded(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    monkeypatch.setattr(owner, name, staticmethod(recorded) if static else recorded)
    return calls
