"""The fully connected layer as an autograd Function: y = x Wᵀ + b over any leading dimensions."""
from __future__ import annotations

import math

import torch

from ._function import Function, add_tangents, product_rule

__all__ = ["Linear"]


class Linear(Function):
    """y = x Wᵀ + b for x (*, I), W (O, I) and b broadcastable to y (*, O).

    Backward (seeds 004, ∂E/∂W = δ yᵀ and δ⁽ˡ⁻¹⁾ = Wᵀ δ, written for rows of x):
        dX = δ W                                   = Linear(δ, Wᵀ)
        dW = δᵀ x, summed over every leading dim   = Linear(δᵀ, xᵀ) on the rows flattened to (M, ·)
        db = Σ δ over the dims b was broadcast along
    Both products are this same Function, so the backward is differentiable again.
    Forward mode: ẏ = ẋ Wᵀ + x Ẇᵀ + ḃ.
    """

    @staticmethod
    def forward(input, weight, bias):
        output = torch.matmul(input, weight.mT)
        return output if bias is None else output + bias

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight, bias = inputs
        ctx.save_for_backward(input, weight)
        ctx.bias_shape = None if bias is None else bias.shape

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        out_features, in_features = weight.shape
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = Linear.apply(grad_output, weight.mT, None)
        if ctx.needs_input_grad[1]:
            rows = math.prod(grad_output.shape[:-1])  # explicit: reshape(-1, 0) is ambiguous for zero features
            rows_grad_output = grad_output.reshape(rows, out_features)
            rows_input = input.reshape(rows, in_features)
            grad_weight = Linear.apply(rows_grad_output.mT, rows_input.mT, None)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum_to_size(ctx.bias_shape)
        return grad_input, grad_weight, grad_bias

    @staticmethod
    def tangent(inputs, output, input_tangent, weight_tangent, bias_tangent):
        input, weight, _ = inputs
        product = lambda x, w: Linear.apply(x, w, None)  # noqa: E731
        return add_tangents(product_rule(product, input, weight, input_tangent, weight_tangent), bias_tangent)
