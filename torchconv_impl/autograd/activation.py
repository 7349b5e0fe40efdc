"""Element-wise activations as autograd Functions. Each saves its output: f′ is a function of f
for all three (seeds 004), and ReLU's in-place form has no input left to save."""
from __future__ import annotations


from .. import ops
from ._function import Function
from ._layout import channels_last_format

__all__ = ["ReLU", "ReLUInputGrad", "Sigmoid", "Tanh"]


class ReLU(Function):
    """y = max(x, 0).   Backward: dX = δ ⊙ [y > 0], so the gradient at x = 0 is 0, as torch's.

    ``inplace`` overwrites x with y and marks it dirty, so autograd versions it like torch's relu_.
    Forward mode: ẏ = ẋ ⊙ [y > 0] (ReLUInputGrad of the tangent).
    """

    @staticmethod
    def forward(input, inplace: bool, backend: str):
        if inplace:
            input.clamp_min_(0)
            return input  # the input itself (torch.compile needs the very tensor that is marked dirty)
        return input.clamp_min(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, inplace, ctx.backend = inputs
        if inplace:
            ctx.mark_dirty(input)
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return ReLUInputGrad.apply(grad_output, output, ctx.backend), None, None

    @staticmethod
    def tangent(inputs, output, input_tangent, *_):
        return ReLUInputGrad.apply(input_tangent, output, inputs[2])


class ReLUInputGrad(Function):
    """ReLU's dX = where(y ≤ 0, 0, δ) for y = max(x, 0) (torch's threshold_backward: δ passes
    where y is NaN), as a function of δ so that ReLU's backward can be differentiated again.

    Linear in δ, with the mask fixed by y: its backward applies the same mask, dδ = where(y ≤ 0, 0, G);
    y gets none (the mask is piecewise constant in y). Forward mode: the same mask on δ̇.
    """

    @staticmethod
    def forward(grad_output, output, backend: str):
        return ops.relu_input_grad(grad_output, output, channels_last_format(grad_output, output), backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, relu_output, ctx.backend = inputs
        ctx.save_for_backward(relu_output)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (output,) = ctx.saved_tensors
        return ReLUInputGrad.apply(grad_grad_input, output, ctx.backend), None, None

    @staticmethod
    def tangent(inputs, output, grad_output_tangent, *_):
        return None if grad_output_tangent is None else ReLUInputGrad.apply(grad_output_tangent, inputs[1], inputs[2])


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ).   Backward: dX = δ ⊙ y(1 − y), from the saved output
    (conjugated for complex x: autograd's gradients are conjugate Wirtinger derivatives).
    Forward mode: ẏ = ẋ ⊙ y(1 − y) (not conjugated: a tangent is pushed forward)."""

    @staticmethod
    def forward(input):
        return input.sigmoid()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return grad_output * (output * (1 - output)).conj()

    @staticmethod
    def tangent(inputs, output, input_tangent):
        return input_tangent * (output * (1 - output))


class Tanh(Function):
    """y = tanh x.   Backward: dX = δ ⊙ (1 − y²), from the saved output (conjugated for complex x).
    Forward mode: ẏ = ẋ ⊙ (1 − y²)."""

    @staticmethod
    def forward(input):
        return input.tanh()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return grad_output * (1 - output * output).conj()

    @staticmethod
    def tangent(inputs, output, input_tangent):
        return input_tangent * (1 - output * output)


ops.differentiate_with(
    ops.relu_input_grad, ReLUInputGrad, lambda grad_output, output, memory_format, backend: (grad_output, output, backend)
)
