"""torch.autocast's policy for our ops: each is cast as its torch twin is.

Under autocast torch runs convolutions and linear layers in the autocast dtype (float16 or
bfloat16), runs some ops in float32 whatever their input (losses; on CPU also 3-d pooling
and unpooling), and leaves the rest in their inputs' dtype. The functional layer casts the
operands here, before any check, so an fp32 parameter still gets an fp32 gradient (the cast is
differentiable) and the operators themselves run with autocast off.
"""
from __future__ import annotations

import torch

# Ops torch runs in float32 under autocast, per device type (probed: the output's dtype for
# float32 and for bfloat16 input; CUDA per torch's autocast lists).
_FLOAT32 = {
    "cpu": {"max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
            "max_unpool1d", "max_unpool2d", "max_unpool3d", "cross_entropy", "mse_loss"},
    "cuda": {"cross_entropy", "mse_loss"},
}  # fmt: skip


def _cast(tensors, dtype):
    """Floating tensors other than float64 (which autocast never touches) cast to ``dtype``."""
    return tuple(
        t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64 else t for t in tensors
    )


def _autocast_on(tensors) -> str | None:
    """The device type of the first tensor among ``tensors`` if autocast is on for it, else None
    (meta tensors, for one, have no autocast)."""
    device = next((t.device.type for t in tensors if isinstance(t, torch.Tensor)), None)
    # (A plain comparison: torch.compile of torch 2.11 cannot trace torch.amp.is_autocast_available.)
    if device is None or device == "meta" or not torch.is_autocast_enabled(device):
        return None
    return device


def lower_precision(*tensors):
    """The operands of a convolution or linear layer: in the autocast dtype when autocast is on."""
    device = _autocast_on(tensors)
    if device is None:
        return tensors
    return _cast(tensors, torch.get_autocast_dtype(device))


def float32_for(op: str, *tensors):
    """The operands of ``op``: in float32 when autocast is on and torch runs ``op`` in float32."""
    device = _autocast_on(tensors)
    if device is None or op not in _FLOAT32.get(device, ()):
        return tensors
    return _cast(tensors, torch.float32)
