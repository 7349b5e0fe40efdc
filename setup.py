from setuptools import find_packages, setup

# `triton_kernels/` is installed as `torchconv_impl.triton_kernels`: Triton's own repository
# ships a top-level package named `triton_kernels` (vLLM installs it), so ours must never be
# importable under that bare name, or one would shadow the other.
setup(
    name="torchconv_impl",
    version="0.1.0",
    description="CNN layers as autograd Functions with hand-derived backward; Triton kernels and a reference backend",
    python_requires=">=3.10",
    packages=[*find_packages(include=["torchconv_impl", "torchconv_impl.*"]), "torchconv_impl.triton_kernels"],
    package_dir={"torchconv_impl.triton_kernels": "triton_kernels"},
    # torch.library.register_fake / register_autograd (2.4), register_vmap (2.5) and triton_op (2.6)
    # define the operators.
    install_requires=["torch>=2.6", "numpy>=1.24"],
    extras_require={
        "triton": ["triton>=3.0"],
        # torchconv_impl.training and the scripts.
        "train": ["torchvision>=0.20", "tqdm>=4.60", "matplotlib>=3.6"],
        "test": ["pytest>=7", "torchvision>=0.20", "tqdm>=4.60", "matplotlib>=3.6", "triton>=3.0; platform_system == 'Linux'"],
    },
)
