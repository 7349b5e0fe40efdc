"""Models built from torchconv_impl layers."""
