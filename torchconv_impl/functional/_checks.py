"""Argument checks shared by the functional ops: each names the argument and what was expected,
and raises the class torch raises for the same mistake (see ``torchconv_impl.errors``)."""
from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import FakeTensor

from ..errors import ArgumentError, ArgumentNotImplementedError, ArgumentTypeError, check

# The dtypes torch's CPU kernels compute, by kind (float8 and uint16/32/64 have no kernels there).
FLOAT = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
INTEGER = frozenset({torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})
COMPLEX = frozenset({torch.complex32, torch.complex64, torch.complex128})


def check_tensor(value, name: str, op: str, *, optional: bool = False) -> None:
    """``value`` is a Tensor (or None, when ``optional``); a TypeError otherwise, as torch's."""
    check(
        isinstance(value, torch.Tensor) or (optional and value is None),
        lambda: f"{op}: expected {name} to be a Tensor{' or None' if optional else ''}, got {type(value).__name__}",
        ArgumentTypeError,
    )


def is_int(value) -> bool:
    """A Python int, not a bool (which torch's argument parser refuses where it wants an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value, name: str, op: str) -> None:
    check(is_int(value), lambda: f"{op}: expected {name} to be an int, got {value!r}", ArgumentTypeError)


def check_number(value, name: str, op: str) -> None:
    """A real number (or a one-element Tensor holding one), as torch's float arguments take."""
    check(
        isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex()),
        lambda: f"{op}: expected {name} to be a number, got {value!r}",
        ArgumentTypeError,
    )


def check_input_dim(input: torch.Tensor, nd: int, op: str, *, too_few: type[ArgumentError] = ArgumentError) -> bool:
    """Accepts (N, C, *S) or unbatched (C, *S) with ``nd`` spatial dims; returns whether batched.
    ``too_few``: the class for an input with fewer dims, where torch's differs (avg_pool2d's
    IndexError, from indexing a dim the input has not)."""
    check_tensor(input, "input", op)
    check(
        input.dim() in (nd + 1, nd + 2),
        lambda: f"{op}: expected input to be {nd + 1}-D (unbatched) or {nd + 2}-D (batched), "
        f"got {input.dim()}-D input of size {list(input.shape)}",
        too_few if input.dim() < nd + 1 else ArgumentError,
    )
    return input.dim() == nd + 2


def check_dtype(
    tensor: torch.Tensor, name: str, op: str, accepted, expected: str, error: type[ArgumentError] = ArgumentNotImplementedError
) -> None:
    """``tensor``'s dtype is in ``accepted`` (described as ``expected``). torch raises
    NotImplementedError for a dtype it has no kernel for, hence the default ``error``."""
    check(tensor.dtype in accepted, lambda: f"{op}: expected {name} to have {expected}, got {tensor.dtype}", error)


def check_float(tensor: torch.Tensor, name: str, op: str, error: type[ArgumentError] = ArgumentNotImplementedError) -> None:
    check_dtype(tensor, name, op, FLOAT, "a floating-point dtype", error)


def check_same_dtype_device(op: str, **tensors) -> None:
    """All tensors (None skipped) share the first one's dtype and device."""
    present = [(name, t) for name, t in tensors.items() if t is not None]
    first_name, first = present[0]
    for name, t in present[1:]:
        check(
            t.dtype == first.dtype,
            lambda: f"{op}: expected {name} to have the same dtype as {first_name} ({first.dtype}), got {t.dtype}",
        )
        check(
            t.device == first.device,
            lambda: f"{op}: expected {name} to be on the same device as {first_name} ({first.device}), got {t.device}",
        )


def values_readable(tensor: torch.Tensor) -> bool:
    """Whether an argument check may read ``tensor``'s values back to the host: only for a
    plain tensor in eager mode. When it is traced (torch.compile, torch.export), fake, meta or
    under a torch.func transform, the values are not there to read; the check is then left to
    the backend's real implementation, whose gather and scatter check their indices."""
    return (
        not torch.compiler.is_compiling()
        and tensor.device.type != "meta"
        and not isinstance(tensor, FakeTensor)
        and not torch._C._functorch.is_functorch_wrapped_tensor(tensor)
    )


def positive(values, name: str, op: str) -> None:
    check(all(v > 0 for v in values), lambda: f"{op}: expected {name} to be positive, got {values}")


def non_negative(values, name: str, op: str) -> None:
    check(all(v >= 0 for v in values), lambda: f"{op}: expected {name} to be non-negative, got {values}")


__all__ = [
    "FLOAT", "INTEGER", "COMPLEX", "check_tensor", "is_int", "check_int", "check_number", "check_input_dim", "check_dtype", "check_float", "check_same_dtype_device",
    "values_readable", "positive", "non_negative",
]
