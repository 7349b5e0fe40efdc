"""The Triton backend: the seam's convolution and pooling operations as the kernels of
``torchconv_impl.triton_kernels`` (their docstrings state each kernel's index mapping).

Tensors must be on a CUDA device — or, with TRITON_INTERPRET=1 set before Triton is first
imported, anywhere: Triton's interpreter then runs the same kernels on CPU tensors (slowly;
that is how the tests run without a GPU). Integer pooling and the operations not defined here
(max unpooling) are the CPU engine's (``backends.implementation`` falls back to it).
"""
from __future__ import annotations

import torch

try:
    import triton  # noqa: F401
except ImportError as error:
    raise ImportError("the 'triton' backend needs Triton (pip install triton); use the 'cpu' or 'reference' backend without it") from error

from ..triton_kernels import conv as conv_kernels, depthwise as depthwise_kernels, pool as pool_kernels
from ..triton_kernels._common import DOT_DTYPES, INTERPRET
from .._geometry import ConvGeometry, PoolGeometry
from ..errors import ArgumentError, check
from .cpu import pool as cpu_pool

_INTERPRETED = bool(INTERPRET)

# The kernels each operation launches. ``torchconv_impl.ops`` makes every operation named here a
# ``torch.library.triton_op``, which torch.compile traces down to these launches.
KERNELS = {
    "conv_forward": [conv_kernels.conv_forward_kernel, depthwise_kernels.depthwise_forward_kernel],
    "conv_input_grad": [conv_kernels.conv_input_grad_kernel, depthwise_kernels.depthwise_input_grad_kernel],
    "conv_weight_grad": [conv_kernels.conv_weight_grad_kernel, depthwise_kernels.depthwise_weight_grad_kernel],
    "max_pool_forward": [pool_kernels.max_pool_forward_kernel],
    "adaptive_max_pool_forward": [pool_kernels.max_pool_forward_kernel],
    "max_pool_backward": [pool_kernels.max_pool_backward_kernel],
    "avg_pool_forward": [pool_kernels.avg_pool_forward_kernel],
    "adaptive_avg_pool_forward": [pool_kernels.avg_pool_forward_kernel],
    "avg_pool_backward": [pool_kernels.avg_pool_backward_kernel],
    "adaptive_avg_pool_backward": [pool_kernels.avg_pool_backward_kernel],
}


def _check_tensors(op: str, *tensors) -> None:
    """Kernels need CUDA tensors (CPU ones only under the interpreter) of a dtype tl.dot takes."""
    for t in tensors:
        if t is None:
            continue
        if not (t.is_cuda or _INTERPRETED):
            raise ArgumentError(
                f"triton backend ({op}): got a tensor on {t.device}; Triton kernels run on CUDA tensors, or on CPU ones "
                "only in Triton's interpreter (set TRITON_INTERPRET=1 before importing triton). "
                "For CPU tensors use the 'cpu' backend."
            )
        check(t.dtype in DOT_DTYPES, lambda: f"triton backend ({op}): expected a dtype in {DOT_DTYPES}, got {t.dtype}")


def _channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` (N, C, *S) stored channels-last, (N, *S, C) in memory: itself if it already is.

    The convolution kernels reduce over channels: channels-last operands give them contiguous,
    vectorised loads of the reduction dimension. From NCHW the same kernels load one element
    at a time, and compiled for sm_90 their main loops run 2–4× the instructions per MMA and
    spill (docs/results.md); one copy of each operand costs a single pass over it.
    """
    order = (0, *range(2, tensor.dim()), 1)
    stored = tensor.permute(order)
    if not stored.is_contiguous():
        stored = stored.contiguous()
    return stored.permute(*(order.index(d) for d in range(tensor.dim())))


def _kernels(channels_per_group: int):
    """The kernel family for a convolution: one input channel per group (depthwise layers,
    single-channel inputs) reduces over the taps alone, too short for a GEMM tile."""
    return depthwise_kernels if channels_per_group == 1 else conv_kernels


def conv_forward(input, weight, bias, geometry: ConvGeometry, activation=None):
    """y = x ⋆ W + b, optionally with ReLU fused in the epilogue (``activation="relu"``);
    computed channels-last (the operator returns y in the layout the caller's Function asks)."""
    check(activation in (None, "relu"), lambda: f"conv_forward: expected activation to be None or 'relu', got {activation!r}")
    _check_tensors("conv_forward", input, weight, bias)
    kernels = _kernels(weight.shape[1])
    return kernels.conv_forward(_channels_last(input), _channels_last(weight), bias, geometry, activation)


def conv_input_grad(grad_output, weight, input_size, bias, geometry: ConvGeometry):
    """dX = δ ⋆ᵀ W (+ b): the transposed convolution (by stride phase, or gathered per input
    position for one channel per group); channels-last."""
    _check_tensors("conv_input_grad", grad_output, weight, bias)
    kernels = _kernels(weight.shape[1])
    return kernels.conv_input_grad(_channels_last(grad_output), _channels_last(weight), tuple(input_size), bias, geometry)


def conv_weight_grad(input, grad_output, kernel_size, geometry: ConvGeometry):
    """dW = x ⋆ δ: a reduction over N·P, split-K; channels-last operands."""
    _check_tensors("conv_weight_grad", input, grad_output)
    kernels = _kernels(input.shape[1] // geometry.groups)
    return kernels.conv_weight_grad(_channels_last(input), _channels_last(grad_output), tuple(kernel_size), geometry)


def max_pool_forward(input, geometry: PoolGeometry):
    if not input.is_floating_point():
        return cpu_pool.max_pool_forward(input, geometry)
    _check_tensors("max_pool_forward", input)
    return pool_kernels.window_max(
        input, geometry.output_size(input.shape[2:]), geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation
    )


def max_pool_backward(grad_output, indices, input_size, windows):
    """δ gathered from the windows that may hold each input position (deterministic, no
    atomics). Indices of no known windows (``windows`` None: max unpooling's adjoint) are the
    CPU engine's scatter-add."""
    if windows is None:
        return cpu_pool.max_pool_backward(grad_output, indices, input_size, windows)
    _check_tensors("max_pool_backward", grad_output)
    if windows == "adaptive":
        return pool_kernels.max_pool_backward(grad_output, indices, tuple(input_size))
    return pool_kernels.max_pool_backward(
        grad_output, indices, tuple(input_size), windows.kernel_size, windows.stride, windows.padding, windows.dilation
    )


def avg_pool_forward(input, geometry: PoolGeometry, count_include_pad, divisor_override):
    if not input.is_floating_point():
        return cpu_pool.avg_pool_forward(input, geometry, count_include_pad, divisor_override)
    _check_tensors("avg_pool_forward", input)
    return pool_kernels.window_average(
        input, geometry.output_size(input.shape[2:]), geometry.kernel_size, geometry.stride, geometry.padding,
        count_include_pad, divisor_override,
    )


def avg_pool_backward(grad_output, input_size, geometry: PoolGeometry, count_include_pad, divisor_override):
    _check_tensors("avg_pool_backward", grad_output)
    return pool_kernels.window_average_backward(
        grad_output, tuple(input_size), geometry.kernel_size, geometry.stride, geometry.padding, count_include_pad, divisor_override
    )


def adaptive_max_pool_forward(input, output_size):
    if not input.is_floating_point():
        return cpu_pool.adaptive_max_pool_forward(input, output_size)
    _check_tensors("adaptive_max_pool_forward", input)
    return pool_kernels.window_max(input, tuple(output_size))


def adaptive_avg_pool_forward(input, output_size):
    _check_tensors("adaptive_avg_pool_forward", input)
    return pool_kernels.window_average(input, tuple(output_size))


def adaptive_avg_pool_backward(grad_output, input_size):
    _check_tensors("adaptive_avg_pool_backward", grad_output)
    return pool_kernels.window_average_backward(grad_output, tuple(input_size))
