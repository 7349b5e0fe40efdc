"""What every test file shares: the device, tolerances per dtype (stated here only), the
backends to run, the comparison of ours against the torch oracle (check_against_torch), the
no-native-ops dispatch check, and a call recorder for tests that must show which code path ran."""
from __future__ import annotations

import contextlib
import inspect
import pathlib
import re
from typing import NamedTuple

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

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]

# What torch raises for bad arguments, where the tests only confirm that torch refuses a call too.
TORCH_REJECTS = (RuntimeError, ValueError, IndexError, NotImplementedError)

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


def torch_conv_follows_memory_format(input) -> bool:
    """Whether torch's convolution of ``input`` gives an output in its memory format, as ours
    always do: its CPU fallback for float64 3-d convolutions (slow_conv3d) ignores memory
    formats, its float32 and cuDNN kernels follow them. (For check_against_torch's ``layout``.)"""
    return not (input.dim() == 5 and input.dtype == torch.float64 and input.device.type == "cpu")


def leaf(*shape, dtype=torch.float64):
    """A random normal tensor on DEVICE that requires grad."""
    return torch.randn(shape, dtype=dtype, device=DEVICE, requires_grad=True)


def module_pair(ours_cls, torch_cls, *args, **kwargs):
    """Our module and torch's, built with the same arguments from the same seed, on DEVICE; they
    must be the same kind of module with the same repr and the same initial state_dict."""
    torch.manual_seed(0)
    ours = ours_cls(*args, **kwargs).to(DEVICE)
    torch.manual_seed(0)
    theirs = torch_cls(*args, **kwargs).to(DEVICE)
    assert isinstance(ours, torch_cls) and repr(ours) == repr(theirs)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for (name, ours_tensor), (_, torch_tensor) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert torch.equal(ours_tensor, torch_tensor), name
    return ours, theirs


def grads(output, inputs, grad_output):
    """Gradients of ⟨output, grad_output⟩ w.r.t. each input that requires grad (None otherwise)."""
    wanted = [t for t in inputs if _requires_grad(t)]
    found = iter(torch.autograd.grad(output, wanted, grad_output, allow_unused=True))
    return [next(found) if _requires_grad(t) else None for t in inputs]


def _requires_grad(value) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


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


class Comparison(NamedTuple):
    """What check_against_torch compared, ours beside torch's: the outputs (always tuples) and
    the gradients (inputs in order, then parameters; None where nothing was differentiated)."""

    actual: tuple
    expected: tuple
    actual_grads: list
    expected_grads: list


def check_against_torch(ours, theirs, *inputs, grad_output=None, reference_dtype=None, exact=False, layout=True, msg="",
                        **kwargs):
    """Runs ``ours(*inputs, **kwargs)`` and the oracle ``theirs(*inputs, **kwargs)``, each on its
    own autograd leaves over the same tensors (same values, same strides, same requires_grad),
    and asserts that ours matches torch's in

    - the output: a tensor or a tuple (values and indices), with the same shape and dtype, values
      within TOLERANCES (integer outputs, and all outputs when ``exact``, equal; NaN where torch
      has NaN), and the same requires_grad;
    - the output's layout: contiguous, and for 4-d/5-d tensors channels_last, wherever torch's is
      (``layout=False`` where torch's layout is an accident of the kernel it picks);
    - every gradient, for the δ ``grad_output`` (random when not given): of each input that
      requires grad and, where ``ours`` and ``theirs`` are modules, of each parameter (paired in
      the order of ``parameters()``) — None exactly where torch's is None, and otherwise with
      its shape, dtype and values.
      (Gradient layouts are not compared: tests that need one read it from the Comparison.)

    Ours runs under no_native_ops(), backward included. ``reference_dtype``: torch runs on the
    floating-point inputs upcast to it (16-bit dtypes, whose tolerances are stated against a
    float32 reference), and ours must keep the inputs' dtype."""
    ours_inputs = [_autograd_copy(value) for value in inputs]
    theirs_inputs = [_autograd_copy(value, reference_dtype) for value in inputs]
    expected = theirs(*theirs_inputs, **kwargs)
    with no_native_ops():
        actual = ours(*ours_inputs, **kwargs)
    assert isinstance(actual, tuple) == isinstance(expected, tuple), f"{msg}: tuple output expected {isinstance(expected, tuple)}"
    actual, expected = (actual, expected) if isinstance(expected, tuple) else ((actual,), (expected,))
    assert len(actual) == len(expected), msg
    input_dtype = next((t.dtype for t in ours_inputs if isinstance(t, torch.Tensor) and t.is_floating_point()), None)
    for index, (got, want) in enumerate(zip(actual, expected)):
        dtype = input_dtype if reference_dtype is not None and want.dtype == reference_dtype else want.dtype
        _assert_matches(got, want, dtype, exact, f"{msg}: output {index}")
        if layout:
            _assert_same_layout(got, want, f"{msg}: output {index}")
        assert got.requires_grad == want.requires_grad, f"{msg}: output {index} requires_grad {got.requires_grad}"

    differentiated = [(got, want) for got, want in zip(actual, expected) if want.requires_grad]
    if not differentiated:
        return Comparison(actual, expected, [], [])
    deltas = [grad_output] if grad_output is not None else [torch.randn_like(got) for got, _ in differentiated]
    assert len(deltas) == len(differentiated), f"{msg}: one grad_output per differentiable output"
    ours_wrt, theirs_wrt = [*ours_inputs], [*theirs_inputs]
    if isinstance(ours, torch.nn.Module) and isinstance(theirs, torch.nn.Module):
        ours_parameters, theirs_parameters = list(ours.parameters()), list(theirs.parameters())
        assert len(ours_parameters) == len(theirs_parameters), f"{msg}: {len(ours_parameters)} parameters, torch's {len(theirs_parameters)}"
        ours_wrt += ours_parameters
        theirs_wrt += theirs_parameters
    expected_grads = grads([want for _, want in differentiated], theirs_wrt,
                           [delta.to(want.dtype) for delta, (_, want) in zip(deltas, differentiated)])
    with no_native_ops():
        actual_grads = grads([got for got, _ in differentiated], ours_wrt, deltas)
    for index, (got, want, wrt) in enumerate(zip(actual_grads, expected_grads, ours_wrt)):
        if want is None:
            assert got is None, f"{msg}: gradient {index} is not None where torch's is"
        else:
            assert got is not None, f"{msg}: gradient {index} is None where torch's is not"
            _assert_matches(got, want, wrt.dtype, False, f"{msg}: gradient {index}")
    return Comparison(actual, expected, actual_grads, expected_grads)


def _autograd_copy(value, dtype=None):
    """A fresh autograd leaf over ``value``'s memory (its strides kept), optionally upcast."""
    if not isinstance(value, torch.Tensor):
        return value
    leaf = value.detach()
    if dtype is not None and leaf.is_floating_point():
        leaf = leaf.to(dtype)
    return leaf.requires_grad_(value.requires_grad)


def _assert_matches(actual, expected, dtype, exact, msg):
    assert actual.shape == expected.shape, f"{msg}: shape {tuple(actual.shape)}, torch's {tuple(expected.shape)}"
    assert actual.dtype == dtype, f"{msg}: dtype {actual.dtype}, expected {dtype}"
    tolerance = TOLERANCES[dtype] if (dtype.is_floating_point or dtype.is_complex) and not exact else dict(rtol=0, atol=0)
    torch.testing.assert_close(actual.to(expected.dtype), expected, **tolerance, equal_nan=True, msg=lambda m: f"{msg}: {m}")


def _assert_same_layout(actual, expected, msg):
    if expected.numel() > 1:
        formats = [torch.contiguous_format, *{4: [torch.channels_last], 5: [torch.channels_last_3d]}.get(expected.dim(), [])]
        for memory_format in formats:
            wanted = expected.is_contiguous(memory_format=memory_format)
            assert actual.is_contiguous(memory_format=memory_format) == wanted, f"{msg}: {memory_format} expected {wanted}"


class PickledCall:
    """Unpickling it touches ``marker``: what a malicious checkpoint would run. A load that
    refuses it leaves ``marker`` absent; a load that runs pickled code creates it."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)
