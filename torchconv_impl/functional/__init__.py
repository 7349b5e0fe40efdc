"""torch.nn.functional's signatures, computed by torchconv_impl's autograd Functions."""
from .activation import *  # noqa: F401,F403
from .conv import (  # noqa: F401
    conv1d, conv2d, conv3d, conv_bias_relu, conv_transpose1d, conv_transpose2d, conv_transpose3d, convolve,
)
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
