"""torch.autocast: each op returns the dtype its torch twin returns under the same autocast, with
values as close as that dtype allows, and fp32 parameters get fp32 gradients."""
import pytest
import torch
import torch.nn.functional as TF

import torchconv_impl
from torchconv_impl import functional as F
from support import DEVICE, TOLERANCES

AUTOCAST_DTYPES = [torch.bfloat16] + ([torch.float16] if DEVICE.type == "cuda" else [])


def _cases():
    """name → f(functional, x, w) for x (2, 3, 8, 8) and a conv weight w (2, 3, 3, 3)."""
    return {
        "conv2d": lambda f, x, w: f.conv2d(x, w, w[:, 0, 0, 0], padding=1),
        "conv1d": lambda f, x, w: f.conv1d(x.flatten(2), w[..., 0]),
        "conv3d": lambda f, x, w: f.conv3d(x.unsqueeze(2), w.unsqueeze(2)),
        "conv_transpose2d": lambda f, x, w: f.conv_transpose2d(x, w.transpose(0, 1), stride=2),
        "linear": lambda f, x, w: f.linear(x.flatten(1), w.reshape(2, 27).repeat(1, 8)[:, :192], w[:, 0, 0, 0]),
        "linear_no_bias": lambda f, x, w: f.linear(x.flatten(1), w.reshape(2, 27).repeat(1, 8)[:, :192]),
        "max_pool2d": lambda f, x, w: f.max_pool2d(x, 2),
        "max_pool3d": lambda f, x, w: f.max_pool3d(x.unsqueeze(2), (1, 2, 2)),
        "avg_pool2d": lambda f, x, w: f.avg_pool2d(x, 2),
        "avg_pool3d": lambda f, x, w: f.avg_pool3d(x.unsqueeze(2), (1, 2, 2)),
        "adaptive_avg_pool2d": lambda f, x, w: f.adaptive_avg_pool2d(x, 3),
        "adaptive_avg_pool3d": lambda f, x, w: f.adaptive_avg_pool3d(x.unsqueeze(2), 2),
        "adaptive_max_pool2d": lambda f, x, w: f.adaptive_max_pool2d(x, 3),
        "adaptive_max_pool3d": lambda f, x, w: f.adaptive_max_pool3d(x.unsqueeze(2), 2),
        "max_unpool2d": lambda f, x, w: f.max_unpool2d(*TF.max_pool2d(x.detach(), 2, return_indices=True), 2),
        "relu": lambda f, x, w: f.relu(x),
        "sigmoid": lambda f, x, w: f.sigmoid(x),
        "tanh": lambda f, x, w: f.tanh(x),
        "cross_entropy": lambda f, x, w: f.cross_entropy(x.flatten(1), torch.tensor([1, 4], device=x.device)),
        "cross_entropy_probabilities": lambda f, x, w: f.cross_entropy(x.flatten(1), x.flatten(1).detach().softmax(1)),
        "mse_loss": lambda f, x, w: f.mse_loss(x, x.detach().flip(0)),
    }


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("autocast_dtype", AUTOCAST_DTYPES, ids=str)
@pytest.mark.parametrize("name", list(_cases()))
def test_op_follows_torch_autocast_policy(name, autocast_dtype, input_dtype):
    """Under torch.autocast, each op's output dtype is torch's (conv and linear in the autocast
    dtype, losses in float32, the rest in their input's dtype), its value within that dtype's
    tolerance of torch's, and the gradients of float32 weights and inputs are float32 like torch's."""
    case = _cases()[name]
    x = torch.randn(2, 3, 8, 8, device=DEVICE).to(input_dtype).requires_grad_()
    w = torch.randn(2, 3, 3, 3, device=DEVICE, requires_grad=True)
    with torch.autocast(DEVICE.type, dtype=autocast_dtype):
        ours, theirs = case(F, x, w), case(TF, x, w)
    assert ours.dtype == theirs.dtype, f"{name}: ours {ours.dtype}, torch {theirs.dtype}"
    tolerance = TOLERANCES[ours.dtype if ours.dtype in (torch.bfloat16, torch.float16) else autocast_dtype]
    torch.testing.assert_close(ours.float(), theirs.float(), **tolerance)
    if ours.requires_grad:
        ours_grads = torch.autograd.grad(ours.float().sum(), [x, w], allow_unused=True)
        theirs_grads = torch.autograd.grad(theirs.float().sum(), [x, w], allow_unused=True)
        for ours_grad, theirs_grad in zip(ours_grads, theirs_grads):
            assert (ours_grad is None) == (theirs_grad is None)
            if ours_grad is not None:
                assert ours_grad.dtype == theirs_grad.dtype
                torch.testing.assert_close(ours_grad.float(), theirs_grad.float(), **TOLERANCES[autocast_dtype])


def test_converted_resnet18_under_autocast():
    """A converted torchvision resnet18 under autocast: its logits are in the autocast dtype as
    torch's, no further from the float32 logits than torch's own (in eval mode: bfloat16's
    rounding, amplified by train-mode batch norm over two samples, would swamp a comparison),
    and a training step gives every parameter a finite float32 gradient."""
    torchvision = pytest.importorskip("torchvision")
    twin = torchvision.models.resnet18(num_classes=10).to(DEVICE).eval()
    ours = torchconv_impl.convert(twin)
    x, target = torch.randn(4, 3, 32, 32, device=DEVICE), torch.tensor([3, 7, 0, 1], device=DEVICE)
    with torch.no_grad():
        exact = twin(x)
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            ours_logits, twin_logits = ours(x), twin(x)
    assert ours_logits.dtype == twin_logits.dtype == torch.bfloat16
    ours_error, twin_error = (ours_logits.float() - exact).abs().max(), (twin_logits.float() - exact).abs().max()
    assert ours_error <= 2 * twin_error + 1e-2, (ours_error, twin_error)
    ours.train()
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        loss = F.cross_entropy(ours(x), target)
    assert loss.dtype == torch.float32
    loss.backward()
    for name, parameter in ours.named_parameters():
        assert parameter.grad.dtype == torch.float32 and parameter.grad.isfinite().all(), name
