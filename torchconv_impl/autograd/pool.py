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

Forward mode: every Function here but max pooling is linear in its first input, so its tangent
is the Function applied to that input's tangent (``_linear_tangent``). Max pooling's tangent is
the input's tangent read at the argmax: ẏ[p] = ẋ[indices[p]], a gather (MaxUnpoolInputGrad).

Layouts follow torch: results and gradients of 2-d pooling are channels_last when the input
is; of 3-d pooling, only max pooling keeps channels_last_3d (torch's other 3-d pools return
contiguous tensors). The index-routing Functions take that layout as ``memory_format``.
"""
from __future__ import annotations

import torch

from .. import ops
from .._geometry import PoolGeometry
from ._function import Function
from ._layout import channels_last_format


def _route_to_argmax(ctx, grad_output) -> torch.Tensor | None:
    """Max pooling's (and adaptive max pooling's) dX: δ scattered to the saved argmax."""
    if grad_output is None:  # y itself was not used
        return None
    (indices,) = ctx.saved_tensors
    return MaxPoolInputGrad.apply(grad_output, indices, ctx.input_size, ctx.windows, ctx.memory_format, ctx.backend)


def _linear_tangent(function):
    """The ``tangent`` of a Function linear in its first input: itself applied to that input's tangent."""

    def tangent(inputs, output, first_tangent, *_):
        return None if first_tangent is None else function.apply(first_tangent, *inputs[1:])

    return staticmethod(tangent)


def _argmax_tangent(memory_format):
    """Max pooling's ``tangent``: (ẋ at the saved argmax, no tangent for the indices)."""

    def tangent(inputs, outputs, input_tangent, *_):
        input, backend, (_, indices) = inputs[0], inputs[-1], outputs
        return MaxUnpoolInputGrad.apply(input_tangent, indices, memory_format(input), backend), None

    return staticmethod(tangent)


def _save_argmax(ctx, input, indices, windows, memory_format, backend) -> None:
    """What max pooling's backward needs: the argmax indices, the windows they came from, the
    input's size and layout, the backend. The indices are an output without a gradient; autograd is told not to build zero
    gradients for them (nor for an unused y), which would cost a fill of the indices' size."""
    ctx.save_for_backward(indices)
    ctx.mark_non_differentiable(indices)
    ctx.set_materialize_grads(False)
    ctx.input_size, ctx.windows, ctx.memory_format, ctx.backend = input.shape[2:], windows, memory_format, backend


class MaxPool(Function):
    """(y, indices) = max pooling of x.   Backward: dX = Σ_p δ[p] at indices[p]."""

    @staticmethod
    def forward(input, geometry: PoolGeometry, backend):
        return ops.max_pool_forward(input, geometry, channels_last_format(input), backend)

    @staticmethod
    def setup_context(ctx, inputs, outputs):
        _save_argmax(ctx, inputs[0], outputs[1], inputs[1], channels_last_format(inputs[0]), inputs[-1])

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        return _route_to_argmax(ctx, grad_output), None, None


class AdaptiveMaxPool(Function):
    """(y, indices) = max over torch's adaptive windows.   Backward: as MaxPool."""

    @staticmethod
    def forward(input, output_size, backend):
        memory_format = channels_last_format(input, include_3d=False)
        return ops.adaptive_max_pool_forward(input, output_size, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, outputs):
        _save_argmax(ctx, inputs[0], outputs[1], "adaptive", channels_last_format(inputs[0], include_3d=False), inputs[-1])

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        return _route_to_argmax(ctx, grad_output), None, None


class MaxPoolInputGrad(Function):
    """dX = scatter-add of δ at ``indices`` into zero planes of ``input_size``. ``windows``: the
    PoolGeometry the indices came from, "adaptive", or None (``ops.flatten_windows``).

    Linear in δ; its backward, for an incoming G shaped like dX: dδ[p] = G[indices[p]] (gather).
    """

    @staticmethod
    def forward(grad_output, indices, input_size, windows, memory_format, backend):
        return ops.max_pool_backward(grad_output, indices, input_size, windows, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, indices, _, _, ctx.memory_format, ctx.backend = inputs
        ctx.save_for_backward(indices)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        return MaxUnpoolInputGrad.apply(grad_grad_input, indices, ctx.memory_format, ctx.backend), None, None, None, None, None


class MaxUnpool(Function):
    """z = zeros of ``output_size`` with z[indices[p]] = x[p].   Backward: dX[p] = δ[indices[p]]."""

    @staticmethod
    def forward(input, indices, output_size, backend):
        memory_format = channels_last_format(input, include_3d=False)
        return ops.max_unpool_forward(input, indices, output_size, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, indices, _, ctx.backend = inputs
        ctx.save_for_backward(indices)
        ctx.memory_format = channels_last_format(input, include_3d=False)

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        return MaxUnpoolInputGrad.apply(grad_output, indices, ctx.memory_format, ctx.backend), None, None, None


class MaxUnpoolInputGrad(Function):
    """dX[p] = δ[indices[p]] (gather).   Backward (its adjoint): scatter-add, MaxPoolInputGrad."""

    @staticmethod
    def forward(grad_output, indices, memory_format, backend):
        return ops.max_unpool_backward(grad_output, indices, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        grad_output, indices, ctx.memory_format, ctx.backend = inputs
        ctx.save_for_backward(indices)
        ctx.input_size = grad_output.shape[2:]

    @staticmethod
    def backward(ctx, grad_grad_input):
        (indices,) = ctx.saved_tensors
        grad = MaxPoolInputGrad.apply(grad_grad_input, indices, ctx.input_size, None, ctx.memory_format, ctx.backend)
        return grad, None, None, None


class AvgPool(Function):
    """y[p] = Σ_{window p} x_pad / divisor[p].   Backward: δ[p]/divisor[p] spread over window p."""

    @staticmethod
    def forward(input, geometry: PoolGeometry, count_include_pad, divisor_override, backend):
        memory_format = channels_last_format(input, include_3d=False)
        return ops.avg_pool_forward(input, geometry, count_include_pad, divisor_override, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, ctx.geometry, ctx.count_include_pad, ctx.divisor_override, ctx.backend = inputs
        ctx.input_size, ctx.memory_format = input.shape[2:], channels_last_format(input, include_3d=False)

    @staticmethod
    def backward(ctx, grad_output):
        grad_input = AvgPoolInputGrad.apply(
            grad_output, ctx.input_size, ctx.geometry, ctx.count_include_pad, ctx.divisor_override, ctx.memory_format, ctx.backend
        )
        return grad_input, None, None, None, None


class AvgPoolInputGrad(Function):
    """dX = AvgPool's adjoint applied to δ.   Backward: AvgPool itself (the adjoint's adjoint)."""

    @staticmethod
    def forward(grad_output, input_size, geometry: PoolGeometry, count_include_pad, divisor_override, memory_format, backend):
        return ops.avg_pool_backward(grad_output, input_size, geometry, count_include_pad, divisor_override, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, _, ctx.geometry, ctx.count_include_pad, ctx.divisor_override, _, ctx.backend = inputs

    @staticmethod
    def backward(ctx, grad_grad_input):
        grad = AvgPool.apply(grad_grad_input, ctx.geometry, ctx.count_include_pad, ctx.divisor_override, ctx.backend)
        return grad, None, None, None, None, None, None


class AdaptiveAvgPool(Function):
    """y = x ×_d A_d.   Backward: dX = δ ×_d A_dᵀ."""

    @staticmethod
    def forward(input, output_size, backend):
        return ops.adaptive_avg_pool_forward(input, output_size, channels_last_format(input, include_3d=False), backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, _, ctx.backend = inputs
        ctx.input_size, ctx.memory_format = input.shape[2:], channels_last_format(input, include_3d=False)

    @staticmethod
    def backward(ctx, grad_output):
        return AdaptiveAvgPoolInputGrad.apply(grad_output, ctx.input_size, ctx.memory_format, ctx.backend), None, None


class AdaptiveAvgPoolInputGrad(Function):
    """dX = δ ×_d A_dᵀ.   Backward: G ×_d A_d, the forward (transposing back)."""

    @staticmethod
    def forward(grad_output, input_size, memory_format, backend):
        return ops.adaptive_avg_pool_backward(grad_output, input_size, memory_format, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        grad_output, _, _, ctx.backend = inputs
        ctx.output_size = grad_output.shape[2:]

    @staticmethod
    def backward(ctx, grad_grad_input):
        return AdaptiveAvgPool.apply(grad_grad_input, ctx.output_size, ctx.backend), None, None, None


MaxPool.tangent = _argmax_tangent(channels_last_format)
AdaptiveMaxPool.tangent = _argmax_tangent(lambda input: channels_last_format(input, include_3d=False))
for _linear in (MaxPoolInputGrad, MaxUnpool, MaxUnpoolInputGrad, AvgPool, AvgPoolInputGrad, AdaptiveAvgPool, AdaptiveAvgPoolInputGrad):
    _linear.tangent = _linear_tangent(_linear)


ops.differentiate_with(
    ops.max_pool_forward_operator, MaxPool,
    lambda input, kernel_size, stride, padding, dilation, ceil_mode, memory_format, backend:
        (input, ops.pool_geometry(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode), backend),
)
ops.differentiate_with(
    ops.adaptive_max_pool_forward, AdaptiveMaxPool,
    lambda input, output_size, memory_format, backend: (input, output_size, backend),
)
ops.differentiate_with(
    ops.max_pool_backward_operator, MaxPoolInputGrad,
    lambda grad_output, indices, input_size, kernel_size, stride, padding, dilation, ceil_mode, adaptive, memory_format, backend:
        (grad_output, indices, input_size, ops.unflatten_windows(kernel_size, stride, padding, dilation, ceil_mode, adaptive),
         memory_format, backend),
)
ops.differentiate_with(
    ops.max_unpool_forward, MaxUnpool,
    lambda input, indices, output_size, memory_format, backend: (input, indices, output_size, backend),
)
ops.differentiate_with(
    ops.max_unpool_backward, MaxUnpoolInputGrad,
    lambda grad_output, indices, memory_format, backend: (grad_output, indices, memory_format, backend),
)
ops.differentiate_with(
    ops.avg_pool_forward_operator, AvgPool,
    lambda input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, memory_format, backend:
        (input, ops.pool_geometry(kernel_size, stride, padding, ceil_mode=ceil_mode), count_include_pad, divisor_override, backend),
)
ops.differentiate_with(
    ops.avg_pool_backward_operator, AvgPoolInputGrad,
    lambda grad_output, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, memory_format, backend:
        (grad_output, input_size, ops.pool_geometry(kernel_size, stride, padding, ceil_mode=ceil_mode), count_include_pad,
         divisor_override, memory_format, backend),
)
ops.differentiate_with(
    ops.adaptive_avg_pool_forward, AdaptiveAvgPool,
    lambda input, output_size, memory_format, backend: (input, output_size, backend),
)
ops.differentiate_with(
    ops.adaptive_avg_pool_backward, AdaptiveAvgPoolInputGrad,
    lambda grad_output, input_size, memory_format, backend: (grad_output, input_size, memory_format, backend),
)


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
