"""ReLU, Sigmoid, Tanh: torch.nn's modules with our forward."""
from __future__ import annotations

from torch import nn

from .. import functional as F

__all__ = ["ReLU", "Sigmoid", "Tanh"]


class ReLU(nn.ReLU):
    __doc__ = nn.ReLU.__doc__

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)


class Sigmoid(nn.Sigmoid):
    __doc__ = nn.Sigmoid.__doc__

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(nn.Tanh):
    __doc__ = nn.Tanh.__doc__

    def forward(self, input):
        return F.tanh(input)
