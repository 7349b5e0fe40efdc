"""The reference backend: the seeds' formulas as plain tensor code to be read; no caches, no tricks."""
from .conv import *  # noqa: F401,F403 (conv_forward, conv_input_grad, conv_weight_grad, relu_input_grad)
from .pool import *  # noqa: F401,F403 (max/avg/adaptive pooling forward and backward, max unpooling)
