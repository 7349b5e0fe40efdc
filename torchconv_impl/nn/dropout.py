"""Dropout and Dropout1d/2d/3d: torch.nn's modules (which check p at construction) with our forward."""
from __future__ import annotations

from torch import nn

from .. import functional as F
from ._constructor import TorchConstructor

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class Dropout(TorchConstructor, nn.Dropout):
    __doc__ = nn.Dropout.__doc__

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(TorchConstructor, nn.Dropout1d):
    __doc__ = nn.Dropout1d.__doc__

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(TorchConstructor, nn.Dropout2d):
    __doc__ = nn.Dropout2d.__doc__

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(TorchConstructor, nn.Dropout3d):
    __doc__ = nn.Dropout3d.__doc__

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)
