"""Drop-in replacements for torch.nn layers: same signatures, parameters and state_dict."""
from .activation import *  # noqa: F401,F403
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: F401
from .dropout import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403

# torch.nn's containers and shape utilities, which do no layer math, so that models can be
# written against torchconv_impl.nn alone (convert() counts them as nothing left to convert).
from torch.nn import (  # noqa: F401,E402
    Flatten,
    Identity,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterDict,
    ParameterList,
    Sequential,
    Unflatten,
)
