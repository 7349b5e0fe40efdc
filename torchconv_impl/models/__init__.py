"""Models built from torchconv_impl layers."""
from .lenet import LeNet5  # noqa: F401
