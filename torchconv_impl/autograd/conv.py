"""Convolution and its adjoints as autograd Functions — where the backward formulas live.

Three computations of the backend seam serve both layers:

    forward       y  = x ⋆ W + b                 (correlation)
    input-grad    dX = δ ⋆ᵀ W                   (transposed / "full" convolution, rotated W)
    weight-grad   dW = x ⋆ δ,   db = Σ δ         (correlation of the input with δ)

ConvTranspose is the adjoint of Conv: its forward is Conv's input-gradient, so its backward
is Conv's forward (for dX) and the weight-gradient with input and δ swapped (for dW).
Every backward calls these same Functions, so backward passes are differentiable again
(double backward, gradgradcheck). For complex tensors each backward pairs δ with the other
operand's conjugate (dX = δ ⋆ᵀ conj(W), dW = conj(x) ⋆ δ), torch's convention for gradients.
"""
from __future__ import annotations

import torch

from .. import ops
from .._geometry import ConvGeometry
from ._function import Function, add_tangents, product_rule
from ._layout import channels_last_format
from .activation import ReLUInputGrad


def _spatial_dims(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, t.dim()))


def _bias_grad(grad_output: torch.Tensor) -> torch.Tensor:
    """db[o] = Σ_{n, p} δ[n, o, p]."""
    return grad_output.sum((0, *_spatial_dims(grad_output)))


def _per_channel(bias: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """A bias (C,) shaped (C, 1, …, 1) to broadcast over ``like`` (N, C, *S)."""
    return None if bias is None else bias.view(-1, *(1,) * (like.dim() - 2))


def _conj(t: torch.Tensor) -> torch.Tensor:
    """conj(t), materialised, for complex ``t``; a real ``t`` itself."""
    return t.conj().resolve_conj() if t.is_complex() else t


def _crop(t: torch.Tensor, size) -> torch.Tensor:
    """``t`` cut to spatial ``size``. Correlating a transposed convolution's output yields one
    window per stride beyond its input when output_padding ≥ stride (torch allows it while
    output_padding < dilation); those windows see only the padding and belong to nothing."""
    if tuple(t.shape[2:]) == tuple(size):
        return t
    return t[(..., *(slice(0, s) for s in size))]


class Convolution(Function):
    """y = x ⋆ W + b, or y = ReLU(x ⋆ W + b) with ``activation="relu"`` (fused on GPUs).

    Backward: δ ← where(y ≤ 0, 0, δ) for the fused ReLU (as ReLU's), then dX = δ ⋆ᵀ W,  dW = x ⋆ δ,  db = Σδ.
    Forward mode: ẏ = ẋ ⋆ W + x ⋆ Ẇ + ḃ (bilinear in x and W), then masked by [y > 0] for the ReLU.
    """

    @staticmethod
    def forward(input, weight, bias, geometry: ConvGeometry, backend: str, activation):
        return ops.conv_forward(input, weight, bias, geometry, activation, channels_last_format(input, weight), backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight, _, ctx.geometry, ctx.backend, ctx.activation = inputs
        ctx.save_for_backward(input, weight, output if ctx.activation else None)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, output = ctx.saved_tensors
        geometry, backend = ctx.geometry, ctx.backend
        grad_input = grad_weight = grad_bias = None
        if ctx.activation == "relu":
            grad_output = ReLUInputGrad.apply(grad_output, output, backend)
        if ctx.needs_input_grad[0]:
            grad_input = ConvolutionTranspose.apply(grad_output, _conj(weight), None, geometry, input.shape[2:], backend)
        if ctx.needs_input_grad[1]:
            grad_weight = ConvolutionWeightGrad.apply(_conj(input), grad_output, geometry, weight.shape[2:], backend)
        if ctx.needs_input_grad[2]:
            grad_bias = _bias_grad(grad_output)
        return grad_input, grad_weight, grad_bias, None, None, None

    @staticmethod
    def tangent(inputs, output, input_tangent, weight_tangent, bias_tangent, *_):
        input, weight, _, geometry, backend, activation = inputs
        tangent = add_tangents(
            product_rule(lambda x, w: Convolution.apply(x, w, None, geometry, backend, None), input, weight, input_tangent, weight_tangent),
            _per_channel(bias_tangent, output),
        )
        return ReLUInputGrad.apply(tangent, output, backend) if activation == "relu" else tangent


class ConvolutionTranspose(Function):
    """z = x ⋆ᵀ W + b (the adjoint of Convolution with the same geometry).

    Backward: dX = δ ⋆ W (Convolution's forward),  dW = δ ⋆ x (the weight-gradient with the
    roles of input and δ swapped),  db = Σδ.
    Forward mode: ż = ẋ ⋆ᵀ W + x ⋆ᵀ Ẇ + ḃ.
    """

    @staticmethod
    def forward(input, weight, bias, geometry: ConvGeometry, output_size, backend: str):
        memory_format = channels_last_format(input, weight)
        return ops.conv_input_grad(input, weight, output_size, bias, geometry, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight, _, ctx.geometry, _, ctx.backend = inputs
        ctx.save_for_backward(input, weight)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        geometry, backend = ctx.geometry, ctx.backend
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = _crop(Convolution.apply(grad_output, _conj(weight), None, geometry, backend, None), input.shape[2:])
        if ctx.needs_input_grad[1]:
            grad_weight = ConvolutionWeightGrad.apply(grad_output, _conj(input), geometry, weight.shape[2:], backend)
        if ctx.needs_input_grad[2]:
            grad_bias = _bias_grad(grad_output)
        return grad_input, grad_weight, grad_bias, None, None, None

    @staticmethod
    def tangent(inputs, output, input_tangent, weight_tangent, bias_tangent, *_):
        input, weight, _, geometry, output_size, backend = inputs
        transposed = lambda x, w: ConvolutionTranspose.apply(x, w, None, geometry, output_size, backend)  # noqa: E731
        return add_tangents(product_rule(transposed, input, weight, input_tangent, weight_tangent), _per_channel(bias_tangent, output))


class ConvolutionWeightGrad(Function):
    """dW = x ⋆ δ, as a function of (x, δ) so that it can be differentiated again.

    dW is bilinear in x and δ; for an incoming gradient G (shaped like W):
    d/dδ ⟨G, x ⋆ δ⟩ = x ⋆ G  (Convolution),   d/dx ⟨G, x ⋆ δ⟩ = δ ⋆ᵀ G  (ConvolutionTranspose).
    Forward mode: dẆ = ẋ ⋆ δ + x ⋆ δ̇.
    """

    @staticmethod
    def forward(input, grad_output, geometry: ConvGeometry, kernel_size, backend: str):
        return ops.conv_weight_grad(input, grad_output, kernel_size, geometry, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, grad_output, ctx.geometry, _, ctx.backend = inputs
        ctx.save_for_backward(input, grad_output)

    @staticmethod
    def backward(ctx, grad_grad_weight):
        input, grad_output = ctx.saved_tensors
        geometry, backend = ctx.geometry, ctx.backend
        grad_input = grad_grad_output = None
        if ctx.needs_input_grad[0]:
            grad_input = ConvolutionTranspose.apply(_conj(grad_output), grad_grad_weight, None, geometry, input.shape[2:], backend)
        if ctx.needs_input_grad[1]:
            grad_grad_output = _crop(Convolution.apply(_conj(input), grad_grad_weight, None, geometry, backend, None), grad_output.shape[2:])
        return grad_input, grad_grad_output, None, None, None

    @staticmethod
    def tangent(inputs, output, input_tangent, grad_output_tangent, *_):
        input, grad_output, geometry, kernel_size, backend = inputs
        weight_grad = lambda x, delta: ConvolutionWeightGrad.apply(x, delta, geometry, kernel_size, backend)  # noqa: E731
        return product_rule(weight_grad, input, grad_output, input_tangent, grad_output_tangent)


ops.differentiate_with(
    ops.conv_forward_operator, Convolution,
    lambda input, weight, bias, stride, padding, dilation, groups, activation, memory_format, backend:
        (input, weight, bias, ops.unflatten_geometry(stride, padding, dilation, groups), backend, activation),
)
ops.differentiate_with(
    ops.conv_input_grad_operator, ConvolutionTranspose,
    lambda grad_output, weight, input_size, bias, stride, padding, dilation, groups, memory_format, backend:
        (grad_output, weight, bias, ops.unflatten_geometry(stride, padding, dilation, groups), input_size, backend),
)
ops.differentiate_with(
    ops.conv_weight_grad_operator, ConvolutionWeightGrad,
    lambda input, grad_output, kernel_size, stride, padding, dilation, groups, memory_format, backend:
        (input, grad_output, ops.unflatten_geometry(stride, padding, dilation, groups), kernel_size, backend),
)
