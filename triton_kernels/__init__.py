"""Triton GPU kernels: installed as torchconv_impl.triton_kernels (never as a top-level triton_kernels)."""
