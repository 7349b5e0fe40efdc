"""Convolution as a matrix, to see the seeds' argument in numbers.

A convolution is linear in its input, so y = M·x for a dense matrix M. Backpropagation
multiplies by the transpose: dX = Mᵀ·δ — which is exactly what the transposed convolution
computes (``torchconv_impl.autograd.conv.ConvolutionTranspose``)::

    >>> import torch, torchconv_impl.functional as F
    >>> from torchconv_impl.explain import conv_matrix
    >>> w = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    >>> M = conv_matrix(w, (1, 3, 3), padding=1)            # 9 × 9, the matrix of seed 001
    >>> x = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    >>> y = F.conv2d(x, w, padding=1)
    >>> torch.allclose(M @ x.flatten(), y.flatten())
    True
    >>> delta = torch.randn_like(y)
    >>> torch.allclose(torch.autograd.grad(y, x, delta)[0].flatten(), M.T @ delta.flatten())
    True
"""
from __future__ import annotations

import torch

from ._geometry import check
from .functional.conv import _conv


def conv_matrix(weight, input_size, stride=1, padding=0, dilation=1, groups=1):
    """The dense matrix M with conv(x).flatten() == M @ x.flatten() for one unbatched input.

    ``weight`` is a conv weight (out_channels, in_channels/groups, *kernel_size); ``input_size``
    is the unbatched input's (channels, *spatial) size; the other arguments are those of
    ``conv1d/2d/3d``. M has shape (out_channels·∏output_size, channels·∏input_size); column j is
    the layer's response to the j-th unit input (computed by our own forward pass).
    """
    nd = weight.dim() - 2
    check(1 <= nd <= 3, f"conv_matrix: expected weight to be 3-D, 4-D or 5-D, got {weight.dim()}-D")
    check(len(input_size) == nd + 1, f"conv_matrix: expected input_size (channels, *spatial) with {nd + 1} entries, got {tuple(input_size)}")
    units = torch.eye(torch.Size(input_size).numel(), dtype=weight.dtype, device=weight.device)
    responses = _conv(units.reshape(-1, *input_size), weight.detach(), None, stride, padding, dilation, groups, nd=nd, op="conv_matrix")
    return responses.reshape(units.shape[0], -1).T
