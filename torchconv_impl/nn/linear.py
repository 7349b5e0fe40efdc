"""Linear: torch.nn.Linear with our forward (constructor, parameters, init, state_dict from torch)."""
from __future__ import annotations

from torch import nn

from .. import functional as F
from ._constructor import TorchConstructor

__all__ = ["Linear"]


class Linear(TorchConstructor, nn.Linear):
    __doc__ = nn.Linear.__doc__

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)
