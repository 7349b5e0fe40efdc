"""Which memory format a Function returns: torch keeps channels_last for its own layers."""
from __future__ import annotations

import torch


def channels_last_format(*tensors: torch.Tensor, include_3d: bool = True) -> torch.memory_format:
    """channels_last (4-d) or channels_last_3d (5-d) when any of ``tensors`` is stored that way
    (and not also plain contiguous), otherwise contiguous_format. ``include_3d=False`` for the
    layers whose 3-d torch kernels return contiguous tensors whatever the input's layout."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d} if include_3d else {4: torch.channels_last}
    for tensor in tensors:
        memory_format = formats.get(tensor.dim())
        if memory_format is not None and not tensor.is_contiguous() and tensor.is_contiguous(memory_format=memory_format):
            return memory_format
    return torch.contiguous_format
