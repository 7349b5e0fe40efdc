"""Pooling modules: torch.nn's modules with our forward.

Each class subclasses its torch.nn twin for the constructor, attributes, repr and state_dict
(and ``isinstance`` checks), and replaces only ``forward``, which calls the functional op of
``torchconv_impl`` with the same arguments torch's forward passes to its own.
"""
from __future__ import annotations

from torch import nn

from .. import functional as F


class _MaxPoolNd:
    def forward(self, input):
        return self._pool(
            input, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
        )  # fmt: skip


class _MaxUnpoolNd:
    def forward(self, input, indices, output_size=None):
        return self._unpool(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class _AvgPoolNd:
    """Forward for AvgPool2d/3d (AvgPool1d, like avg_pool1d, has no divisor_override)."""

    def forward(self, input):
        return self._pool(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad, self.divisor_override
        )


class _AdaptiveAvgPoolNd:
    def forward(self, input):
        return self._pool(input, self.output_size)


class _AdaptiveMaxPoolNd:
    def forward(self, input):
        return self._pool(input, self.output_size, self.return_indices)


class MaxPool1d(_MaxPoolNd, nn.MaxPool1d):
    __doc__ = nn.MaxPool1d.__doc__
    _pool = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd, nn.MaxPool2d):
    __doc__ = nn.MaxPool2d.__doc__
    _pool = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd, nn.MaxPool3d):
    __doc__ = nn.MaxPool3d.__doc__
    _pool = staticmethod(F.max_pool3d)


class MaxUnpool1d(_MaxUnpoolNd, nn.MaxUnpool1d):
    __doc__ = nn.MaxUnpool1d.__doc__
    _unpool = staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd, nn.MaxUnpool2d):
    __doc__ = nn.MaxUnpool2d.__doc__
    _unpool = staticmethod(F.max_unpool2d)


class MaxUnpool3d(_MaxUnpoolNd, nn.MaxUnpool3d):
    __doc__ = nn.MaxUnpool3d.__doc__
    _unpool = staticmethod(F.max_unpool3d)


class AvgPool1d(nn.AvgPool1d):
    __doc__ = nn.AvgPool1d.__doc__

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class AvgPool2d(_AvgPoolNd, nn.AvgPool2d):
    __doc__ = nn.AvgPool2d.__doc__
    _pool = staticmethod(F.avg_pool2d)


class AvgPool3d(_AvgPoolNd, nn.AvgPool3d):
    __doc__ = nn.AvgPool3d.__doc__
    _pool = staticmethod(F.avg_pool3d)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd, nn.AdaptiveAvgPool1d):
    __doc__ = nn.AdaptiveAvgPool1d.__doc__
    _pool = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd, nn.AdaptiveAvgPool2d):
    __doc__ = nn.AdaptiveAvgPool2d.__doc__
    _pool = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd, nn.AdaptiveAvgPool3d):
    __doc__ = nn.AdaptiveAvgPool3d.__doc__
    _pool = staticmethod(F.adaptive_avg_pool3d)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd, nn.AdaptiveMaxPool1d):
    __doc__ = nn.AdaptiveMaxPool1d.__doc__
    _pool = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd, nn.AdaptiveMaxPool2d):
    __doc__ = nn.AdaptiveMaxPool2d.__doc__
    _pool = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd, nn.AdaptiveMaxPool3d):
    __doc__ = nn.AdaptiveMaxPool3d.__doc__
    _pool = staticmethod(F.adaptive_max_pool3d)


__all__ = [
    "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
]  # fmt: skip
