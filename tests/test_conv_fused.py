"""conv_bias_relu: one operation equal to relu(conv(x, W, b)) in value and every gradient."""
import pytest
import torch

import torchconv_impl
import torchconv_impl.functional as F
from support import DEVICE, assert_close, grads, no_native_ops, record_calls

CASES = [
    ((2, 3, 9), (4, 3, 3), dict(stride=2, padding=1)),
    ((2, 4, 6, 7), (6, 2, 3, 2), dict(padding="same", groups=2)),
    ((3, 5, 5), (2, 3, 3, 3), dict(dilation=2, padding=2)),  # unbatched
    ((1, 2, 3, 4, 4), (3, 2, 2, 2, 2), dict(stride=(1, 2, 1))),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("input_shape, weight_shape, kwargs", CASES)
def test_matches_relu_of_torch_conv(backend, dtype, input_shape, weight_shape, kwargs):
    nd = len(weight_shape) - 2
    x = torch.randn(input_shape, dtype=dtype, device=DEVICE, requires_grad=True)
    w = torch.randn(weight_shape, dtype=dtype, device=DEVICE, requires_grad=True)
    b = torch.randn(weight_shape[0], dtype=dtype, device=DEVICE, requires_grad=True)
    expected = torch.relu(getattr(torch.nn.functional, f"conv{nd}d")(x, w, b, **kwargs))
    with no_native_ops():
        actual = F.conv_bias_relu(x, w, b, **kwargs)
    assert_close(actual, expected)
    assert (expected == 0).any() and (expected > 0).any(), "the case should exercise both sides of the ReLU"
    delta = torch.randn_like(expected)
    with no_native_ops():
        ours = grads(actual, (x, w, b), delta)
    for got, want in zip(ours, grads(expected, (x, w, b), delta)):
        assert_close(got, want)


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("special", [float("inf"), -float("inf"), float("nan")], ids=str)
def test_non_finite_delta_where_relu_is_zero(backend, with_bias, special):
    """δ = ±inf or NaN where y ≤ 0 contributes nothing, exactly as torch's threshold_backward:
    every gradient stays finite and equal to torch's. (The CPU path multiplies δ by a float
    mask, which would turn inf·0 into NaN, so it must notice and take the exact route.)"""
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, device=DEVICE, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, device=DEVICE, requires_grad=True) if with_bias else None
    inputs = (x, w) if b is None else (x, w, b)
    expected = torch.relu(torch.nn.functional.conv2d(x, w, b, padding=1))
    with no_native_ops():
        actual = F.conv_bias_relu(x, w, b, padding=1)
    delta = torch.randn_like(expected)
    delta[expected == 0] = special
    with no_native_ops():
        ours = grads(actual, inputs, delta)
    for got, want in zip(ours, grads(expected, inputs, delta)):
        assert got.isfinite().all()
        assert_close(got, want)


def test_gradcheck_and_gradgradcheck():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def function(x, w, b):
        return F.conv_bias_relu(x, w, b, stride=(2, 1), padding=1, groups=2)

    assert torch.autograd.gradcheck(function, (x, w, b))
    assert torch.autograd.gradgradcheck(function, (x, w, b))


def test_rejects_bad_weight():
    with pytest.raises(torchconv_impl.ArgumentError, match="weight"):
        F.conv_bias_relu(torch.randn(1, 2, 5, 5), torch.randn(3, 2))


def test_triton_backend_fuses_bias_and_relu(monkeypatch):
    """The Triton backend hands the bias and the ReLU to the kernel, whose epilogue applies
    them (interpreter on CPU without a GPU): results against torch."""
    pytest.importorskip("triton")
    from torchconv_impl.backends import triton as triton_backend

    kernel_calls = record_calls(monkeypatch, triton_backend.conv_kernels, "conv_forward")
    x = torch.randn(2, 3, 6, 7, device=DEVICE, requires_grad=True)
    w = torch.randn(5, 3, 3, 3, device=DEVICE, requires_grad=True)
    b = torch.randn(5, device=DEVICE, requires_grad=True)
    torch.backends.cudnn.allow_tf32, allow_tf32 = False, torch.backends.cudnn.allow_tf32
    try:
        expected = torch.relu(torch.nn.functional.conv2d(x, w, b, padding=1))
        with torchconv_impl.use_backend("triton"), no_native_ops():
            actual = F.conv_bias_relu(x, w, b, padding=1)
            ours = grads(actual, (x, w, b), torch.ones_like(actual))
    finally:
        torch.backends.cudnn.allow_tf32 = allow_tf32
    # (input, weight, bias, geometry, activation): the forward only; the backward's convolutions have no epilogue
    assert [(args[2] is not None, args[4]) for args, _, _ in kernel_calls] == [(True, "relu")]
    assert_close(actual, expected)
    for got, want in zip(ours, grads(expected, (x, w, b), torch.ones_like(expected))):
        assert_close(got, want)
