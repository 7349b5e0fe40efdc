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

from ._geometry import ntuple
from .backends.reference.conv import pad
from .errors import check
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


def input_grad_by_rotation(grad_output, weight, input_size, stride=1, padding=0, dilation=1, groups=1):
    """dX of a convolution the way the lecture notes derive it, step by step (batched δ).

    1. zero-insert δ: s − 1 zeros between neighbours, per dimension;
    2. rotate W by 180° and swap its in/out channels within each group;
    3. pad by d·(k−1) − padding on the low side (negative: crop) and by whatever the high side
       needs to give back exactly ``input_size`` (the stride's remainder, output_padding);
    4. correlate ("full" convolution) with stride 1 and the same dilation.

    The backends compute the same sum as the transpose of the forward's matrix form, col2im of
    δ·W (``backends/reference/conv.py: conv_input_grad``), which multiplies none of the inserted
    or padded zeros; the tests check that both agree.
    """
    nd = weight.dim() - 2
    op = "input_grad_by_rotation"
    stride, padding, dilation = ntuple(stride, nd, "stride", op), ntuple(padding, nd, "padding", op), ntuple(dilation, nd, "dilation", op)
    n, out_channels = grad_output.shape[:2]
    kernel_size = weight.shape[2:]
    spread = grad_output.new_zeros(n, out_channels, *((p - 1) * s + 1 for p, s in zip(grad_output.shape[2:], stride)))
    spread[(..., *(slice(None, None, s) for s in stride))] = grad_output
    rotated = weight.reshape(groups, out_channels // groups, *weight.shape[1:]).transpose(1, 2)
    rotated = rotated.reshape(-1, out_channels // groups, *kernel_size).flip(list(range(2, 2 + nd)))
    pads = []
    for i, length, k, d, p in zip(input_size, spread.shape[2:], kernel_size, dilation, padding):
        low = d * (k - 1) - p
        pads.append((low, i + d * (k - 1) - low - length))
    return _conv(pad(spread, pads), rotated, None, 1, 0, dilation, groups, nd=nd, op="input_grad_by_rotation")
