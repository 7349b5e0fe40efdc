"""Strided-view helpers shared by the CPU engine's convolution and pooling: padding, window
views, the arithmetic of row-major planes (where a kernel offset starts in a plane), reusable
scratch buffers, and the finiteness test that guards float shortcuts.

A plane of padded size S' is stored row-major, so moving one step along spatial dim d moves
T_d = ∏_{e>d} S'_e elements; a kernel offset j (dilation dil) then starts Σ_d j_d·dil_d·T_d
elements after its window's first element. Both convolution (im2col, col2im) and pooling
(per-offset planes, flat argmax indices) are built on these numbers.
"""
from __future__ import annotations

import cmath
import functools
import itertools
import threading

import torch

from ..._geometry import ConvGeometry, prod


def pad(x: torch.Tensor, padding, value=0) -> torch.Tensor:
    """Pad with ``value`` (negative: crop) each spatial dimension by its (low, high) pair."""
    if all(lo == 0 and hi == 0 for lo, hi in padding):
        return x
    flat = [p for lo_hi in reversed(padding) for p in lo_hi]  # torch.nn.functional.pad wants the last dim first
    return torch.nn.functional.pad(x, flat, value=value)


def windows(x: torch.Tensor, kernel_size, geometry: ConvGeometry, value=0) -> torch.Tensor:
    """im2col as a view: (N, C, *S) → (N, C, *P, *k), element [n, c, p, j] = x_pad[n, c, p·s + j·d].

    Nothing is copied except the padding (filled with ``value``).
    """
    return _sliding(pad(x, geometry.padding, value), kernel_size, geometry.stride, geometry.dilation)


def _sliding(x: torch.Tensor, kernel_size, stride, dilation) -> torch.Tensor:
    """``Tensor.unfold`` cuts each spatial dimension into windows of extent d·(k−1)+1 every s
    elements; keeping every d-th element of a window applies the dilation."""
    for dim, (k, s, d) in enumerate(zip(kernel_size, stride, dilation)):
        x = x.unfold(2 + dim, d * (k - 1) + 1, s)[..., ::d]
    return x


class Scratch(threading.local):
    """Reusable CPU buffers, one per thread, purpose and dtype, for the matrices that live
    only inside one computation: the im2col matrix (``"cols"``), the (O, N·L) rows of the
    forward's product or of δ (``"rows"``), and max pooling's per-offset planes (``"planes"``);
    and (``zeros``) buffers kept zero where their caller never writes, such as δ's rows with
    gap columns (``"delta rows"``).

    The im2col matrix is K times the input. Freshly allocated blocks of a megabyte or more
    often go back to the OS when freed, so a call would pay a page fault per 4 KiB of them —
    measured as several times the cost of filling them. Reusing one buffer per purpose (grown
    to the largest size seen, as Caffe's col_buffer did) avoids that. On GPUs the caching
    allocator already does this, so the buffers are CPU-only.
    """

    def __init__(self):
        self.buffers = {}  # (purpose, dtype) → flat buffer
        self.views = {}  # (purpose, dtype, shape) → the view last handed out: reused, as views cost ops
        self.zeroed = {}  # (purpose, dtype, shape, written) → a buffer zero wherever callers never write

    def get(self, purpose: str, shape, like: torch.Tensor) -> torch.Tensor:
        if like.device.type != "cpu":
            return torch.empty(shape, dtype=like.dtype, device=like.device)
        shape = tuple(shape)
        view = self.views.get((purpose, like.dtype, shape))
        if view is not None:
            return view
        buffer = self.buffers.get((purpose, like.dtype))
        if buffer is None or buffer.numel() < prod(shape):
            buffer = self.buffers[(purpose, like.dtype)] = torch.empty(prod(shape), dtype=like.dtype)
            self.views = {key: v for key, v in self.views.items() if key[:2] != (purpose, like.dtype)}
        if len(self.views) >= 64:  # shapes that keep changing (varying lengths): no point keeping them
            self.views.clear()
        view = self.views[(purpose, like.dtype, shape)] = buffer[: prod(shape)].view(shape)
        return view

    def zeros(self, purpose: str, shape, like: torch.Tensor, written) -> torch.Tensor:
        """A zero-filled buffer of its own per (purpose, dtype, shape, ``written``), for a caller
        that writes the same positions (described by the hashable ``written``) on every call:
        the rest stays zero, so it is filled once rather than on every call. The least recently
        used buffers are dropped beyond 64 of them or 64 MiB."""
        if like.device.type != "cpu":
            return torch.zeros(shape, dtype=like.dtype, device=like.device)
        key = (purpose, like.dtype, tuple(shape), written)
        buffer = self.zeroed.pop(key, None)
        if buffer is None:
            buffer = torch.zeros(shape, dtype=like.dtype)
            while self.zeroed and (len(self.zeroed) >= 64 or sum(map(_bytes, self.zeroed.values())) + _bytes(buffer) > 64 << 20):
                del self.zeroed[next(iter(self.zeroed))]  # dicts keep insertion order: the oldest use first
        self.zeroed[key] = buffer  # (re)inserted last: the most recent use
        return buffer


def _bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


scratch = Scratch()


def plane_strides(padded_size) -> list[int]:
    """T_d = ∏_{e>d} S'_e: how far one step along dim d moves in a row-major plane of ``padded_size``."""
    return [prod(padded_size[d + 1:]) for d in range(len(padded_size))]


def offset_steps(padded_size, dilation) -> list[int]:
    """How far one kernel step along dim d moves in the row-major plane: dil_d·T_d."""
    return [d * t for d, t in zip(dilation, plane_strides(padded_size))]


@functools.lru_cache(maxsize=256)
def offset_starts(kernel_size, steps) -> list[int]:
    """Where each kernel offset j (row-major) starts in the padded plane: Σ_d j_d·steps_d
    (``steps`` from ``offset_steps``). Cached: a network meets the same shapes every step."""
    return [sum(j * step for j, step in zip(offset, steps)) for offset in itertools.product(*map(range, kernel_size))]


def all_finite(t: torch.Tensor) -> bool:
    """Whether every element is finite (a sum overflowing to inf only answers False); real or complex."""
    return cmath.isfinite(t.detach().sum().item())
