"""Shape arithmetic shared by every layer: one place that turns torch's argument forms
(int, tuple, 'same', 'valid') into explicit per-dimension numbers, and checks them."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import ArgumentTypeError, check


def ntuple(value, n: int, name: str, op: str) -> tuple[int, ...]:
    """An int or a length-n sequence of ints, as a length-n tuple (torch's `_ntuple`). As in
    torch, a value of another type is a TypeError and a sequence of another length is not."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (tuple, list, torch.Size)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        if len(value) == 1:
            return tuple(value) * n
        check(len(value) == n, lambda: f"{op}: expected {name} to be an int or a tuple of {n} ints, got {tuple(value)}")
        return tuple(value)
    raise ArgumentTypeError(f"{op}: expected {name} to be an int or a tuple of {n} ints, got {value!r}")


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about a convolution but its tensors, per spatial dimension.

    ``padding`` holds a (low, high) pair per dimension: 'same' with an even kernel pads one
    more on the high side, as torch does. Hashable, so kernels can cache tuning per geometry.
    """

    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int

    def output_size(self, input_size, kernel_size) -> tuple[int, ...]:
        """Number of windows per dimension: ⌊(i + pad_lo + pad_hi − d·(k−1) − 1) / s⌋ + 1."""
        return tuple(
            (i + lo + hi - d * (k - 1) - 1) // s + 1
            for i, (lo, hi), d, k, s in zip(input_size, self.padding, self.dilation, kernel_size, self.stride)
        )


def same_padding(kernel_size, dilation) -> tuple[tuple[int, int], ...]:
    """torch's padding='same': total d·(k−1) per dimension, the odd one out on the high side."""
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel_size, dilation))


def pool_output_size(input_size, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[int, ...]:
    """torch's window count per dim: ⌊(S + 2p − d(k−1) − 1 [+ s−1 if ceil]) / s⌋ + 1, where
    ceil mode drops a last window that would start in the right padding."""
    sizes = []
    for i, k, s, p, d in zip(input_size, kernel_size, stride, padding, dilation):
        size = (i + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (size - 1) * s >= i + p:
            size -= 1
        sizes.append(size)
    return tuple(sizes)


def prod(values) -> int:
    return math.prod(values)
