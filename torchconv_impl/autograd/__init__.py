"""autograd Functions: forward and hand-derived backward of every layer.

Each is written in ``setup_context`` form (forward without ctx), which torch.func needs, and
sets ``generate_vmap_rule``: under ``torch.func.vmap`` its forward and backward run on batched
tensors, which the operators of ``torchconv_impl.ops`` batch with their own rules.
"""
from .activation import *  # noqa: F401,F403
from .conv import Convolution, ConvolutionTranspose, ConvolutionWeightGrad  # noqa: F401
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403


def _cache_forward_signatures() -> None:
    """With ``setup_context`` defined, every ``apply`` binds its arguments to ``forward``'s
    signature, and ``inspect.signature`` rebuilds that signature on each call unless the
    function carries it as ``__signature__`` — a cost of the same order as a small layer's
    arithmetic on CPU. Each Function's forward carries it."""
    import inspect

    from torch.autograd import Function

    pending = list(Function.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(__name__) and "__signature__" not in vars(cls.forward):
            cls.forward.__signature__ = inspect.signature(cls.forward)


_cache_forward_signatures()
