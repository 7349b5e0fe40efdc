"""The CPU engine's activation backward: ReLU's input gradient, by float mask."""
from __future__ import annotations

import math

import torch

__all__ = ["relu_input_grad"]


def relu_input_grad(grad_output: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """ReLU's dX from δ and y = max(x, 0): where(y ≤ 0, 0, δ), torch's threshold_backward.

    On CPU, ops that read a bool mask (where, masked_fill, bool × float) run some 30× slower
    than float arithmetic, so for finite float δ the mask is written as floats: δ·[y ≠ 0].
    For y = max(x, 0), [y ≠ 0] = [y > 0 or y is NaN]; the product equals where(y ≤ 0, 0, δ)
    (up to the sign of a zero) unless δ is infinite or NaN where y ≤ 0, which a finite Σδ rules out.
    """
    if grad_output.device.type == "cpu" and grad_output.is_floating_point() and math.isfinite(grad_output.sum().item()):
        mask = torch.ne(output, 0, out=torch.empty_like(grad_output))
        return torch.mul(grad_output, mask, out=mask)
    return torch.where(output <= 0, 0, grad_output)
