"""The reference backend: every seam operation in plain tensor ops, on any device."""
from .activation import relu_input_grad  # noqa: F401
from .conv import conv_forward, conv_input_grad, conv_weight_grad  # noqa: F401
from .pool import *  # noqa: F401,F403
