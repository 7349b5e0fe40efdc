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

Layouts follow torch: results and gradients of 2-d pooling are channels_last when the input
is; of 3-d pooling, only max pooling keeps channels_last_3d (torch's other 3-d pools return
contiguous tensors). The index-routing Functions take that layout as ``memory_format``.
"""
from __future__ import annotations

import torch
from torch.autograd import Function

from .. import backends
from ._layout import channels_last_format


def _save_argmax(ctx, indices, input, memory_format, backend) -> None:
    """What max pooling's backward needs: the argmax indices, the input's size and layout, the backend.
    The indices are an output without a gradient; autograd is told not to build zero
    gradients for them (nor for an unused y), which would cost a fill of the indices' size."""
    ctx.save_for_backward(indices)
    ctx.mark_non_differentiable(indices)
    ctx.set_materialize_grads(False)
    ctx.memory_format, ctx.input_size, ctx.backend = memory_format, input.shape[2:], backend


def _route_to_argmax(ctx, grad_output) -> torch.Tensor | None:
    """Max pooling's (and adaptive max pooling's) dX: δ scattered to the saved argmax."""
    if grad_output is None:  # y itself was not used
        return None
    (indices,) = ctx.saved_tensors
    return MaxPoolInputGrad.apply(grad_output, indices, ctx.input_size, ctx.memory_format, ctx.backend)


class MaxPool(Function):
    """(y, indices) = max pooling of x.   Backward: dX = Σ_p δ[p] at indices[p]."""

    @staticmethod
    def forward(ctx, input, kernel_size, stride, padding, dilation, ceil_mode, backend):
        output, indices = backends.op(backend, "max_pool_forward")(input, kernel_size, stride, padding, dilation, ceil_mode)
        _save_argmax(ctx, indices, input, channels_last_format(input), backend)
        return output.contiguous(memory_format=ctx.memory_format), indices.contiguous(memory_format=ctx.memory_format)

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        return (_route_to_argmax(ctx, grad_output),) + (None,) * 6


class AdaptiveMaxPool(Function):
    """(y, indices) = max over torch's adaptive windows.   Backward: as MaxPool."""

    @staticmethod
    def forward(ctx, input, output_size, backend):
        output, indices = backends.op(backend, "adaptive_max_pool_forward")(input, tuple(output_size))
        _save_argmax(ctx, indices, input, channels_last_format(input, include_3d=False), backend)
        return output.contiguous(memory_format=ctx.memory_format), indices.contiguous(memory_format=ctx.memory_format)

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        return _route_to_argmax(ctx, grad_output), None, None


class MaxPoolInputGrad(Function):
    """dX = scatter-add of δ at ``indices`` into zero planes of ``input_size``.

    Linear in δ; its backward, for an incoming G shaped like dX: dδ[p] = G[indices[p]] (gather).
    """

    @staticmethod
    def forward(ctx, grad_output, indices, input_size, memory_format, backend):
        ctx.save_for_backward(indices)
        ctx.memory_format, ctx.backend = memory_format, backend
        grad_input = backends.op(backend, "max_pool_backward")(grad_output, indices, tuple(input_size))
        return grad_input.contiguous(memory_format=memory_format)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        return MaxUnpoolInputGrad.apply(grad_grad_input, indices, ctx.memory_format, ctx.backend), None, None, None, None


class MaxUnpool(Function):
    """z = zeros of ``output_size`` with z[indices[p]] = x[p].   Backward: dX[p] = δ[indices[p]]."""

    @staticmethod
    def forward(ctx, input, indices, output_size, backend):
        ctx.save_for_backward(indices)
        ctx.memory_format = channels_last_format(input, include_3d=False)
        ctx.backend = backend
        output = backends.op(backend, "max_unpool_forward")(input, indices, tuple(output_size))
        return output.contiguous(memory_format=ctx.memory_format)

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        return MaxUnpoolInputGrad.apply(grad_output, indices, ctx.memory_format, ctx.backend), None, None, None


class MaxUnpoolInputGrad(Function):
    """dX[p] = δ[indices[p]] (gather).   Backward (its adjoint): scatter-add, MaxPoolInputGrad."""

    @staticmethod
    def forward(ctx, grad_output, indices, memory_format, backend):
        ctx.save_for_backward(indices)
        ctx.input_size, ctx.memory_format, ctx.backend = grad_output.shape[2:], memory_format, backend
        grad_input = backends.op(backend, "max_unpool_backward")(grad_output, indices)
        return grad_input.contiguous(memory_format=memory_format)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        grad = MaxPoolInputGrad.apply(grad_grad_input, indices, ctx.input_size, ctx.memory_format, ctx.backend)
        return grad, None, None, None


class AvgPool(Function):
    """y[p] = Σ_{window p} x_pad / divisor[p].   Backward: δ[p]/divisor[p] spread over window p."""

    @staticmethod
    def forward(ctx, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend):
        ctx.options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend)
        ctx.input_size, ctx.memory_format = input.shape[2:], channels_last_format(input, include_3d=False)
        output = backends.op(backend, "avg_pool_forward")(
            input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        )
        return output.contiguous(memory_format=ctx.memory_format)

    @staticmethod
    def backward(ctx, grad_output):
        grad_input = AvgPoolInputGrad.apply(grad_output, ctx.input_size, *ctx.options)
        return (grad_input.contiguous(memory_format=ctx.memory_format),) + (None,) * 7


class AvgPoolInputGrad(Function):
    """dX = AvgPool's adjoint applied to δ.   Backward: AvgPool itself (the adjoint's adjoint).

    ``ceil_mode`` is kept only for that backward: with it, AvgPool of an input of
    ``input_size`` has δ's shape again.
    """

    @staticmethod
    def forward(ctx, grad_output, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend):
        ctx.options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, backend)
        return backends.op(backend, "avg_pool_backward")(
            grad_output, tuple(input_size), kernel_size, stride, padding, count_include_pad, divisor_override
        )

    @staticmethod
    def backward(ctx, grad_grad_input):
        return (AvgPool.apply(grad_grad_input, *ctx.options),) + (None,) * 8


class AdaptiveAvgPool(Function):
    """y = x ×_d A_d.   Backward: dX = δ ×_d A_dᵀ."""

    @staticmethod
    def forward(ctx, input, output_size, backend):
        ctx.input_size, ctx.backend = input.shape[2:], backend
        ctx.memory_format = channels_last_format(input, include_3d=False)
        output = backends.op(backend, "adaptive_avg_pool_forward")(input, tuple(output_size))
        return output.contiguous(memory_format=ctx.memory_format)

    @staticmethod
    def backward(ctx, grad_output):
        grad_input = AdaptiveAvgPoolInputGrad.apply(grad_output, ctx.input_size, ctx.backend)
        return grad_input.contiguous(memory_format=ctx.memory_format), None, None


class AdaptiveAvgPoolInputGrad(Function):
    """dX = δ ×_d A_dᵀ.   Backward: G ×_d A_d, the forward (transposing back)."""

    @staticmethod
    def forward(ctx, grad_output, input_size, backend):
        ctx.output_size, ctx.backend = grad_output.shape[2:], backend
        return backends.op(backend, "adaptive_avg_pool_backward")(grad_output, tuple(input_size))

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
