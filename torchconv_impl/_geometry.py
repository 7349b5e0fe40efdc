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

    def transposed_output_size(self, input_size, kernel_size, output_padding) -> tuple[int, ...]:
        """The transposed convolution's output size, the largest whose convolution has
        ``input_size`` windows, less what ``output_padding`` leaves out of that choice:
        (i − 1)·s − pad_lo − pad_hi + d·(k − 1) + output_padding + 1."""
        return tuple(
            (i - 1) * s - lo - hi + d * (k - 1) + extra + 1
            for i, s, (lo, hi), d, k, extra in zip(input_size, self.stride, self.padding, self.dilation, kernel_size, output_padding)
        )


def same_padding(kernel_size, dilation) -> tuple[tuple[int, int], ...]:
    """torch's padding='same': total d·(k−1) per dimension, the odd one out on the high side."""
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel_size, dilation))


@dataclass(frozen=True)
class PoolGeometry:
    """A pooling window per spatial dimension: size k, stride s, symmetric padding p, dilation d
    (1 for average pooling), and whether a partial last window counts (``ceil_mode``)."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool

    def output_size(self, input_size) -> tuple[int, ...]:
        """torch's window count per dim: ⌊(i + 2p − d(k−1) − 1 [+ s−1 if ceil]) / s⌋ + 1, where
        ceil mode drops a last window that would start in the right padding."""
        sizes = []
        for i, k, s, p, d in zip(input_size, self.kernel_size, self.stride, self.padding, self.dilation):
            size = (i + 2 * p - d * (k - 1) - 1 + (s - 1 if self.ceil_mode else 0)) // s + 1
            if self.ceil_mode and (size - 1) * s >= i + p:
                size -= 1
            sizes.append(size)
        return tuple(sizes)

    def window_padding(self, input_size) -> tuple[tuple[int, int], ...]:
        """(low, high) padding per dim after which the windows tile exactly ``output_size``:
        p low; high, whatever makes the input end where the last window ends — more than p in
        ceil mode, negative (a crop) when no window reaches the input's tail."""
        return tuple(
            (p, (o - 1) * s + d * (k - 1) + 1 - i - p)
            for i, o, k, s, p, d in zip(input_size, self.output_size(input_size), self.kernel_size, self.stride, self.padding, self.dilation)
        )


def adaptive_window(position: int, input_length: int, output_length: int) -> tuple[int, int]:
    """torch's adaptive window ``position`` of ``output_length`` over ``input_length``
    elements: [⌊p·L/O⌋, ⌈(p+1)·L/O⌉)."""
    return position * input_length // output_length, -(-(position + 1) * input_length // output_length)


def longest_adaptive_window(input_length: int, output_length: int) -> int:
    """A bound on the length of torch's adaptive windows: L/O when O divides L, else below
    L/O + 2, as ⌈(p+1)·L/O⌉ − ⌊p·L/O⌋ < (p+1)·L/O + 1 − p·L/O + 1. With the lengths swapped,
    a bound on how many windows hold one element."""
    return input_length // output_length if input_length % output_length == 0 else input_length // output_length + 2


def prod(values) -> int:
    return math.prod(values)
