"""Pooling as autograd Functions — where the pooling backward formulas live.

    max pool        y[p] = max_{j ∈ window p} x[j]          dX = δ routed to argmax(p)  (scatter-add)
    max unpool      z[idx[p]] = x[p]                        dX[p] = δ[idx[p]]           (gather)
    avg pool        y[p] = Σ_{j ∈ window p} x[j] / div[p]   dX[j] = Σ_{p ∋ j} δ[p] / div[p]
    adaptive avg    y = x ×_d A_d                           dX = δ ×_d A_dᵀ

Max pooling is piecewise linear: in x it is a selection fixed by the argmax indices saved in
forward, so its backward is linear in δ and independent of x. The backward of that backward
(scatter-add at the indices) is its adjoint, a gather at the same indices; and the gather's
adjoint is the scatter-add again. Average pooling's backward is the adjoint of its forward and
vice versa. Every backward calls these Functions, so gradgradcheck passes.
"""
from __future__ import annotations

import torch
from torch.autograd import Function

from .. import backends
from .conv import _memory_format_of


def _like(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``output`` in ``reference``'s memory format (channels_last in, channels_last out, as torch)."""
    return output.contiguous(memory_format=_memory_format_of(reference))


def _route_to_argmax(ctx, grad_output) -> torch.Tensor:
    """Max pooling's (and adaptive max pooling's) dX: δ scattered to the saved argmax."""
    (indices,) = ctx.saved_tensors
    return MaxPoolInputGrad.apply(grad_output, indices, ctx.input_size, ctx.backend)


class MaxPool(Function):
    """(y, indices) = max pooling of x.   Backward: dX = Σ_p δ[p] at indices[p]."""

    @staticmethod
    def forward(ctx, input, kernel_size, stride, padding, dilation, ceil_mode, backend):
        output, indices = backends.op(backend, "max_pool_forward")(input, kernel_size, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(indices)
        ctx.mark_non_differentiable(indices)
        ctx.input_size, ctx.backend = input.shape[2:], backend
        return _like(output, input), _like(indices, input)

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        return (_route_to_argmax(ctx, grad_output),) + (None,) * 6


class AdaptiveMaxPool(Function):
    """(y, indices) = max over torch's adaptive windows.   Backward: as MaxPool."""

    @staticmethod
    def forward(ctx, input, output_size, backend):
        output, indices = backends.op(backend, "adaptive_max_pool_forward")(input, tuple(output_size))
        ctx.save_for_backward(indices)
        ctx.mark_non_differentiable(indices)
        ctx.input_size, ctx.backend = input.shape[2:], backend
        return _like(output, input), _like(indices, input)

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        return _route_to_argmax(ctx, grad_output), None, None


class MaxPoolInputGrad(Function):
    """dX = scatter-add of δ at ``indices`` into zero planes of ``input_size``.

    Linear in δ; its backward, for an incoming G shaped like dX: dδ[p] = G[indices[p]] (gather).
    """

    @staticmethod
    def forward(ctx, grad_output, indices, input_size, backend):
        ctx.save_for_backward(indices)
        ctx.backend = backend
        return _like(backends.op(backend, "max_pool_backward")(grad_output, indices, tuple(input_size)), grad_output)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        return MaxUnpoolInputGrad.apply(grad_grad_input, indices, ctx.backend), None, None, None


class MaxUnpool(Function):
    """z = zeros of ``output_size`` with z[indices[p]] = x[p].   Backward: dX[p] = δ[indices[p]]."""

    @staticmethod
    def forward(ctx, input, indices, output_size, backend):
        ctx.save_for_backward(indices)
        ctx.backend = backend
        return _like(backends.op(backend, "max_unpool_forward")(input, indices, tuple(output_size)), input)

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        return MaxUnpoolInputGrad.apply(grad_output, indices, ctx.backend), None, None, None


class MaxUnpoolInputGrad(Function):
    """dX[p] = δ[indices[p]] (gather).   Backward (its adjoint): scatter-add, MaxPoolInputGrad."""

    @staticmethod
    def forward(ctx, grad_output, indices, backend):
        ctx.save_for_backward(indices)
        ctx.input_size, ctx.backend = grad_output.shape[2:], backend
        return _like(backends.op(backend, "max_unpool_backward")(grad_output, indices), grad_output)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        return MaxPoolInputGrad.apply(grad_grad_input, indices, ctx.input_size, ctx.backend), None, None


class AvgPool(Function):
    """y[p] = Σ_{window p} x_pad / divisor[p].   Backward: δ[p]/divisor[p] spread over window p."""

    @staticmethod
    def forward(ctx, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend):
        ctx.options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend)
        ctx.input_size = input.shape[2:]
        output = backends.op(backend, "avg_pool_forward")(
            input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        )
        return _like(output, input)

    @staticmethod
    def backward(ctx, grad_output):
        return (AvgPoolInputGrad.apply(grad_output, ctx.input_size, *ctx.options),) + (None,) * 7


class AvgPoolInputGrad(Function):
    """dX = AvgPool's adjoint applied to δ.   Backward: AvgPool itself (the adjoint's adjoint).

    ``ceil_mode`` is kept only for that backward: with it, AvgPool of an input of
    ``input_size`` has δ's shape again.
    """

    @staticmethod
    def forward(ctx, grad_output, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend):
        ctx.options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend)
        grad_input = backends.op(backend, "avg_pool_backward")(
            grad_output, tuple(input_size), kernel_size, stride, padding, count_include_pad, divisor_override
        )
        return _like(grad_input, grad_output)

    @staticmethod
    def backward(ctx, grad_grad_input):
        return (AvgPool.apply(grad_grad_input, *ctx.options),) + (None,) * 8


class AdaptiveAvgPool(Function):
    """y = x ×_d A_d.   Backward: dX = δ ×_d A_dᵀ."""

    @staticmethod
    def forward(ctx, input, output_size, backend):
        ctx.input_size, ctx.backend = input.shape[2:], backend
        return _like(backends.op(backend, "adaptive_avg_pool_forward")(input, tuple(output_size)), input)

    @staticmethod
    def backward(ctx, grad_output):
        return AdaptiveAvgPoolInputGrad.apply(grad_output, ctx.input_size, ctx.backend), None, None


class AdaptiveAvgPoolInputGrad(Function):
    """dX = δ ×_d A_dᵀ.   Backward: G ×_d A_d, the forward (transposing back)."""

    @staticmethod
    def forward(ctx, grad_output, input_size, backend):
        ctx.output_size, ctx.backend = grad_output.shape[2:], backend
        return _like(backends.op(backend, "adaptive_avg_pool_backward")(grad_output, tuple(input_size)), grad_output)

    @staticmethod
    def backward(ctx, grad_grad_input):
        return AdaptiveAvgPool.apply(grad_grad_input, ctx.output_size, ctx.backend), None, None


__all__ = [
    "MaxPool",
    "AdaptiveMaxPool",
    "MaxPoolInputGrad",
    "MaxUnpool",
    "MaxUnpoolInputGrad",
    "AvgPool",
    "AvgPoolInputGrad",
    "AdaptiveAvgPool",
    "AdaptiveAvgPoolInputGrad",
]
