"""Conv1d/2d/3d and ConvTranspose1d/2d/3d: torch.nn's modules with our forward.

Each class subclasses its torch.nn twin for the constructor, parameters, default
initialisation, state_dict and repr — so code that checks ``isinstance(m, torch.nn.Conv2d)``
(initialisers, torchvision) keeps working — and replaces only the computation:
torch's ``_conv_forward`` (which calls the native convolution) is never reached.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import functional as F
from ..errors import argument_error_like, check
from ._constructor import TorchConstructor

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class _ConvNd(TorchConstructor):
    """Forward for Conv1d/2d/3d, with two options torch.nn has not, both keyword-only:

    ``connection_table`` is a boolean (out_channels × in_channels/groups) mask — LeNet-5's
    "feature map selection": output map o sees input map c only where mask[o, c] is True.
    The layer uses weight·mask, so masked weights are zero in the forward pass and receive a
    zero gradient; they are also zeroed at construction. The mask is a buffer, saved in the
    state_dict.

    ``activation="relu"`` makes the layer compute relu(conv(x) + b) as one operation
    (``functional.conv_bias_relu``): the ReLU runs in the convolution's epilogue, on the GPU
    inside the kernel, on the CPU on the GEMM's result before it is laid out — one pass and
    one autograd node fewer than Conv2d followed by ReLU, with the same result.
    """

    # torch's parameters spelled out (not *args) so that inspect.signature and help() show them.
    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
        padding_mode="zeros", device=None, dtype=None, *, connection_table=None, activation=None,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups,
            bias=bias, padding_mode=padding_mode, device=device, dtype=dtype,
        )
        if connection_table is not None:
            mask = torch.as_tensor(connection_table, dtype=torch.bool, device=self.weight.device)
            check(
                mask.shape == self.weight.shape[:2],
                f"{type(self).__name__}: expected connection_table of shape {tuple(self.weight.shape[:2])} "
                f"(out_channels, in_channels/groups), got {tuple(mask.shape)}",
            )
            self.register_buffer("connection_table", mask)
            with torch.no_grad():
                self.weight.mul_(self._mask())
        else:
            self.connection_table = None
        check(activation in (None, "relu"), f"{type(self).__name__}: expected activation to be None or 'relu', got {activation!r}")
        self.activation = activation

    def _mask(self):
        return self.connection_table.view(*self.connection_table.shape, *(1,) * len(self.kernel_size)).to(self.weight.dtype)

    def _conv_forward(self, input, weight, bias):
        if self.connection_table is not None:
            weight = weight * self._mask()
        padding = self.padding
        if self.padding_mode != "zeros":
            # reflect/replicate/circular: pad explicitly, then convolve without padding (as torch does).
            input = nn.functional.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        conv = F.conv_bias_relu if self.activation == "relu" else _CONV[len(self.kernel_size)]
        return conv(input, weight, bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self):
        extra = super().extra_repr()
        if self.connection_table is not None:
            extra += ", connection_table=True"
        return extra + f", activation={self.activation!r}" if self.activation else extra


class Conv1d(_ConvNd, nn.Conv1d):
    __doc__ = nn.Conv1d.__doc__


class Conv2d(_ConvNd, nn.Conv2d):
    __doc__ = nn.Conv2d.__doc__


class Conv3d(_ConvNd, nn.Conv3d):
    __doc__ = nn.Conv3d.__doc__


class _ConvTransposeNd(TorchConstructor):
    """Forward for ConvTranspose1d/2d/3d, with torch's ``output_size`` argument."""

    def forward(self, input, output_size=None):
        nd = len(self.kernel_size)
        # torch's own shape arithmetic for output_size → output_padding; its ValueError names
        # output_size and the valid range, re-raised as our ArgumentError of the same class.
        try:
            output_padding = self._output_padding(
                input, output_size, self.stride, self.padding, self.kernel_size, nd, self.dilation
            )
        except (TypeError, ValueError) as error:
            raise argument_error_like(error)(f"{type(self).__name__}: {error}") from None
        return _CONV_TRANSPOSE[nd](
            input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )


class ConvTranspose1d(_ConvTransposeNd, nn.ConvTranspose1d):
    __doc__ = nn.ConvTranspose1d.__doc__


class ConvTranspose2d(_ConvTransposeNd, nn.ConvTranspose2d):
    __doc__ = nn.ConvTranspose2d.__doc__


class ConvTranspose3d(_ConvTransposeNd, nn.ConvTranspose3d):
    __doc__ = nn.ConvTranspose3d.__doc__
