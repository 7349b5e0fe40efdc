"""The reference backend: the seeds' formulas as plain tensor code, written to be read — no caches,
chunking or other tricks; any device. The CPU engine (``backends/cpu``) computes the same, faster."""
import torch

from .conv import conv_forward, conv_input_grad, conv_weight_grad  # noqa: F401
from .pool import (  # noqa: F401
    adaptive_avg_pool_backward, adaptive_avg_pool_forward, adaptive_max_pool_forward, avg_pool_backward, avg_pool_forward,
    max_pool_backward, max_pool_forward, max_unpool_backward, max_unpool_forward,
)


def relu_input_grad(grad_output, output):
    """dX = where(y ≤ 0, 0, δ) for y = max(x, 0): torch's threshold_backward."""
    return torch.where(output <= 0, 0, grad_output)
