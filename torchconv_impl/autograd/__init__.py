"""autograd Functions: forward and hand-derived backward of every layer."""
from .activation import *  # noqa: F401,F403
from .conv import Convolution, ConvolutionTranspose, ConvolutionWeightGrad  # noqa: F401
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
