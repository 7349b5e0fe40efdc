"""torchconv_impl: CNN layers as autograd Functions with hand-derived backward passes."""
from . import autograd, functional, nn  # noqa: F401
from . import explain, models  # noqa: F401 (after nn, which models builds on)
from .errors import ArgumentError, ArgumentIndexError, ArgumentNotImplementedError, ArgumentTypeError  # noqa: F401
from .convert import convert  # noqa: F401
from .backends import get_backend, set_backend, use_backend  # noqa: F401

__version__ = "0.1.0"
