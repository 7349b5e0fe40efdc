"""CrossEntropyLoss and MSELoss: torch.nn's modules (options, buffers, state_dict) with our forward."""
from __future__ import annotations

from torch import nn

from .. import functional as F

__all__ = ["CrossEntropyLoss", "MSELoss"]


class CrossEntropyLoss(nn.CrossEntropyLoss):
    __doc__ = nn.CrossEntropyLoss.__doc__

    def forward(self, input, target):
        return F.cross_entropy(
            input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction, label_smoothing=self.label_smoothing
        )


class MSELoss(nn.MSELoss):
    __doc__ = nn.MSELoss.__doc__

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
