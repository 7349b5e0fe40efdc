"""Inverted dropout as an autograd Function: the caller draws the mask, forward and backward share it."""
from __future__ import annotations

from ._function import Function


__all__ = ["Dropout"]


class Dropout(Function):
    """y = x ⊙ m, with m = keep/(1 − p) drawn by the caller (0 where dropped, 1/(1 − p) where kept:
    inverted dropout, so evaluation is the identity). m broadcasts over x: one value per element,
    or per channel for Dropout1d/2d/3d.

    Backward: dX = δ ⊙ m — the very mask of the forward pass.
    ``inplace`` multiplies x itself and marks it dirty, like torch's dropout_.
    Forward mode: ẏ = ẋ ⊙ m.
    """

    @staticmethod
    def forward(input, scaled_mask, inplace: bool):
        if inplace:
            input.mul_(scaled_mask)
            return input  # the input itself (torch.compile needs the very tensor that is marked dirty)
        return input * scaled_mask

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, scaled_mask, inplace = inputs
        if inplace:
            ctx.mark_dirty(input)
        ctx.save_for_backward(scaled_mask)

    @staticmethod
    def backward(ctx, grad_output):
        (scaled_mask,) = ctx.saved_tensors
        return grad_output * scaled_mask, None, None

    @staticmethod
    def tangent(inputs, output, input_tangent, *_):
        return input_tangent * inputs[1]
