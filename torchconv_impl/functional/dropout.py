"""dropout and channel dropout (dropout1d/2d/3d) with torch.nn.functional's signatures.

The mask is drawn here — Bernoulli(1 − p) per element, or per (sample, channel) for the
channel variants — and scaled by 1/(1 − p); ``autograd.Dropout`` applies it in the forward
pass and reuses it in the backward pass.
"""
from __future__ import annotations

import warnings

from ..autograd.dropout import Dropout
from ..errors import ArgumentError, ArgumentNotImplementedError, check
from ._checks import check_float, check_number, check_tensor

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d"]


def _check(input, p, op: str) -> None:
    check_tensor(input, "input", op)
    check_number(p, "p", op)
    # torch raises ValueError with this message; ArgumentError is a ValueError.
    check(0.0 <= p <= 1.0, lambda: f"{op}: dropout probability p has to be between 0 and 1, but got {p}")


def _dropout(input, p, training, inplace, mask_shape, op: str):
    # As torch: nothing to drop returns the input itself (no copy, no graph node).
    if not training or p == 0 or input.numel() == 0:
        return input
    # torch draws the mask in the input's dtype: it has no Bernoulli kernel for complex dtypes
    # (NotImplementedError) and cannot cast the float draw to an integer one (RuntimeError).
    check_float(input, "input", op, ArgumentNotImplementedError if input.is_complex() else ArgumentError)
    if p == 1:
        scaled_mask = input.new_zeros(mask_shape)
    else:
        scaled_mask = input.new_empty(mask_shape).bernoulli_(1 - p).div_(1 - p)
    return Dropout.apply(input, scaled_mask, bool(inplace))


def _channel_dropout(input, p, training, inplace, leading_dims: int, op: str):
    """Drops whole channels: one mask value per index of the first ``leading_dims`` dims
    ((N, C) batched, (C,) unbatched), broadcast over the rest."""
    check(input.dim() >= leading_dims, lambda: f"{op}: channel dropout needs at least {leading_dims} dimensions, got a {input.dim()}-D input")
    mask_shape = (*input.shape[:leading_dims], *(1,) * (input.dim() - leading_dims))
    return _dropout(input, p, training, inplace, mask_shape, op)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability p and scales the rest by 1/(1 − p) when ``training``.

    See ``torch.nn.functional.dropout``.
    """
    _check(input, p, "dropout")
    return _dropout(input, p, training, inplace, input.shape, "dropout")


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, L) or unbatched (C, L). See ``torch.nn.functional.dropout1d``."""
    _check(input, p, "dropout1d")
    check(
        input.dim() in (2, 3),
        lambda: f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got a {input.dim()}-D input of size {list(input.shape)}",
    )
    return _channel_dropout(input, p, training, inplace, input.dim() - 1, "dropout1d")


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, H, W). See ``torch.nn.functional.dropout2d``.

    As torch (and with its warnings): a 3-D input is read as (N, C, L), not as unbatched
    (C, H, W), and other ranks are accepted, deprecated, with (N, C) the first two dims.
    """
    _check(input, p, "dropout2d")
    if input.dim() not in (3, 4):
        warnings.warn(
            f"dropout2d: received a {input.dim()}-D input, which torch deprecates; use dropout, "
            "or a 3-D or 4-D input for channel-wise dropout.",
            stacklevel=2,
        )
    elif input.dim() == 3:
        warnings.warn(
            "dropout2d: received a 3-D input and, as torch, treats it as (N, C, L): channel-wise 1-D dropout. "
            "Use dropout1d for that, or a 4-D input.",
            stacklevel=2,
        )
    return _channel_dropout(input, p, training, inplace, 2, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, D, H, W) or unbatched (C, D, H, W). See ``torch.nn.functional.dropout3d``.

    As torch (and with its warning), other ranks are accepted, deprecated, and read as unbatched.
    """
    _check(input, p, "dropout3d")
    if input.dim() not in (4, 5):
        warnings.warn(
            f"dropout3d: received a {input.dim()}-D input, which torch deprecates; use dropout, "
            "or a 4-D or 5-D input for channel-wise dropout.",
            stacklevel=2,
        )
    return _channel_dropout(input, p, training, inplace, 2 if input.dim() == 5 else 1, "dropout3d")
