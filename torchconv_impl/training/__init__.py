"""Training LeNet-5 on MNIST: what scripts/train_lenet.py, scripts/lenet_noise_floor.py and the
tests share.

    data         MNIST as padded, normalised tensors; each epoch's order and shifts
    loop         the Recipe, the training loop, evaluation, checkpoints, ours against the twin,
                 and ``train``, the whole run that train_lenet.py starts
    plots        the PNG plots of a run (needs matplotlib)
    noise_floor  how far two float32 runs end apart through rounding alone
    cli          the flags the two scripts share

Needs the ``train`` extra (torchvision, tqdm, matplotlib); ``import torchconv_impl`` does not
import it.
"""
from .data import MNIST_FILES, MNIST_MEAN, MNIST_STD, epoch_plan, load_mnist, mnist_root, translate  # noqa: F401
from .loop import (  # noqa: F401
    IMPL_LABELS, Recipe, Run, StopRequested, compare, evaluate, finish_epoch, init_distributed, load_checkpoint,
    resumed_recipe, save_checkpoint, summary, train, train_epoch,
)
