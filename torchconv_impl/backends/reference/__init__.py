"""The reference backend: the seeds' formulas as plain tensor code, to be read.

Each function computes its docstring's formula directly — im2col as a view and one matrix
product, pooling over window views — with no caches, chunking or other tricks, on any device.
The CPU engine (``backends/cpu``) computes the same results faster; both pass the same tests.
"""
import torch

from .conv import conv_forward, conv_input_grad, conv_weight_grad  # noqa: F401
from .pool import (  # noqa: F401
    adaptive_avg_pool_backward, adaptive_avg_pool_forward, adaptive_max_pool_forward, avg_pool_backward, avg_pool_forward,
    max_pool_backward, max_pool_forward, max_unpool_backward, max_unpool_forward,
)


def relu_input_grad(grad_output: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """dX = δ where y = max(x, 0) > 0, else 0: torch's threshold_backward, where(y ≤ 0, 0, δ)."""
    return torch.where(output <= 0, 0, grad_output)
