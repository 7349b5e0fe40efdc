"""Convolution and its adjoints as autograd Functions — where the backward formulas live.

Three computations of the backend seam serve both layers:

    forward       y  = x ⋆ W + b                 (correlation)
    input-grad    dX = δ ⋆ᵀ W                   (transposed / "full" convolution, rotated W)
    weight-grad   dW = x ⋆ δ,   db = Σ δ         (correlation of the input with δ)

ConvTranspose is the adjoint of Conv: its forward is Conv's input-gradient, so its backward
is Conv's forward (for dX) and the weight-gradient with input and δ swapped (for dW).
Every backward calls these same Functions, so backward passes are differentiable again
(double backward, gradgradcheck).
"""
from __future__ import annotations

import math

import torch
from torch.autograd import Function

from .. import backends
from .._geometry import ConvGeometry
from ._layout import channels_last_format
from .activation import relu_input_grad, relu_mask_product


def _spatial_dims(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, t.dim()))


def _bias_grad(grad_output: torch.Tensor) -> torch.Tensor:
    """db[o] = Σ_{n, p} δ[n, o, p]."""
    return grad_output.sum((0, *_spatial_dims(grad_output)))


def _activation_input_grad_and_bias_grad(activation, grad_output: torch.Tensor, output: torch.Tensor):
    """(δ', db): δ' = δ through the fused activation's backward, db = Σ δ'.

    For ReLU on CPU, δ' is first taken as the float-mask product δ·[y ≠ 0], exact when it is
    finite; db sums δ' anyway, so a finite db proves it without a pass of its own over δ.
    Otherwise (a NaN or inf in δ where y ≤ 0, or an overflowing sum), ReLU's backward is taken
    again with its own check."""
    if activation != "relu":
        return grad_output, _bias_grad(grad_output)
    if grad_output.device.type == "cpu" and grad_output.is_floating_point():
        masked = relu_mask_product(grad_output, output)
        grad_bias = _bias_grad(masked)
        if math.isfinite(grad_bias.detach().sum().item()):
            return masked, grad_bias
    masked = relu_input_grad(grad_output, output)
    return masked, _bias_grad(masked)


def _own(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a tensor of its own rather than a view of a backend's temporary (no copy):
    autograd forbids in-place ops on views created inside a Function, and nothing else
    holds that temporary."""
    return t.detach()


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
    """

    @staticmethod
    def forward(ctx, input, weight, bias, geometry: ConvGeometry, backend, activation=None):
        ctx.geometry, ctx.backend, ctx.activation = geometry, backend, activation
        output = backends.op(backend, "conv_forward")(input, weight, bias, geometry, activation)
        output = _own(output.contiguous(memory_format=channels_last_format(input, weight)))
        ctx.save_for_backward(input, weight, output if activation else None)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, output = ctx.saved_tensors
        geometry, backend = ctx.geometry, ctx.backend
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[2]:
            grad_output, grad_bias = _activation_input_grad_and_bias_grad(ctx.activation, grad_output, output)
        elif ctx.activation == "relu":
            grad_output = relu_input_grad(grad_output, output)
        if ctx.needs_input_grad[0]:
            grad_input = ConvolutionTranspose.apply(grad_output, weight, None, geometry, input.shape[2:], backend)
        if ctx.needs_input_grad[1]:
            grad_weight = ConvolutionWeightGrad.apply(input, grad_output, geometry, weight.shape[2:], backend)
        return grad_input, grad_weight, grad_bias, None, None, None


class ConvolutionTranspose(Function):
    """z = x ⋆ᵀ W + b (the adjoint of Convolution with the same geometry).

    Backward: dX = δ ⋆ W (Convolution's forward),  dW = δ ⋆ x (the weight-gradient with the
    roles of input and δ swapped),  db = Σδ.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, geometry: ConvGeometry, output_size, backend):
        ctx.save_for_backward(input, weight)
        ctx.geometry, ctx.backend = geometry, backend
        output = backends.op(backend, "conv_input_grad")(input, weight, tuple(output_size), bias, geometry)
        return _own(output.contiguous(memory_format=channels_last_format(input, weight)))

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        geometry, backend = ctx.geometry, ctx.backend
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = _crop(Convolution.apply(grad_output, weight, None, geometry, backend), input.shape[2:])
        if ctx.needs_input_grad[1]:
            grad_weight = ConvolutionWeightGrad.apply(grad_output, input, geometry, weight.shape[2:], backend)
        if ctx.needs_input_grad[2]:
            grad_bias = _bias_grad(grad_output)
        return grad_input, grad_weight, grad_bias, None, None, None


class ConvolutionWeightGrad(Function):
    """dW = x ⋆ δ, as a function of (x, δ) so that it can be differentiated again.

    dW is bilinear in x and δ; for an incoming gradient G (shaped like W):
    d/dδ ⟨G, x ⋆ δ⟩ = x ⋆ G  (Convolution),   d/dx ⟨G, x ⋆ δ⟩ = δ ⋆ᵀ G  (ConvolutionTranspose).
    """

    @staticmethod
    def forward(ctx, input, grad_output, geometry: ConvGeometry, kernel_size, backend):
        ctx.save_for_backward(input, grad_output)
        ctx.geometry, ctx.backend = geometry, backend
        return _own(backends.op(backend, "conv_weight_grad")(input, grad_output, tuple(kernel_size), geometry))

    @staticmethod
    def backward(ctx, grad_grad_weight):
        input, grad_output = ctx.saved_tensors
        geometry, backend = ctx.geometry, ctx.backend
        grad_input = grad_grad_output = None
        if ctx.needs_input_grad[0]:
            grad_input = ConvolutionTranspose.apply(grad_output, grad_grad_weight, None, geometry, input.shape[2:], backend)
        if ctx.needs_input_grad[1]:
            grad_grad_output = _crop(Convolution.apply(input, grad_grad_weight, None, geometry, backend), grad_output.shape[2:])
        return grad_input, grad_grad_output, None, None, None
