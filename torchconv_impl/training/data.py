"""MNIST as tensors, and each epoch's order and augmentation.

MNIST is loaded once into tensors — 28×28 digits padded by 2 pixels of background to 32×32
(the padding belongs to the data, see torchconv_impl.models.lenet), then normalised — and
iterated in a permutation seeded by (seed, epoch), each training digit moved by a random shift
of up to a few pixels. The plan of an epoch depends on nothing but (seed, epoch), so every impl
sees the same batches, also after a resume.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

# MNIST's pixel mean and standard deviation (training set, pixels in [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def has_mnist(folder: str | Path) -> bool:
    """Whether ``folder`` holds the four uncompressed MNIST files, as torchvision leaves them."""
    return all((Path(folder) / name).is_file() for name in MNIST_FILES)


def mnist_root(root: str | Path, download: bool = True) -> Path:
    """``root``, once it holds MNIST/raw/ with the four files (downloaded there if missing and
    ``download``). A root one level too deep — the MNIST/ or MNIST/raw/ folder itself — is an
    error naming the root meant; so is a failed download, which leaves behind none of the
    folders it made."""
    root = Path(root)
    if has_mnist(root / "MNIST" / "raw"):
        return root
    files = root / "raw" if has_mnist(root / "raw") else root if has_mnist(root) else None
    if files is not None:  # a root one level (or two) too deep
        meant = files.parent.parent
        where = f"here {meant}" if has_mnist(meant / "MNIST" / "raw") else "so move them into <root>/MNIST/raw/"
        raise FileNotFoundError(f"{root} is too deep: MNIST's files are in {files}, and the data root is the folder that "
                                f"holds MNIST/raw/, {where}")
    if not download:
        raise FileNotFoundError(f"MNIST not found: {root / 'MNIST' / 'raw'} lacks some of {', '.join(MNIST_FILES)}")
    from torchvision.datasets import MNIST

    raw = (root / "MNIST" / "raw").absolute()
    missing = [folder for folder in (raw, *raw.parents) if not folder.exists()]
    made = missing[-1] if missing else None  # the outermost folder the download will make
    try:
        MNIST(root, train=True, download=True)
    except Exception as error:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        reason = " ".join(str(error).split())[:300]
        raise FileNotFoundError(
            f"MNIST not found under {root / 'MNIST' / 'raw'} and the download failed ({reason}); put "
            f"{', '.join(MNIST_FILES)} (or their .gz) there, or use a root that holds MNIST/raw/") from None
    return root


def load_mnist(root: str | Path, train: bool, subset: int | None = None, dtype=torch.float32, device="cpu",
               download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as (images N×1×32×32 normalised, labels N), the first ``subset`` of the training
    or test set (all if None). ``root`` holds MNIST/raw/ (see mnist_root)."""
    from torchvision.datasets import MNIST

    dataset = MNIST(mnist_root(root, download), train=train, download=False)
    images, labels = dataset.data[:subset], dataset.targets[:subset]
    # Pad the raw digit with background (0) before normalising, so the border looks like background.
    images = torch.nn.functional.pad(images.to(dtype) / 255, (2, 2, 2, 2))
    images = ((images - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
    return images.to(device), labels.to(device)


def epoch_plan(n: int, seed: int, epoch: int, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's sample order and per-sample (dy, dx) shifts in [-max_shift, max_shift],
    drawn from a generator seeded by (seed, epoch): the same for every impl, and resumable."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    return torch.from_numpy(order), torch.from_numpy(shifts)


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Moves image i (N×1×H×W) by shifts[i] = (dy, dx) pixels, cyclically: the digits sit in
    2 pixels of padding, so shifts of up to 2 wrap only background around."""
    height, width = images.shape[-2:]
    rows = (torch.arange(height, device=images.device) - shifts[:, :1]) % height  # (N, H)
    cols = (torch.arange(width, device=images.device) - shifts[:, 1:]) % width  # (N, W)
    batch = torch.arange(len(images), device=images.device)[:, None, None]
    return images[:, 0][batch, rows[:, :, None], cols[:, None, :]].unsqueeze(1)
