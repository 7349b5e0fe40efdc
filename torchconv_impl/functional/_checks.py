"""Argument checks shared by the functional ops: each names the argument and what was expected."""
from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import FakeTensor

from .._geometry import ArgumentError, check


def check_input_dim(input: torch.Tensor, nd: int, op: str) -> bool:
    """Accepts (N, C, *S) or unbatched (C, *S) with ``nd`` spatial dims; returns whether batched."""
    check(isinstance(input, torch.Tensor), lambda: f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    check(
        input.dim() in (nd + 1, nd + 2),
        lambda: f"{op}: expected input to be {nd + 1}-D (unbatched) or {nd + 2}-D (batched), "
        f"got {input.dim()}-D input of size {list(input.shape)}",
    )
    return input.dim() == nd + 2


def check_float(tensor: torch.Tensor, name: str, op: str) -> None:
    check(
        tensor.is_floating_point(),
        lambda: f"{op}: expected {name} to have a floating-point dtype, got {tensor.dtype}",
    )


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
    "ArgumentError", "check", "check_input_dim", "check_float", "check_same_dtype_device", "values_readable", "positive", "non_negative",
]
