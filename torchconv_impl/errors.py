"""The exceptions torchconv_impl raises for bad arguments, and ``check``, which raises them.

Every bad argument raises an ``ArgumentError``. Each is also an instance of the class torch
raises for the same mistake, so that ``except TypeError:`` (or ``IndexError``,
``NotImplementedError``) written for torch catches ours too:

* ``ArgumentError``: a ValueError and a RuntimeError (torch's class for most bad values
  and shapes);
* ``ArgumentTypeError``: also a TypeError (an argument of the wrong type);
* ``ArgumentIndexError``: also an IndexError (a dimension or class index out of range);
* ``ArgumentNotImplementedError``: also a NotImplementedError (a dtype the operation has
  no kernel for).
"""
from __future__ import annotations

__all__ = [
    "ArgumentError", "ArgumentTypeError", "ArgumentIndexError", "ArgumentNotImplementedError", "check", "argument_error_like",
]


class ArgumentError(ValueError, RuntimeError):
    """Bad arguments to a torchconv_impl layer.

    A ValueError, and also a RuntimeError so that code written against torch, which raises
    RuntimeError for the same inputs, keeps catching it.
    """


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong type: a list where a Tensor goes, a bool where an int goes."""


class ArgumentIndexError(ArgumentError, IndexError):
    """An index out of range: a class index outside [0, C), a dimension the input has not."""


class ArgumentNotImplementedError(ArgumentError, NotImplementedError):
    """A dtype the operation, as torch's, has no kernel for (a bool convolution, say)."""


def check(condition: bool, message, error: type[ArgumentError] = ArgumentError) -> None:
    """Raise ``error(message)`` unless ``condition``. ``message`` may be a function returning
    the text (as in ``torch._check``), so hot paths format it only on failure."""
    if not condition:
        raise error(message() if callable(message) else message)


def argument_error_like(error: Exception) -> type[ArgumentError]:
    """The ArgumentError class that is also an instance of ``error``'s class: for re-raising an
    exception torch raised for a bad argument as ours, catchable as torch's was."""
    for torch_class, ours in (
        (NotImplementedError, ArgumentNotImplementedError), (TypeError, ArgumentTypeError), (IndexError, ArgumentIndexError),
    ):
        if isinstance(error, torch_class):
            return ours
    return ArgumentError
