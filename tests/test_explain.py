"""convolve() against numpy/torch oracles, and conv_matrix(): y = M·x and dX = Mᵀ·δ."""
import numpy as np
import pytest
import torch

import torchconv_impl
import torchconv_impl.functional as F
from support import assert_close, no_native_ops
from torchconv_impl.explain import conv_matrix, input_grad_by_rotation


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("sizes", [(7, 3), (7, 4), (3, 6), (5, 5), (1, 1)])
def test_convolve_1d_matches_numpy(mode, sizes):
    n, k = sizes
    if mode == "same" and n < k:
        pytest.skip("numpy's 'same' takes the longer operand's size; scipy's (ours) the input's")
    a, b = torch.randn(n, dtype=torch.float64), torch.randn(k, dtype=torch.float64)
    expected = torch.from_numpy(np.convolve(a.numpy(), b.numpy(), mode))
    assert_close(F.convolve(a, b, mode), expected)


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("shapes", [((6, 7), (3, 2)), ((4, 5, 6), (2, 3, 3))])
def test_convolve_nd_is_correlation_with_flipped_kernel(mode, shapes):
    """Oracle: torch's correlation of the zero-padded input with the flipped kernel."""
    input_shape, kernel_shape = shapes
    nd = len(input_shape)
    x = torch.randn(input_shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(kernel_shape, dtype=torch.float64, requires_grad=True)
    full = torch.nn.functional.pad(x, [p for k in reversed(kernel_shape) for p in (k - 1, k - 1)])
    torch_conv = getattr(torch.nn.functional, f"conv{nd}d")
    expected = torch_conv(full[None, None], w.flip(list(range(nd)))[None, None])[0, 0]
    if mode == "valid":
        expected = expected[tuple(slice(k - 1, s) for k, s in zip(kernel_shape, input_shape))]
    elif mode == "same":
        expected = expected[tuple(slice((k - 1) // 2, (k - 1) // 2 + s) for k, s in zip(kernel_shape, input_shape))]
    with no_native_ops():
        ours = F.convolve(x, w, mode)
    assert ours.shape == expected.shape
    assert_close(ours, expected)
    delta = torch.randn_like(ours)
    for got, want in zip(torch.autograd.grad(ours, (x, w), delta), torch.autograd.grad(expected, (x, w), delta)):
        assert_close(got, want)
    assert torch.autograd.gradcheck(lambda a, b: F.convolve(a, b, mode), (x, w))


def test_convolve_errors():
    with pytest.raises(torchconv_impl.ArgumentError, match="mode"):
        F.convolve(torch.randn(5), torch.randn(3), "middle")
    with pytest.raises(torchconv_impl.ArgumentError, match="same number of dimensions"):
        F.convolve(torch.randn(5, 5), torch.randn(3), "full")
    with pytest.raises(torchconv_impl.ArgumentError, match="at least as large"):
        F.convolve(torch.randn(5, 2), torch.randn(3, 3), "valid")


@pytest.mark.parametrize(
    "weight_shape, input_size, kwargs",
    [
        ((1, 1, 3, 3), (1, 3, 3), dict(padding=1)),  # the 9 × 9 matrix of seed 001
        ((4, 1, 3), (2, 7), dict(stride=2, dilation=2, groups=2)),
        ((3, 2, 2, 3), (2, 5, 4), dict(stride=(2, 1), padding=(1, 0))),
        ((2, 1, 2, 2, 2), (1, 3, 3, 3), dict(padding="same")),
    ],
)
def test_conv_matrix_forward_and_transpose_backward(weight_shape, input_size, kwargs):
    w = torch.randn(weight_shape, dtype=torch.float64)
    M = conv_matrix(w, input_size, **kwargs)
    x = torch.randn(input_size, dtype=torch.float64, requires_grad=True)
    nd = len(weight_shape) - 2
    y = getattr(torch.nn.functional, f"conv{nd}d")(x, w, **kwargs)
    assert M.shape == (y.numel(), x.numel())
    assert_close(M @ x.flatten(), y.flatten())
    delta = torch.randn_like(y)
    ours = getattr(F, f"conv{nd}d")(x, w, **kwargs)
    assert_close(torch.autograd.grad(ours, x, delta)[0].flatten(), M.T @ delta.flatten())


def test_conv_matrix_errors():
    with pytest.raises(torchconv_impl.ArgumentError, match="input_size"):
        conv_matrix(torch.randn(1, 1, 3, 3), (3, 3))


@pytest.mark.parametrize(
    "input_shape, weight_shape, kwargs",
    [
        ((2, 4, 9), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
        ((1, 3, 7, 8), (4, 3, 3, 2), dict(stride=(3, 2), padding=(2, 1))),  # stride does not divide
        ((1, 2, 5, 5, 4), (2, 1, 2, 3, 2), dict(stride=2, dilation=(1, 2, 1), groups=2)),
    ],
)
def test_input_grad_by_rotation_is_the_backward(input_shape, weight_shape, kwargs):
    """The notes' zero-insert/rotate/full-correlation form equals torch's input gradient and ours."""
    nd = len(weight_shape) - 2
    x = torch.randn(input_shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(weight_shape, dtype=torch.float64)
    y = getattr(torch.nn.functional, f"conv{nd}d")(x, w, **kwargs)
    delta = torch.randn_like(y)
    expected = torch.autograd.grad(y, x, delta)[0]
    assert_close(input_grad_by_rotation(delta, w, input_shape[2:], **kwargs), expected)
    ours = getattr(F, f"conv{nd}d")(x, w, **kwargs)
    assert_close(torch.autograd.grad(ours, x, delta)[0], expected)
