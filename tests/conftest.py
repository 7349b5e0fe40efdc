import os

import pytest
import torch

# Without a GPU the Triton backend runs in Triton's interpreter on CPU tensors. The flag is
# read when a kernel is decorated, so it must be set before any Triton kernel is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torchconv_impl  # noqa: E402 (after the interpreter flag)
from support import BACKENDS  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Runs a test once per backend (see support.BACKENDS), with that backend selected."""
    with torchconv_impl.use_backend(request.param):
        yield request.param


@pytest.fixture
def exact_torch_oracle():
    """cuDNN's TF32 would make the float32 oracle itself inexact on a GPU."""
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        yield
