"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998) built from torchconv_impl layers — or,
with ``impl="torch"``, the identical network from torch.nn layers, its twin for comparison.

    input 1@32×32 → C1 6@28×28 (5×5 conv) → S2 6@14×14 (2×2 pool)
                  → C3 16@10×10 (5×5 conv, feature-map selection) → S4 16@5×5 (2×2 pool)
                  → C5 120@1×1 (5×5 conv) → F6 84 → output 10

The input is 32×32: MNIST's 28×28 digits padded by 2 pixels of background on each side, as
in the paper. The padding belongs to the data (pad the raw image, then normalise, so that the
border has the background's value); the model does not pad.

Departures from 1998, all documented options: S2/S4 are parameter-free pooling (the paper's
subsampling had a trainable coefficient and bias per map); the activation is plain tanh (the
paper used 1.7159·tanh(2x/3)) or ReLU; the output is a linear layer trained with softmax
cross-entropy (the paper's Euclidean RBF units are not reproduced).

Both impls have the same module names and the same state_dict keys, so a checkpoint of one
loads into the other. The state_dict carries the model options (``_extra_state``), and loading
it into a LeNet5 built with other options raises instead of silently giving a network whose
weights do not fit its activation or pooling; ``LeNet5.from_checkpoint`` builds the model the
checkpoint describes.
"""
from __future__ import annotations

import os
from typing import IO

import torch
from torch import nn as torch_nn

from .. import nn as ours_nn
from ..errors import check

__all__ = ["LeNet5", "LECUN1998_C3_TABLE", "c3_connection_table", "num_trainable_parameters"]

# LeNet-5's C3 feature-map selection (the paper's Table I): rows = S2 maps 0-5, columns = C3
# maps 0-15, "X" = C3 map sees that S2 map. Maps 0-5 see 3 contiguous S2 maps, 6-11 see 4
# contiguous, 12-14 see 4 non-contiguous, 15 sees all 6: 60 connections.
LECUN1998_C3_TABLE = (
    "X   XXX  XXXX XX",
    "XX   XXX  XXXX X",
    "XXX   XXX  X XXX",
    " XXX  XXXX  X XX",
    "  XXX  XXXX XX X",
    "   XXX  XXXX XXX",
)

ACTIVATIONS = ("tanh", "relu")
POOLINGS = ("avg", "max")
C3_CONNECTIONS = ("lecun1998", "full")
IMPLS = ("ours", "torch")


def c3_connection_table(c3_connections: str = "lecun1998") -> torch.Tensor | None:
    """C3's connection table as Conv2d wants it, bool (out_channels=16, in_channels=6) — the
    paper's table transposed — or None for full connections."""
    if c3_connections == "full":
        return None
    return torch.tensor([[mark == "X" for mark in row] for row in LECUN1998_C3_TABLE]).T.contiguous()


class MaskedConv2d(torch_nn.Conv2d):
    """torch.nn.Conv2d with a connection table: the torch twin of our ``Conv2d(connection_table=)``.

    Convolves with weight·mask, so masked weights act as zero and get a zero gradient. The mask
    is a bool buffer named ``connection_table``, as in ours, so the state_dicts match.
    """

    def __init__(self, *args, connection_table, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("connection_table", torch.as_tensor(connection_table, dtype=torch.bool))
        with torch.no_grad():
            self.weight.mul_(self._mask())

    def _mask(self):
        return self.connection_table[:, :, None, None].to(self.weight.dtype)

    def forward(self, input):
        return self._conv_forward(input, self.weight * self._mask(), self.bias)

    def extra_repr(self):
        return super().extra_repr() + ", connection_table=True"


def _layers(impl: str):
    """The layer classes of one impl: (Conv2d, masked Conv2d, Linear, {activation}, {pooling})."""
    if impl == "ours":
        nn = ours_nn
        return nn.Conv2d, nn.Conv2d, nn.Linear, {"tanh": nn.Tanh, "relu": nn.ReLU}, {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
    nn = torch_nn
    return nn.Conv2d, MaskedConv2d, nn.Linear, {"tanh": nn.Tanh, "relu": nn.ReLU}, {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(torch_nn.Module):
    """LeNet-5 for 1×32×32 inputs (MNIST padded by 2), 10 logits out.

    Args:
        activation: ``"tanh"`` (1998) or ``"relu"``.
        pooling: ``"avg"`` (1998's subsampling, here without parameters) or ``"max"``.
        c3_connections: ``"lecun1998"`` (the paper's feature-map selection, 1,516 C3
            parameters) or ``"full"`` (every C3 map sees all 6 S2 maps, 2,416 parameters).
        impl: ``"ours"`` (torchconv_impl layers) or ``"torch"`` (torch.nn layers, the twin).
    """

    def __init__(self, activation: str = "tanh", pooling: str = "avg", c3_connections: str = "lecun1998", impl: str = "ours"):
        super().__init__()
        for name, value, allowed in (
            ("activation", activation, ACTIVATIONS),
            ("pooling", pooling, POOLINGS),
            ("c3_connections", c3_connections, C3_CONNECTIONS),
            ("impl", impl, IMPLS),
        ):
            check(value in allowed, f"LeNet5: expected {name} to be one of {allowed}, got {value!r}")
        self.options = dict(activation=activation, pooling=pooling, c3_connections=c3_connections)
        self.impl = impl
        conv, masked_conv, linear, activations, poolings = _layers(impl)
        table = c3_connection_table(c3_connections)
        # Ours fuses a ReLU into each conv's epilogue (Conv2d(activation="relu")): same result,
        # one pass and one autograd node fewer. The twin applies torch.nn.ReLU after the conv.
        fused = dict(activation="relu") if impl == "ours" and activation == "relu" else {}
        self.c1 = conv(1, 6, 5, **fused)
        self.s2 = poolings[pooling](2)
        self.c3 = conv(6, 16, 5, **fused) if table is None else masked_conv(6, 16, 5, connection_table=table, **fused)
        self.s4 = poolings[pooling](2)
        self.c5 = conv(16, 120, 5, **fused)
        self.f6 = linear(120, 84)
        self.output = linear(84, 10)
        self.activation = activations[activation]()

    def feature_maps(self, input: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output, by layer name (activations applied after c1, c3, c5, f6)."""
        act = self.activation
        maps = {}
        maps["c1"] = x = self._conv_then_activation(self.c1, input)
        maps["s2"] = x = self.s2(x)
        maps["c3"] = x = self._conv_then_activation(self.c3, x)
        maps["s4"] = x = self.s4(x)
        maps["c5"] = x = self._conv_then_activation(self.c5, x).flatten(1)
        maps["f6"] = x = act(self.f6(x))
        maps["output"] = self.output(x)
        return maps

    def _conv_then_activation(self, conv, input):
        output = conv(input)
        return output if getattr(conv, "activation", None) else self.activation(output)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.feature_maps(input)["output"]

    def num_trainable_parameters(self) -> int:
        """Trainable parameters, counting only the unmasked weights of C3 (60,806 for the
        1998 table: 156 + 1,516 + 48,120 + 10,164 + 850)."""
        return num_trainable_parameters(self)

    def get_extra_state(self) -> dict[str, str]:
        return dict(self.options)

    def set_extra_state(self, state: dict[str, str]) -> None:
        """Called by load_state_dict with the state_dict's options: they must be this model's."""
        if state != self.options:
            raise RuntimeError(
                f"LeNet5.load_state_dict: the state_dict is of a LeNet5 with {_describe(state)}, this model has "
                f"{_describe(self.options)}; build LeNet5({_describe(state)}) or use LeNet5.from_checkpoint"
            )

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike | IO[bytes] | dict, impl: str = "ours", map_location=None) -> "LeNet5":
        """The model a checkpoint describes, with its weights, options and dtype: ``checkpoint``
        is a state_dict of LeNet5, a training checkpoint holding one under ``"model"``
        (torchconv_impl.training), or a path or file of either. Files load with
        ``torch.load(weights_only=True)``: one holding anything but tensors and plain
        containers (a pickled callable, say) is refused, never run."""
        if not isinstance(checkpoint, dict):
            checkpoint = torch.load(checkpoint, map_location=map_location, weights_only=True)
        state = checkpoint.get("model", checkpoint)
        if not isinstance(state, dict) or "_extra_state" not in state:
            raise RuntimeError("LeNet5.from_checkpoint: expected a LeNet5 state_dict, which carries its model options under "
                               f"'_extra_state', got one with keys {list(state)[:8]}")
        model = cls(**state["_extra_state"], impl=impl).to(state["c1.weight"])
        model.load_state_dict(state)
        return model

    def twin(self) -> "LeNet5":
        """The same network in the other impl, with a copy of this one's weights."""
        other = LeNet5(**self.options, impl="torch" if self.impl == "ours" else "ours")
        other.load_state_dict(self.state_dict())
        return other.to(next(self.parameters()))

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}, {_describe(self.options)}"


def _describe(options: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


def num_trainable_parameters(module: torch_nn.Module) -> int:
    """Number of trainable parameters of ``module``; a conv with a ``connection_table``
    counts only the weights its table keeps (the full weight tensor still exists)."""
    total = 0
    for sub in module.modules():
        table = getattr(sub, "connection_table", None)
        for name, p in sub.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if name == "weight" and table is not None:
                total += int(table.sum()) * p[0, 0].numel()
            else:
                total += p.numel()
    return total
