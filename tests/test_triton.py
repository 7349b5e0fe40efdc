"""The Triton backend against torch: every convolution and pooling option at least once, through
the public functional API under ``use_backend("triton")`` and by calling the kernels directly.

Without a GPU this runs Triton's interpreter on CPU tensors (conftest sets TRITON_INTERPRET=1),
which executes each program in numpy: shapes are tiny, but chosen so that channel counts and
N·P are not multiples of the 16-wide interpreter blocks and several tiles are in play.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as TF

triton = pytest.importorskip("triton")

import torchconv_impl  # noqa: E402
import torchconv_impl.functional as F  # noqa: E402
from support import DEVICE, assert_close, check_against_torch, record_calls, torch_conv_follows_memory_format  # noqa: E402
from torchconv_impl._geometry import ConvGeometry  # noqa: E402
from torchconv_impl.errors import ArgumentError  # noqa: E402
from torchconv_impl.backends import triton as triton_backend  # noqa: E402
from torchconv_impl.triton_kernels import _common, compiled, conv as conv_kernels, depthwise as depthwise_kernels, pool as pool_kernels  # noqa: E402


@pytest.fixture(autouse=True)
def _triton_ieee(monkeypatch):
    """Both sides in IEEE float32 (torch's convolution follows the same flag as ours)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    with torchconv_impl.use_backend("triton"):
        yield


def _leaf(shape, dtype, channels_last=False):
    t = torch.randn(shape, dtype=dtype, device=DEVICE)
    if channels_last:
        t = t.to(memory_format=torch.channels_last if t.dim() == 4 else torch.channels_last_3d)
    return t.requires_grad_()


def conv_case(op, input_shape, weight_shape, bias=True, dtype=torch.float32, channels_last=False, **kwargs):
    parts = [op, "x".join(map(str, input_shape)), "w" + "x".join(map(str, weight_shape)), str(dtype)[6:]]
    parts += [f"{k}={v}" for k, v in kwargs.items()] + (["bias"] if bias else []) + (["channels_last"] if channels_last else [])
    return pytest.param(op, input_shape, weight_shape, bias, dtype, channels_last, kwargs, id="-".join(parts))


CONV_CASES = [
    conv_case("conv1d", (2, 3, 11), (4, 3, 3), stride=2, padding=1),
    conv_case("conv1d", (1, 3, 9), (2, 3, 4), False, torch.float64, padding="same", dilation=3),  # asymmetric: (4, 5)
    conv_case("conv2d", (2, 5, 6, 7), (3, 5, 3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    conv_case("conv2d", (1, 4, 5, 6), (6, 2, 2, 3), False, torch.float64, padding="same", groups=2),  # asymmetric: (0, 1), (1, 1)
    conv_case("conv2d", (2, 3, 5, 5), (6, 1, 3, 3), stride=2, padding=1, groups=3),  # depthwise, multiplier 2
    conv_case("conv2d", (2, 17, 4, 5), (18, 17, 1, 1)),  # 1×1; C, O and N·P = 40 cut 16-wide blocks
    conv_case("conv2d", (2, 3, 5, 6), (4, 3, 3, 3), channels_last=True, padding=1),
    # 16-bit: reductions of 96 and 144 terms, long enough that a 16-bit accumulator fails the tolerance.
    conv_case("conv2d", (2, 16, 5, 5), (5, 16, 3, 2), dtype=torch.float16, padding=(1, 0)),
    conv_case("conv2d", (2, 4, 5, 5), (6, 2, 2, 3), dtype=torch.bfloat16, stride=2, groups=2),
    conv_case("conv3d", (1, 2, 4, 5, 4), (3, 2, 2, 3, 2), stride=(1, 2, 1), padding=(1, 0, 1), dilation=(2, 1, 1)),
    conv_case("conv3d", (1, 4, 3, 4, 3), (2, 2, 1, 2, 2), False, torch.float64, channels_last=True, groups=2),
    conv_case("conv_transpose1d", (2, 4, 5), (4, 3, 3), stride=3, padding=1, output_padding=2),
    conv_case("conv_transpose2d", (1, 4, 3, 4), (4, 2, 3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2),
    conv_case("conv_transpose2d", (2, 3, 3, 3), (3, 2, 2, 3), False, torch.float64, stride=2, dilation=(2, 1), output_padding=1),
    conv_case("conv_transpose2d", (1, 16, 4, 3), (16, 4, 3, 3), dtype=torch.float16, channels_last=True, stride=2, padding=1),
    conv_case("conv_transpose3d", (1, 2, 2, 3, 2), (2, 3, 2, 2, 3), stride=(2, 1, 2), padding=(0, 1, 1), output_padding=(1, 0, 0)),
    # One input channel per group: the depthwise kernels (triton_kernels/depthwise.py).
    conv_case("conv2d", (2, 1, 9, 8), (6, 1, 5, 5), padding=2),  # a single-channel input (LeNet's C1): multiplier 6
    conv_case("conv1d", (2, 5, 11), (5, 1, 3), False, torch.float64, padding="same", dilation=2, groups=5),
    conv_case("conv2d", (2, 17, 6, 7), (17, 1, 3, 3), channels_last=True, stride=2, padding=(1, 0), groups=17),
    conv_case("conv2d", (2, 4, 5, 5), (8, 1, 3, 2), dtype=torch.bfloat16, padding=1, groups=4),
    conv_case("conv3d", (1, 3, 4, 5, 4), (3, 1, 2, 3, 2), stride=(1, 2, 1), padding=(1, 0, 1), dilation=(2, 1, 1), groups=3),
    conv_case("conv_transpose2d", (2, 4, 3, 4), (4, 1, 3, 3), stride=2, padding=1, output_padding=1, groups=4),
    conv_case("conv_transpose2d", (1, 4, 4, 3), (4, 1, 2, 3), False, torch.float64, stride=(2, 1), dilation=(1, 2), groups=2),
]


@pytest.mark.parametrize("op, input_shape, weight_shape, bias, dtype, channels_last, kwargs", CONV_CASES)
def test_conv_matches_torch(op, input_shape, weight_shape, bias, dtype, channels_last, kwargs):
    half = dtype in (torch.float16, torch.bfloat16)
    x = _leaf(input_shape, dtype, channels_last)
    w = _leaf(weight_shape, dtype)
    out_channels = weight_shape[1] * kwargs.get("groups", 1) if "transpose" in op else weight_shape[0]
    b = _leaf((out_channels,), dtype) if bias else None
    check_against_torch(getattr(F, op), getattr(TF, op), x, w, b, reference_dtype=torch.float32 if half else None,
                        layout=torch_conv_follows_memory_format(x), **kwargs)


# The kernels called directly: what the autograd Functions never ask of them.

def _geometry(stride, padding, dilation, groups):
    return ConvGeometry(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("op", ["conv1d", "conv2d", "conv3d"])
def test_nchw_convolutions_reach_the_kernels_channels_last(monkeypatch, op):
    """Every convolution kernel gets channels-last operands, however the caller stores them (the
    reduction over channels must be contiguous), and the caller still gets its own layout back."""
    nd = int(op[-2])
    x, w = _leaf((2, 5, *(6,) * nd), torch.float32), _leaf((4, 5, *(3,) * nd), torch.float32)
    calls = {name: record_calls(monkeypatch, conv_kernels, name) for name in ("conv_forward", "conv_input_grad", "conv_weight_grad")}
    y = getattr(F, op)(x, w, padding=1)
    y.backward(torch.randn_like(y))
    assert y.is_contiguous() and x.grad.is_contiguous() and w.grad.is_contiguous()
    for name, records in calls.items():
        (args, _, _), = records
        operands = [a for a in args[:2] if isinstance(a, torch.Tensor)]
        assert all(t.stride(1) == 1 for t in operands), (name, [t.stride() for t in operands])


def test_autotuning_keeps_the_tiles_that_fit():
    """The tuner's early prune drops tiles wider than the problem (rounded up to a power of two,
    at least 16): 64 output channels keep BLOCK_N ≤ 64; a tiny problem keeps the smallest tile;
    a symbolic size prunes nothing."""
    space = [triton.Config(dict(BLOCK_M=m, BLOCK_N=n, BLOCK_K=32)) for m, n in ((128, 128), (128, 64), (64, 64), (32, 32))]
    prune = conv_kernels._fitting("M", "O_G")
    blocks = lambda configs: [(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"]) for c in configs]  # noqa: E731
    assert blocks(prune(space, dict(M=100352, O_G=64))) == [(128, 64), (64, 64), (32, 32)]
    assert blocks(prune(space, dict(M=40, O_G=100))) == [(64, 64), (32, 32)]
    assert blocks(prune(space, dict(M=3, O_G=3))) == [(32, 32)]
    assert blocks(prune(space[:2], dict(M=3, O_G=3))) == [(128, 64)]
    assert blocks(prune(space, dict(M=torch.SymInt, O_G=64))) == blocks(space)


def test_conv_forward_kernel_fused_relu():
    x, w, b = torch.randn(2, 4, 6, 5, device=DEVICE), torch.randn(6, 2, 3, 3, device=DEVICE), torch.randn(6, device=DEVICE)
    output = conv_kernels.conv_forward(x, w, b, _geometry((1, 2), ((2, 1), (1, 1)), (1, 1), 2), activation="relu")
    expected = TF.relu(TF.conv2d(TF.pad(x, (1, 1, 2, 1)), w, b, stride=(1, 2), groups=2))
    assert (output == 0).any() and (output > 0).any()
    assert_close(output, expected)


def test_conv_input_grad_kernel_with_bias_matches_conv_transpose():
    """δ ⋆ᵀ W + b for stride 2 and dilation 2 (gcd 2: half the stride phases meet no tap)."""
    dy, w, b = torch.randn(2, 4, 3, 3, device=DEVICE), torch.randn(4, 3, 3, 2, device=DEVICE), torch.randn(3, device=DEVICE)
    grad_input = conv_kernels.conv_input_grad(dy, w, (8, 7), b, _geometry((2, 2), ((1, 1), (0, 0)), (2, 2), 1))
    expected = TF.conv_transpose2d(dy, w, b, stride=2, padding=(1, 0), output_padding=(1, 0), dilation=2)
    assert_close(grad_input, expected)


@pytest.mark.parametrize("split_k", [1, 3])
@pytest.mark.parametrize("kernels, groups", [(conv_kernels, 1), (depthwise_kernels, 3)], ids=["implicit_gemm", "depthwise"])
def test_weight_grad_kernel_split_k(kernels, groups, split_k):
    """Split-K partial sums (three chunks of the N·P = 2·5·4 = 40 reduction) equal one pass;
    the depthwise family with a channel multiplier of 2."""
    x = torch.randn(2, 3, 9, 8, device=DEVICE, dtype=torch.float64)
    dy = torch.randn(2, 6, 5, 4, device=DEVICE, dtype=torch.float64)
    geometry = _geometry((2, 2), ((1, 1), (0, 0)), (1, 1), groups)
    weight_grad = kernels.conv_weight_grad(x, dy, (3, 2), geometry, split_k=split_k)
    w = torch.zeros(6, 3 // groups, 3, 2, device=DEVICE, dtype=torch.float64, requires_grad=True)
    expected, = torch.autograd.grad(TF.conv2d(x, w, stride=2, padding=(1, 0), groups=groups), w, dy)
    assert_close(weight_grad, expected)


@pytest.mark.parametrize("split_k, dtype", [(1, torch.float64), (3, torch.float64), (3, torch.bfloat16)])
def test_forward_and_input_grad_split_k(monkeypatch, split_k, dtype):
    """Split-K over the reduced channels (40: chunks of 16, 16 and 8 under the interpreter's
    16-wide blocks), each split's partial sum stored, then added up with the bias and ReLU:
    equal to one pass. 16-bit partial sums stay in float32 until the total."""
    epilogues = record_calls(monkeypatch, conv_kernels, "_add_partial_sums")
    make = lambda *shape: torch.randn(shape, device=DEVICE, dtype=torch.float64)  # noqa: E731
    x, w, b = make(2, 40, 5, 4), make(6, 40, 3, 3), make(6)
    dy, w_t, b_t = make(2, 40, 4, 3), make(40, 5, 3, 3), make(5)
    output = conv_kernels.conv_forward(x.to(dtype), w.to(dtype), b.to(dtype), _geometry((1, 1), ((1, 1), (1, 1)), (1, 1), 1),
                                       activation="relu", split_k=split_k)
    grad_input = conv_kernels.conv_input_grad(dy.to(dtype), w_t.to(dtype), (7, 5), b_t.to(dtype),
                                              _geometry((2, 2), ((1, 1), (1, 1)), (1, 1), 1), split_k=split_k)
    assert len(epilogues) == (2 if split_k > 1 else 0)
    rounded = lambda t: t.to(dtype).double()  # noqa: E731
    assert_close(output.double(), TF.relu(TF.conv2d(rounded(x), rounded(w), rounded(b), padding=1)), dtype=dtype)
    assert_close(grad_input.double(), TF.conv_transpose2d(rounded(dy), rounded(w_t), rounded(b_t), stride=2, padding=1), dtype=dtype)


def test_one_channel_per_group_takes_the_depthwise_kernels(monkeypatch):
    """Depthwise layers and single-channel inputs run the depthwise kernels, forward and both
    gradients; two channels per group run the implicit GEMM."""
    calls = {name: record_calls(monkeypatch, depthwise_kernels, name) for name in ("conv_forward", "conv_input_grad", "conv_weight_grad")}
    for channels, groups in ((4, 4), (1, 1), (4, 2)):
        x, w = _leaf((1, channels, 5, 5), torch.float32), _leaf((4, channels // groups, 3, 3), torch.float32)
        F.conv2d(x, w, groups=groups).sum().backward()
    assert {name: len(records) for name, records in calls.items()} == {"conv_forward": 2, "conv_input_grad": 2, "conv_weight_grad": 2}


@pytest.mark.parametrize("joint", [False, True], ids=["per_tap", "joint"])
@pytest.mark.parametrize("op, input_shape, weight_shape, kwargs", [
    ("conv2d", (2, 3, 11, 10), (5, 3, 7, 7), dict(stride=2, padding=3)),  # the stem: 3 channels, 7×7/2
    ("conv2d", (2, 6, 9, 9), (17, 6, 5, 5), {}),  # LeNet's C3: 6 channels, 5×5
    ("conv2d", (1, 20, 5, 6), (3, 20, 3, 2), dict(padding=1)),  # joint steps that cross taps mid-block
    ("conv1d", (2, 4, 13), (4, 2, 3), dict(dilation=2, padding=1, groups=2)),
    ("conv3d", (1, 3, 4, 5, 4), (2, 3, 2, 3, 2), dict(stride=(1, 2, 1), padding=1)),
], ids=["stem", "lenet_c3", "crossing", "1d_groups", "3d"])
def test_few_channels_reduce_over_taps_and_channels_jointly(monkeypatch, joint, op, input_shape, weight_shape, kwargs):
    """The forward's reduction and the weight gradient's columns over (tap, channel) jointly
    (JOINT, for fewer than 16 channels per group) or tap by tap: both give torch's results."""
    launches = []
    for name in ("conv_forward_kernel", "conv_weight_grad_kernel"):
        monkeypatch.setattr(conv_kernels, name, _RecordedLaunches(name, getattr(conv_kernels, name), launches))
    monkeypatch.setattr(conv_kernels, "_JOINT_BELOW", 64 if joint else 0)
    x, w, b = _leaf(input_shape, torch.float32), _leaf(weight_shape, torch.float32), _leaf(weight_shape[:1], torch.float32)
    check_against_torch(getattr(F, op), getattr(TF, op), x, w, b, **kwargs)
    assert {name for name, _ in launches} == {"conv_forward_kernel", "conv_weight_grad_kernel"}
    assert all(launch_kwargs["JOINT"] == joint for _, launch_kwargs in launches)


class _RecordedLaunches:
    """Stands in for a kernel: ``kernel[grid](...)`` records (name, its keyword arguments) and launches it."""

    def __init__(self, name, kernel, launches):
        self.name, self.kernel, self.launches = name, kernel, launches

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def recorded(*args, **kwargs):
            self.launches.append((self.name, kwargs))
            return launch(*args, **kwargs)

        return recorded


KERNELS = {
    conv_kernels: ("conv_forward_kernel", "conv_input_grad_kernel", "conv_weight_grad_kernel"),
    depthwise_kernels: ("depthwise_forward_kernel", "depthwise_input_grad_kernel", "depthwise_weight_grad_kernel"),
    pool_kernels: ("max_pool_forward_kernel", "max_pool_backward_kernel", "avg_pool_forward_kernel", "avg_pool_backward_kernel"),
}


def test_int64_offsets_path(monkeypatch):
    """The INT64 variant of every kernel (taken for tensors past 2**31 elements, too big to
    test here) is launched and computes the same results."""
    launches = []
    for module, names in KERNELS.items():
        monkeypatch.setattr(module, "needs_int64", lambda *tensors: True)
        for name in names:
            monkeypatch.setattr(module, name, _RecordedLaunches(name, getattr(module, name), launches))
    x, w = _leaf((1, 3, 5, 4), torch.float32), _leaf((2, 3, 2, 2), torch.float32)
    cases = [
        (lambda f, x, w: f.conv2d(x, w, stride=2, padding=1), [x, w]),
        (lambda f, x, w: f.conv2d(x, w, groups=2), [_leaf((1, 4, 5, 4), torch.float32), _leaf((4, 2, 2, 2), torch.float32)]),
        (lambda f, x, w: f.conv2d(x, w, padding=1, groups=3), [x, _leaf((6, 1, 2, 2), torch.float32)]),
        (lambda f, x, w: f.conv2d(x, w, padding=1), [_leaf((1, 17, 3, 4), torch.float32), _leaf((3, 17, 2, 2), torch.float32)]),
        (lambda f, x: f.max_pool2d(x, 2, 1, 1), [x]),
        (lambda f, x: f.avg_pool2d(x, 2, 1, 1), [x]),
        (lambda f, x: f.adaptive_avg_pool2d(x, 3), [x]),
    ]
    for call, inputs in cases:
        check_against_torch(functools.partial(call, F), functools.partial(call, TF), *inputs)
    # Second split-K chunks (and groups): their indices, cast to int64, are not 0.
    x, dy = torch.randn(2, 4, 6, 5, device=DEVICE), torch.randn(2, 4, 5, 4, device=DEVICE)
    weight_grad = conv_kernels.conv_weight_grad(x, dy, (2, 2), _geometry((1, 1), ((0, 0), (0, 0)), (1, 1), 2), split_k=2)
    w = torch.zeros(4, 2, 2, 2, device=DEVICE, requires_grad=True)
    assert_close(weight_grad, torch.autograd.grad(TF.conv2d(x, w, groups=2), w, dy)[0])
    weight_grad = depthwise_kernels.conv_weight_grad(x, dy, (2, 2), _geometry((1, 1), ((0, 0), (0, 0)), (1, 1), 4), split_k=2)
    w = torch.zeros(4, 1, 2, 2, device=DEVICE, requires_grad=True)
    assert_close(weight_grad, torch.autograd.grad(TF.conv2d(x, w, groups=4), w, dy)[0])
    x, w = torch.randn(1, 40, 4, 3, device=DEVICE), torch.randn(3, 40, 2, 2, device=DEVICE)
    output = conv_kernels.conv_forward(x, w, None, _geometry((1, 1), ((1, 1), (1, 1)), (1, 1), 1), split_k=3)
    assert_close(output, TF.conv2d(x, w, padding=1))
    dy = torch.randn(1, 40, 3, 2, device=DEVICE)
    grad_input = conv_kernels.conv_input_grad(dy, w.transpose(0, 1).contiguous(), (4, 3), None, _geometry((1, 1), ((0, 0), (0, 0)), (1, 1), 1),
                                              split_k=3)
    assert_close(grad_input, TF.conv_transpose2d(dy, w.transpose(0, 1)))
    assert {name for name, _ in launches} == {name for names in KERNELS.values() for name in names}
    assert all(kwargs["INT64"] for _, kwargs in launches)
    assert {kwargs["JOINT"] for name, kwargs in launches if name == "conv_forward_kernel"} == {False, True}


@pytest.mark.parametrize("problem", [*compiled.RESNET50, *compiled.ONE_CHANNEL_PER_GROUP], ids=lambda problem: problem.name)
def test_a_partial_last_batch_keeps_the_tuned_configs(problem):
    """The autotuning keys hold the batch-dependent lengths bucketed (M_BUCKET, NP_BUCKET: the
    next power of two), not their exact values: every kernel at batch 30 after batches of 32
    looks up the configs tuned for 32; batch 8 tunes its own."""
    def key(kernel, batch):
        arguments = compiled.launch_arguments(compiled.Variant(kernel, dataclasses.replace(problem, batch=batch), "bfloat16", True))
        return [arguments[name] for name in getattr(compiled._module(kernel), kernel).keys]

    for kernel in problem.kernels:
        assert key(kernel, 30) == key(kernel, 32), kernel
        assert key(kernel, 8) != key(kernel, 32), kernel


def test_dot_precision_follows_torch_tf32_flags():
    cudnn = torch.backends.cudnn
    # torch ≥ 2.9 keeps the legacy allow_tf32 in the fp32_precision flags (where monkeypatch
    # cannot undo): save and restore those.
    flags = [(cudnn.conv, "fp32_precision"), (torch.backends, "fp32_precision")] if hasattr(cudnn, "conv") else [(cudnn, "allow_tf32")]
    saved = [getattr(obj, name) for obj, name in flags]
    try:
        cudnn.allow_tf32 = True
        assert _common.dot_precision(torch.float32) == "tf32"
        assert _common.dot_precision(torch.float64) == _common.dot_precision(torch.float16) == "ieee"
        cudnn.allow_tf32 = False
        assert _common.dot_precision(torch.float32) == "ieee"
        if hasattr(cudnn, "conv"):
            cudnn.conv.fp32_precision = "tf32"
            assert _common.dot_precision(torch.float32) == "tf32"
            cudnn.conv.fp32_precision = "none"  # defers to the global flag
            torch.backends.fp32_precision = "tf32"
            assert _common.dot_precision(torch.float32) == "tf32"
    finally:
        for (obj, name), value in zip(flags, saved):
            setattr(obj, name, value)


def test_cpu_tensors_need_the_interpreter(monkeypatch):
    monkeypatch.setattr(triton_backend, "_INTERPRETED", False)
    with pytest.raises(ArgumentError, match="TRITON_INTERPRET=1"):
        F.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3))


def test_missing_triton_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # what `import triton` sees when it is absent
    monkeypatch.delitem(sys.modules, "torchconv_impl.backends.triton")
    with pytest.raises(ImportError, match="needs Triton"):
        importlib.import_module("torchconv_impl.backends.triton")


# Pooling through the functional API (max unpooling falls back to the CPU engine).

POOL_CASES = [
    pytest.param((2, 3, 9), dict(kernel_size=3, stride=2, padding=1), torch.float32, False, id="1d"),
    pytest.param((2, 17, 5, 6), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True),
                 torch.float64, False, id="2d-dilation-ceil-17ch"),
    pytest.param((1, 4, 5, 7), dict(kernel_size=2, stride=2), torch.float32, True, id="2d-channels_last"),
    pytest.param((1, 3, 4, 5), dict(kernel_size=3, stride=1, padding=1), torch.bfloat16, False, id="2d-bfloat16-overlapping"),
    pytest.param((1, 2, 4, 5, 3), dict(kernel_size=(2, 3, 2), stride=(2, 1, 1), padding=(1, 1, 0)), torch.float64, True,
                 id="3d-channels_last"),
]


@pytest.mark.parametrize("shape, kwargs, dtype, channels_last", POOL_CASES)
def test_max_pool_matches_torch(shape, kwargs, dtype, channels_last):
    x = _leaf(shape, dtype, channels_last)
    x.data[0, 0].view(-1)[1] = float("nan")  # a NaN wins its windows, in value and index
    x.data[-1, -1].view(-1)[:3] = -float("inf")
    op = f"max_pool{len(shape) - 2}d"
    check_against_torch(getattr(F, op), getattr(TF, op), x, exact=True, return_indices=True, **kwargs)


@pytest.mark.parametrize("count_include_pad, divisor_override", [(True, None), (False, None), (True, -3)])
@pytest.mark.parametrize("shape, kwargs, dtype, channels_last", POOL_CASES)
def test_avg_pool_matches_torch(shape, kwargs, dtype, channels_last, count_include_pad, divisor_override):
    kwargs = {k: v for k, v in kwargs.items() if k != "dilation"} | dict(count_include_pad=count_include_pad)
    op = f"avg_pool{len(shape) - 2}d"
    if divisor_override is not None:
        if op == "avg_pool1d":
            pytest.skip("avg_pool1d has no divisor_override")
        kwargs["divisor_override"] = divisor_override
    check_against_torch(getattr(F, op), getattr(TF, op), _leaf(shape, dtype, channels_last), **kwargs)


ADAPTIVE_CASES = [((2, 3, 10), (4,)), ((1, 17, 7, 5), (3, 7)), ((1, 2, 3, 5, 4), (2, 2, 3))]


@pytest.mark.parametrize("shape, output_size", ADAPTIVE_CASES)
def test_adaptive_avg_pool_matches_torch(shape, output_size):
    op = f"adaptive_avg_pool{len(output_size)}d"
    check_against_torch(getattr(F, op), getattr(TF, op), _leaf(shape, torch.float64), output_size)


@pytest.mark.parametrize("shape, output_size", ADAPTIVE_CASES)
def test_adaptive_max_pool_matches_torch(shape, output_size):
    op = f"adaptive_max_pool{len(output_size)}d"
    check_against_torch(getattr(F, op), getattr(TF, op), _leaf(shape, torch.float32), output_size, exact=True, return_indices=True)


def test_integer_pooling_falls_back_to_the_cpu_engine(monkeypatch):
    """The Triton pooling kernels are float-only: integer max and average pooling are served
    by the CPU engine's functions (recorded here), with torch's results."""
    served = {name: record_calls(monkeypatch, triton_backend.cpu_pool, name) for name in ("max_pool_forward", "avg_pool_forward")}
    x = torch.randint(-50, 50, (1, 2, 5, 4), device=DEVICE)
    output, indices = F.max_pool2d(x, 2, return_indices=True)
    expected, expected_indices = TF.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(output, expected) and torch.equal(indices, expected_indices)
    assert torch.equal(F.avg_pool2d(x, 2), TF.avg_pool2d(x, 2))
    assert {name: len(calls) for name, calls in served.items()} == {"max_pool_forward": 1, "avg_pool_forward": 1}


def test_pool_kernels_direct():
    x = torch.randn(2, 3, 6, 5, device=DEVICE)
    output, indices = pool_kernels.window_max(x, (6, 3), (3, 3), (1, 2), (1, 1), (1, 1))
    expected, expected_indices = TF.max_pool2d(x, 3, (1, 2), 1, return_indices=True)
    assert_close(output, expected)
    assert torch.equal(indices, expected_indices)
    grad_output = torch.randn_like(expected)
    leaf = x.clone().requires_grad_()
    expected_grad, = torch.autograd.grad(TF.max_pool2d(leaf, 3, (1, 2), 1), leaf, grad_output)
    assert_close(pool_kernels.max_pool_backward(grad_output, indices, (6, 5), (3, 3), (1, 2), (1, 1), (1, 1)), expected_grad)
    output, indices = pool_kernels.window_max(x, (4, 2))  # adaptive windows
    grad_output = torch.randn_like(output)
    expected_grad, = torch.autograd.grad(TF.adaptive_max_pool2d(leaf, (4, 2)), leaf, grad_output)
    assert_close(pool_kernels.max_pool_backward(grad_output, indices, (6, 5)), expected_grad)

    average = pool_kernels.window_average(x, (4, 2))  # adaptive windows
    assert_close(average, TF.adaptive_avg_pool2d(x, (4, 2)))
    grad_output = torch.randn_like(average)
    expected_grad, = torch.autograd.grad(TF.adaptive_avg_pool2d(leaf, (4, 2)), leaf, grad_output)
    assert_close(pool_kernels.window_average_backward(grad_output, (6, 5)), expected_grad)


def test_needs_int64_counts_a_tiles_overshoot():
    """A tensor whose every offset fits int32 but whose last index block would pass 2³¹
    (pid·BLOCK + arange in int32 wraps negative and passes the mask) takes int64 indices."""
    last_block_wraps = torch.empty(2**31 - 100, device="meta")
    assert _common.needs_int64(last_block_wraps)
    assert not _common.needs_int64(torch.empty(2**31 - 2**17, device="meta"))
    assert _common.needs_int64(torch.empty(2**16, 2**15 + 1, device="meta").t())  # its strided offsets reach 2³¹
    assert not _common.needs_int64(None, torch.empty(3, 4))


def test_autotune_limit_keeps_the_first_configs():
    """TORCHCONV_AUTOTUNE=N keeps the first N configs of a kernel's space (compiled runs only;
    the interpreter always runs one small config)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = ("from torchconv_impl.triton_kernels import _common; "
            "print(len(_common.configs([(16, 16, 16, 1, 1), (32, 32, 16, 1, 1), (64, 64, 16, 1, 1)])))")
    counts = [subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True).stdout.strip()
              for extra in ({}, {"TORCHCONV_AUTOTUNE": "2"}, {"TORCHCONV_AUTOTUNE": "1"})]
    assert counts == ["3", "2", "1"]


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=1, padding=1),  # every input in up to 9 windows
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 3), ceil_mode=True),  # dilated spans
])  # fmt: skip
def test_max_pool_backward_gathers_deterministically(kwargs):
    """Overlapping windows sharing an argmax: the backward gathers each input's δ in a fixed
    order (no atomics), so it runs under torch.use_deterministic_algorithms, gives torch's
    gradient and the same bits on every run. Ties (a constant region) route many windows to
    one input."""
    x = torch.randn(2, 3, 9, 8, device=DEVICE)
    x[:, :, 2:6, 2:6] = 5.0
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True)
    try:
        leaf = x.clone().requires_grad_()
        y = F.max_pool2d(leaf, **kwargs)
        grad_output = torch.randn_like(y)
        grads = [torch.autograd.grad(y, leaf, grad_output, retain_graph=True)[0] for _ in range(3)]
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
    assert all(torch.equal(grad, grads[0]) for grad in grads)
    twin = x.clone().requires_grad_()
    expected, = torch.autograd.grad(TF.max_pool2d(twin, **kwargs), twin, grad_output)
    assert_close(grads[0], expected)


def test_max_unpool_adjoint_is_the_cpu_engines_scatter(monkeypatch):
    """Max unpooling's double backward scatters δ at indices of no known windows: the Triton
    backend hands that to the CPU engine (recorded), with torch's result."""
    served = record_calls(monkeypatch, triton_backend.cpu_pool, "max_pool_backward")
    x = torch.randn(1, 2, 4, 4, device=DEVICE)
    pooled, indices = TF.max_pool2d(x, 2, return_indices=True)
    pooled.requires_grad_()
    unpooled = F.max_unpool2d(pooled, indices, 2)
    grad_output = torch.randn_like(unpooled, requires_grad=True)
    (grad,) = torch.autograd.grad(unpooled, pooled, grad_output, create_graph=True)
    (second,) = torch.autograd.grad(grad, grad_output, torch.ones_like(grad))
    expected = TF.max_unpool2d(torch.ones_like(pooled), indices, 2)
    assert_close(second, expected)
    assert len(served) == 1
