"""convert(model): put torchconv_impl's layers in place of torch.nn's in any model.

Every class in ``torchconv_impl.nn`` subclasses the torch.nn class of the same name and only
replaces its computation, so converting a layer is changing its class: configuration,
parameters, buffers, hooks, training mode, device and dtype all stay as they are (and
``isinstance(layer, torch.nn.Conv2d)`` still holds). The table of counterparts is read from
``torchconv_impl.nn`` at each call, so every layer family there is converted without being
listed here.
"""
from __future__ import annotations

import copy
import inspect

import torch

from . import nn as ours
from .errors import check

__all__ = ["convert"]


def _counterparts() -> dict[type, type]:
    """torch.nn class → our class, for each class in torchconv_impl.nn that subclasses its torch.nn namesake."""
    table = {}
    for name, cls in vars(ours).items():
        twin = getattr(torch.nn, name, None)
        if isinstance(cls, type) and isinstance(twin, type) and cls is not twin and issubclass(cls, twin):
            table[twin] = cls
    return table


def _reexported_torch_classes() -> tuple[type, ...]:
    """torch.nn's containers and utilities that torchconv_impl.nn re-exports: they do no layer math."""
    return tuple(cls for name, cls in vars(ours).items() if isinstance(cls, type) and getattr(torch.nn, name, None) is cls)


def _add_our_options(module: torch.nn.Module, cls: type, twin: type) -> None:
    """Options torch lacks are keyword-only arguments that our __init__ adds to torch's and stores
    under their own name (Conv's ``connection_table``); a layer from torch gets their defaults."""
    twin_parameters = inspect.signature(twin.__init__).parameters
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if (
            parameter.kind is parameter.KEYWORD_ONLY
            and parameter.default is not parameter.empty
            and name not in twin_parameters
            and not hasattr(module, name)
        ):
            setattr(module, name, parameter.default)


def _left_to_torch(module: torch.nn.Module, our_classes: tuple[type, ...], harmless: tuple[type, ...]) -> bool:
    """A torch.nn layer (or a subclass of one) that still computes with torch."""
    if isinstance(module, our_classes):
        return False
    return any(
        cls.__module__.startswith("torch.nn.") and cls is not torch.nn.Module and cls not in harmless
        for cls in type(module).__mro__
    )


def convert(model: torch.nn.Module, inplace: bool = False, report: bool = False):
    """Swap every torch.nn layer of ``model`` that torchconv_impl implements for ours.

    A layer is converted when its type is exactly a torch.nn class with a counterpart in
    ``torchconv_impl.nn`` (``type(m) is torch.nn.Conv2d``): our layers are left as they are,
    and so are subclasses of torch's layers, whose overrides a swap could silently change.
    Layers without a counterpart (BatchNorm, …) keep computing with torch.

    Args:
        model: any ``torch.nn.Module``, itself converted too if it is such a layer.
        inplace: convert ``model`` itself (its parameters stay the same objects, so an
            optimizer built on them keeps working); by default a deep copy is converted and
            ``model`` is untouched.
        report: also return the qualified names (as in ``named_modules``; ``""`` is
            ``model`` itself) of the torch.nn layers left computing with torch.

    Returns:
        The converted model, or ``(model, left)`` with ``report=True``.
    """
    check(isinstance(model, torch.nn.Module), f"convert: expected model to be a torch.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    counterparts = _counterparts()
    for module in model.modules():
        twin = type(module)
        cls = counterparts.get(twin)
        if cls is not None:
            module.__class__ = cls
            _add_our_options(module, cls, twin)
    if not report:
        return model
    our_classes, harmless = tuple(counterparts.values()), _reexported_torch_classes()
    left = [name for name, module in model.named_modules() if _left_to_torch(module, our_classes, harmless)]
    return model, left
