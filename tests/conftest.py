import os

import pytest
import torch

# Without a GPU the Triton backend runs in Triton's interpreter on CPU tensors. The flag is
# read when a kernel is decorated, so it must be set before any Triton kernel is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
