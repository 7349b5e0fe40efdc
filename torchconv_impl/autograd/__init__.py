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
