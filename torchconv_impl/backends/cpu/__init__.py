"""The CPU engine: every seam operation tuned for CPUs — scratch buffers, batch chunks,
plane-span columns, float masks — in plain tensor ops, so it also runs on any other device.
The reference backend (``backends/reference``) states the same computations plainly."""
from .activation import relu_input_grad  # noqa: F401
from .conv import conv_forward, conv_input_grad, conv_weight_grad  # noqa: F401
from .pool import *  # noqa: F401,F403
