"""linear with torch.nn.functional's signature; arguments are checked here, before any compute."""
from __future__ import annotations

import torch

from ..autograd.linear import Linear
from ..errors import check
from ._autocast import lower_precision
from ._checks import FLOAT, INTEGER, check_dtype, check_same_dtype_device, check_tensor

__all__ = ["linear"]

# The dtypes torch's CPU matrix product computes (not bool, not complex32).
LINEAR_DTYPES = FLOAT | INTEGER | {torch.complex64, torch.complex128}


def linear(input, weight, bias=None):
    """y = x Wᵀ + b over (*, in_features); see ``torch.nn.functional.linear``.

    ``weight`` is (out_features, in_features), or (in_features,) for a single output that is
    not kept as a dimension; ``bias`` broadcasts to the output (usually (out_features,)).
    """
    op = "linear"
    input, weight, bias = lower_precision(input, weight, bias)
    check_tensor(input, "input", op)
    check_tensor(weight, "weight", op)
    check_tensor(bias, "bias", op, optional=True)
    check(input.dim() >= 1, lambda: f"{op}: expected input to be at least 1-D (*, in_features), got a 0-D tensor")
    check(
        weight.dim() in (1, 2),
        lambda: f"{op}: expected weight to be 2-D (out_features, in_features) or 1-D (in_features,), "
        f"got {weight.dim()}-D weight of size {list(weight.shape)}",
    )
    check_dtype(input, "input", op, LINEAR_DTYPES, "a floating-point, integer, complex64 or complex128 dtype")
    check_same_dtype_device(op, input=input, weight=weight, bias=bias)
    check(
        input.shape[-1] == weight.shape[-1],
        lambda: f"{op}: expected input's last dimension to be in_features={weight.shape[-1]} (weight.shape[-1]), "
        f"got input of size {list(input.shape)}",
    )
    single_output = weight.dim() == 1
    output_shape = (*input.shape[:-1],) if single_output else (*input.shape[:-1], weight.shape[0])
    if bias is not None:
        check(
            bias.dim() <= len(output_shape)
            and all(b in (1, o) for b, o in zip(reversed(bias.shape), reversed(output_shape))),
            lambda: f"{op}: expected bias to broadcast to the output size {list(output_shape)} "
            f"(usually ({output_shape[-1] if output_shape else 1},)), got size {list(bias.shape)}",
        )
    if single_output:
        # One output row: W (1, I) and a trailing unit dim on the bias, dropped again after.
        if bias is not None and bias.dim() > 0:
            bias = bias.unsqueeze(-1)
        return Linear.apply(input, weight.unsqueeze(0), bias).squeeze(-1)
    return Linear.apply(input, weight, bias)
