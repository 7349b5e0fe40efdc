"""Element-wise activations as autograd Functions. Each saves its output: f′ is a function of f
for all three (seeds 004), and ReLU's in-place form has no input left to save."""
from __future__ import annotations

import math

import torch
from torch.autograd import Function

__all__ = ["ReLU", "Sigmoid", "Tanh", "relu_input_grad", "relu_mask_product"]


class ReLU(Function):
    """y = max(x, 0).   Backward: dX = δ ⊙ [y > 0], so the gradient at x = 0 is 0, as torch's.

    ``inplace`` overwrites x with y and marks it dirty, so autograd versions it like torch's relu_.
    As torch's threshold_backward, δ passes where y is NaN: dX = where(y ≤ 0, 0, δ).
    """

    @staticmethod
    def forward(ctx, input, inplace: bool):
        if inplace:
            output = input.clamp_min_(0)
            ctx.mark_dirty(input)
        else:
            output = input.clamp_min(0)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return relu_input_grad(grad_output, output), None


def relu_input_grad(grad_output: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """ReLU's dX from δ and y = max(x, 0): where(y ≤ 0, 0, δ), torch's threshold_backward."""
    if grad_output.device.type == "cpu" and grad_output.is_floating_point() and math.isfinite(grad_output.detach().sum().item()):
        return relu_mask_product(grad_output, output)
    return torch.where(output <= 0, 0, grad_output)


def relu_mask_product(grad_output: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """δ·[y ≠ 0] with the mask written as floats: ReLU's dX wherever the result is finite.

    On CPU, ops that read a bool mask (where, masked_fill, bool × float) run some 30× slower
    than float arithmetic, so the comparison itself writes floats. For y = max(x, 0),
    [y ≠ 0] = [y > 0 or y is NaN]. The product equals where(y ≤ 0, 0, δ) (up to the sign of a
    zero) unless δ is infinite or NaN where y ≤ 0, and then the product holds a NaN there: a
    finite result (a finite sum of it) proves it exact.
    """
    mask = torch.ne(output.detach(), 0, out=torch.empty_like(grad_output))
    return torch.mul(grad_output, mask, out=mask) if not grad_output.requires_grad else grad_output * mask


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ).   Backward: dX = δ ⊙ y(1 − y), from the saved output
    (conjugated for complex x: autograd's gradients are conjugate Wirtinger derivatives)."""

    @staticmethod
    def forward(ctx, input):
        output = torch.sigmoid(input)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return grad_output * (output * (1 - output)).conj()


class Tanh(Function):
    """y = tanh x.   Backward: dX = δ ⊙ (1 − y²), from the saved output (conjugated for complex x)."""

    @staticmethod
    def forward(ctx, input):
        output = torch.tanh(input)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return grad_output * (1 - output * output).conj()
