"""torch.nn's constructors with torch's argument errors raised as ArgumentErrors."""
from __future__ import annotations

import functools

import torch

from ..errors import ArgumentError, argument_error_like


class TorchConstructor:
    """Base for modules built by their torch.nn twin's constructor (or their own over it): a
    bad argument that torch's constructor rejects raises an ArgumentError of torch's class
    (ValueError, TypeError, ...), its message prefixed with the module's name.

    Each subclass's ``__init__`` is wrapped with ``functools.wraps``, so ``inspect.signature``
    and ``help()`` still show the constructor's own parameters.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not issubclass(cls, torch.nn.Module):
            return  # a mixin (the shared forward of Conv1d/2d/3d): its modules wrap the constructor
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            try:
                init(self, *args, **kwargs)
            except (ArgumentError, torch.OutOfMemoryError):
                raise
            except (TypeError, ValueError, RuntimeError) as error:
                raise argument_error_like(error)(f"{type(self).__name__}: {error}") from error

        cls.__init__ = __init__
