"""autograd Functions: forward and hand-derived backward (and forward-mode tangent) of every
layer; ``_function.Function`` says how they meet torch.func and torch.compile."""
from .activation import *  # noqa: F401,F403
from .conv import Convolution, ConvolutionTranspose, ConvolutionWeightGrad  # noqa: F401
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403

