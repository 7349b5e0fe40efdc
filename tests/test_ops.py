"""The registered operators ``torch.ops.torchconv.*`` and what tracing sees of them.

* ``torch.library.opcheck`` on samples of every operator (schema, autograd registration, fake
  tensors, AOT dispatch with dynamic shapes);
* the fake implementation promises the real one's shape, dtype and strides (fake and meta
  tensors), and the real one gives torch's values;
* fake or meta calls before and between real calls of the same shapes leave no trace in the
  CPU engine's scratch buffers and caches;
* meta tensors through every functional op, forward and backward;
* torch.export of LeNet-5 and of a converted ResNet-18: the exported program and the eager model
  afterwards give torch's values, save/load round-trips, the graph holds our operators and no
  native conv/pool op, and training through the exported program takes our backward.

The bugs these guard against live in the CPU engine's scratch buffers, so the tests run on CPU
with the CPU engine selected.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
import torch.nn.functional as TF
import torchvision
from support import FORBIDDEN_OPS, assert_close, no_native_ops
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._pytree import tree_map

import torchconv_impl
import torchconv_impl.functional as F
from torchconv_impl.models import LeNet5

CF, CL = torch.contiguous_format, torch.channels_last
REF = "cpu"
OPERATORS = (
    "conv_forward", "conv_input_grad", "conv_weight_grad", "max_pool_forward", "adaptive_max_pool_forward",
    "max_pool_backward", "max_unpool_forward", "max_unpool_backward", "avg_pool_forward", "avg_pool_backward",
    "adaptive_avg_pool_forward", "adaptive_avg_pool_backward", "relu_input_grad",
)  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors: torch's intra-op threads only add overhead on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _cpu_engine():
    with torchconv_impl.use_backend(REF):
        yield


def op(name: str):
    return getattr(torch.ops.torchconv, name).default


def randn(*shape, dtype=torch.float64, memory_format=CF):
    return torch.randn(shape, dtype=dtype).contiguous(memory_format=memory_format)


def leaf(t):
    """A leaf that requires grad when floating (opcheck's autograd tests need them)."""
    return t.detach().requires_grad_(t.is_floating_point())


def torch_fn(name: str, nd: int):
    return getattr(TF, f"{name}{nd}d")


def vjp(fn, primal, cotangent):
    """⟨fn(primal), cotangent⟩'s gradient w.r.t. ``primal``, by torch's own autograd."""
    return torch.func.vjp(fn, primal)[1](cotangent)[0]


def as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


# ---------------------------------------------------------------------------------------------
# Samples: an operator, its arguments (backend "cpu"), and torch's answer for them.


@dataclass
class Sample:
    name: str
    args: tuple
    expected: Callable[[], object]  # torch's result(s), computed with torch.nn.functional
    exact: bool = False  # selections (max pooling, unpooling, ReLU's mask): torch's values exactly

    @property
    def op(self):
        return op(self.name)


# Convolutions: flat padding is (low, high) per spatial dim, as the operators take it.
CONVS = {
    "2d_f64": dict(x=(2, 3, 6, 6), w=(4, 3, 3, 3), bias=True, stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1],
                   groups=1, activation=None, dtype=torch.float64, memory_format=CF),
    "2d_f32_grouped_dilated_strided_asymmetric_relu": dict(
        x=(2, 4, 9, 8), w=(6, 2, 3, 2), bias=True, stride=[2, 1], padding=[1, 0, 0, 2], dilation=[2, 1], groups=2,
        activation="relu", dtype=torch.float32, memory_format=CF),
    "2d_f32_channels_last": dict(x=(2, 3, 5, 6), w=(4, 3, 2, 3), bias=False, stride=[1, 2], padding=[0, 1, 1, 1],
                                 dilation=[1, 1], groups=1, activation=None, dtype=torch.float32, memory_format=CL),
    "1d_f64_strided": dict(x=(2, 2, 7), w=(3, 2, 3), bias=False, stride=[2], padding=[1, 0], dilation=[1], groups=1,
                           activation=None, dtype=torch.float64, memory_format=CF),
    "3d_f64_grouped": dict(x=(1, 2, 4, 4, 3), w=(2, 1, 2, 2, 2), bias=True, stride=[1, 1, 1], padding=[1, 0, 0, 1, 1, 1],
                           dilation=[1, 1, 1], groups=2, activation=None, dtype=torch.float64, memory_format=CF),
}  # fmt: skip


def _torch_conv(c, x, w, b):
    """torch's convolution with the operators' (low, high) padding: explicit padding, then none."""
    pad = [p for i in reversed(range(len(c["stride"]))) for p in c["padding"][2 * i: 2 * i + 2]]
    y = torch_fn("conv", len(c["stride"]))(TF.pad(x, pad), w, b, c["stride"], 0, c["dilation"], c["groups"])
    return y.relu() if c["activation"] == "relu" else y


def _conv_samples(kind: str, c) -> Sample:
    x = randn(*c["x"], dtype=c["dtype"], memory_format=c["memory_format"])
    w = randn(*c["w"], dtype=c["dtype"], memory_format=c["memory_format"] if len(c["w"]) == 4 else CF)
    b = randn(c["w"][0], dtype=c["dtype"]) if c["bias"] else None
    geometry = (c["stride"], c["padding"], c["dilation"], c["groups"])
    if kind == "conv_forward":
        args = (leaf(x), leaf(w), b if b is None else leaf(b), *geometry, c["activation"], c["memory_format"], REF)
        return Sample(kind, args, lambda: _torch_conv(c, x, w, b))
    plain = dict(c, activation=None)  # the gradient operators are those of the convolution without ReLU
    delta = torch.randn_like(_torch_conv(plain, x, w, None)).contiguous(memory_format=c["memory_format"])
    if kind == "conv_input_grad":  # the transposed convolution; its bias is per input channel
        tb = randn(c["x"][1], dtype=c["dtype"]) if c["bias"] else None
        args = (leaf(delta), leaf(w), list(x.shape[2:]), tb if tb is None else leaf(tb), *geometry, c["memory_format"], REF)

        def expected():
            grad = vjp(lambda t: _torch_conv(plain, t, w, None), torch.zeros_like(x), delta)
            return grad if tb is None else grad + tb.view(1, -1, *(1,) * (x.dim() - 2))

        return Sample(kind, args, expected)
    args = (leaf(x), leaf(delta), list(w.shape[2:]), *geometry, CF, REF)
    return Sample(kind, args, lambda: vjp(lambda t: _torch_conv(plain, x, t, None), w, delta))


# Max pooling: (input, kernel_size, stride, padding, dilation, ceil_mode, memory_format)
MAX_POOLS = {
    "2d_f64": lambda: (randn(2, 3, 7, 7), [3, 3], [2, 2], [1, 1], [1, 1], False, CF),
    "2d_f32_ceil": lambda: (randn(2, 3, 7, 6, dtype=torch.float32), [2, 2], [2, 2], [0, 0], [1, 1], True, CF),
    "2d_f32_channels_last_dilated": lambda: (
        randn(2, 3, 7, 7, dtype=torch.float32, memory_format=CL), [3, 2], [2, 1], [1, 0], [1, 2], False, CL),
    "1d_f64_ceil": lambda: (randn(2, 3, 9), [3], [2], [1], [1], True, CF),
    "3d_f32": lambda: (randn(1, 2, 4, 5, 4, dtype=torch.float32), [2, 2, 2], [2, 2, 1], [0, 1, 0], [1, 1, 1], False, CF),
}  # fmt: skip


def _max_pool_samples(kind, make) -> Sample:
    x, k, s, p, d, ceil_mode, memory_format = make()
    theirs = lambda t: torch_fn("max_pool", x.dim() - 2)(t, k, s, p, d, ceil_mode, return_indices=True)  # noqa: E731
    if kind == "max_pool_forward":
        return Sample(kind, (leaf(x), k, s, p, d, ceil_mode, memory_format, REF), lambda: theirs(x), exact=True)
    y, indices = theirs(x)
    delta = torch.randn_like(y)
    args = (leaf(delta), indices, list(x.shape[2:]), k, s, p, d, ceil_mode, False, memory_format, REF)
    return Sample(kind, args, lambda: vjp(lambda t: theirs(t)[0], x, delta))


ADAPTIVE = {  # (input, output_size, memory_format)
    "2d_f64": lambda: (randn(2, 3, 7, 5), [3, 2], CF),
    "2d_f32_channels_last": lambda: (randn(2, 3, 6, 6, dtype=torch.float32, memory_format=CL), [4, 4], CL),
    "1d_f32": lambda: (randn(2, 2, 9, dtype=torch.float32), [4], CF),
    "3d_f64": lambda: (randn(1, 2, 5, 4, 3), [2, 3, 2], CF),
}


def _adaptive_samples(kind, make) -> Sample:
    x, size, memory_format = make()
    nd = x.dim() - 2
    if kind in ("adaptive_max_pool_forward", "max_pool_backward"):
        theirs = lambda t: torch_fn("adaptive_max_pool", nd)(t, size, return_indices=True)  # noqa: E731
        if kind == "adaptive_max_pool_forward":
            return Sample(kind, (leaf(x), size, memory_format, REF), lambda: theirs(x), exact=True)
        y, indices = theirs(x)
        delta = torch.randn_like(y)
        args = (leaf(delta), indices, list(x.shape[2:]), [], [], [], [], False, True, memory_format, REF)
        return Sample(kind, args, lambda: vjp(lambda t: theirs(t)[0], x, delta))
    theirs = lambda t: torch_fn("adaptive_avg_pool", nd)(t, size)  # noqa: E731
    if kind == "adaptive_avg_pool_forward":
        return Sample(kind, (leaf(x), size, memory_format, REF), lambda: theirs(x))
    delta = torch.randn_like(theirs(x))
    return Sample(kind, (leaf(delta), list(x.shape[2:]), memory_format, REF), lambda: vjp(theirs, x, delta))


UNPOOLS = {  # the unpooled input (pooled by 2 for the indices), memory_format
    "2d_f64": lambda: (randn(2, 3, 8, 8), CF),
    "2d_f32_channels_last": lambda: (randn(2, 3, 8, 6, dtype=torch.float32, memory_format=CL), CL),
    "1d_f64": lambda: (randn(2, 3, 8), CF),
}


def _unpool_samples(kind, make) -> Sample:
    x, memory_format = make()
    nd = x.dim() - 2
    pooled, indices = torch_fn("max_pool", nd)(x, 2, return_indices=True)
    theirs = lambda t: torch_fn("max_unpool", nd)(t, indices, 2, output_size=x.shape[2:])  # noqa: E731
    if kind == "max_pool_backward":  # indices of no known windows (max unpooling's adjoint): a scatter-add
        args = (leaf(pooled), indices, list(x.shape[2:]), [], [], [], [], False, False, memory_format, REF)
        return Sample(kind, args, lambda: theirs(pooled), exact=True)
    if kind == "max_unpool_forward":
        return Sample(kind, (leaf(pooled), indices, list(x.shape[2:]), memory_format, REF), lambda: theirs(pooled), exact=True)
    delta = torch.randn_like(x)
    return Sample(kind, (leaf(delta), indices, memory_format, REF), lambda: vjp(theirs, pooled, delta), exact=True)


# Average pooling: (input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, memory_format)
AVG_POOLS = {
    "2d_f64": lambda: (randn(2, 3, 7, 7), [3, 3], [2, 2], [1, 1], False, True, None, CF),
    "2d_f32_ceil_exclude_pad": lambda: (randn(2, 3, 7, 6, dtype=torch.float32), [3, 2], [2, 2], [1, 1], True, False, None, CF),
    "2d_f32_channels_last_divisor": lambda: (
        randn(2, 3, 6, 6, dtype=torch.float32, memory_format=CL), [2, 2], [2, 1], [0, 1], False, True, 3, CL),
    "1d_f64_ceil": lambda: (randn(2, 3, 9), [3], [2], [1], True, True, None, CF),
    "3d_f64": lambda: (randn(1, 2, 4, 5, 4), [2, 2, 2], [2, 2, 1], [0, 1, 0], False, True, None, CF),
}  # fmt: skip


def _avg_pool_samples(kind, make) -> Sample:
    x, k, s, p, ceil_mode, count_include_pad, divisor, memory_format = make()
    nd = x.dim() - 2
    extra = () if nd == 1 else (divisor,)  # avg_pool1d has no divisor_override
    theirs = lambda t: torch_fn("avg_pool", nd)(t, k, s, p, ceil_mode, count_include_pad, *extra)  # noqa: E731
    if kind == "avg_pool_forward":
        args = (leaf(x), k, s, p, ceil_mode, count_include_pad, divisor, memory_format, REF)
        return Sample(kind, args, lambda: theirs(x))
    delta = torch.randn_like(theirs(x))
    args = (leaf(delta), list(x.shape[2:]), k, s, p, ceil_mode, count_include_pad, divisor, memory_format, REF)
    return Sample(kind, args, lambda: vjp(theirs, x, delta))


RELUS = {  # (δ, memory_format); y = relu of an independent input
    "f64": lambda: (randn(2, 3, 4, 5), CF),
    "f32_channels_last": lambda: (randn(2, 3, 4, 5, dtype=torch.float32, memory_format=CL), CL),
    "f32_matrix": lambda: (randn(4, 5, dtype=torch.float32), CF),
}


def _relu_samples(kind, make) -> Sample:
    delta, memory_format = make()
    output = torch.randn_like(delta).relu()
    expected = lambda: torch.ops.aten.threshold_backward(delta, output, 0)  # noqa: E731
    return Sample(kind, (leaf(delta), output, memory_format, REF), expected, exact=True)


def _sample_builders():
    """id → a function building the Sample (called in the test, after the seed is set)."""
    families = [
        (("conv_forward", "conv_input_grad", "conv_weight_grad"), CONVS, _conv_samples),
        (("max_pool_forward", "max_pool_backward"), MAX_POOLS, _max_pool_samples),
        (("adaptive_max_pool_forward", "adaptive_avg_pool_forward", "adaptive_avg_pool_backward"), ADAPTIVE, _adaptive_samples),
        (("max_pool_backward",), {f"adaptive_{name}": make for name, make in ADAPTIVE.items()}, _adaptive_samples),
        (("max_unpool_forward", "max_unpool_backward"), UNPOOLS, _unpool_samples),
        (("max_pool_backward",), {f"unpool_{name}": make for name, make in UNPOOLS.items()}, _unpool_samples),
        (("avg_pool_forward", "avg_pool_backward"), AVG_POOLS, _avg_pool_samples),
        (("relu_input_grad",), RELUS, _relu_samples),
    ]
    builders = {}
    for kinds, configs, build in families:
        for kind in kinds:
            for config_name, config in configs.items():
                builders[f"{kind}-{config_name}"] = lambda kind=kind, config=config, build=build: build(kind, config)
    return builders


SAMPLES = _sample_builders()


def test_samples_cover_every_operator():
    """Every operator the library defines has samples here (a new operator needs some); the
    Triton twins (``triton_<name>``, where defined) are tested on the samples of their operator."""
    registered = {name for name in dir(torch.ops.torchconv) if isinstance(getattr(torch.ops.torchconv, name), torch._ops.OpOverloadPacket)}
    assert {name for name in registered if not name.startswith("triton_")} == set(OPERATORS)
    assert {name for name in registered if name.startswith("triton_")} <= {f"triton_{name}" for name in OPERATORS}
    assert {name.split("-")[0] for name in SAMPLES} == set(OPERATORS)


@pytest.mark.parametrize("sample_id", SAMPLES)
def test_opcheck(sample_id):
    """torch.library.opcheck passes: the schema matches what the real implementation does
    (no input mutated or aliased), autograd is registered, the fake implementation agrees with
    the real one, and AOT dispatch with dynamic shapes gives the real results and gradients."""
    sample = SAMPLES[sample_id]()
    results = torch.library.opcheck(sample.op, sample.args)
    assert set(results.values()) == {"SUCCESS"}, results


def _detached(args):
    return tree_map(lambda a: a.detach() if isinstance(a, torch.Tensor) else a, args)


def _layout(t: torch.Tensor):
    return t.shape, t.dtype, t.stride(), t.storage_offset()


@pytest.mark.parametrize("sample_id", SAMPLES)
def test_fake_implementation_matches_real(sample_id):
    """Under FakeTensorMode, and on meta tensors, each operator's result has the real result's
    shape, dtype, strides and storage offset; the real result is laid out in the
    ``memory_format`` argument's strides."""
    sample = SAMPLES[sample_id]()
    args = _detached(sample.args)
    real = as_tuple(sample.op(*args))
    memory_format = args[-2]
    for t in real:
        assert t.is_contiguous(memory_format=memory_format), f"{t.stride()} is not {memory_format}"
    with FakeTensorMode() as mode:
        fake = as_tuple(sample.op(*tree_map(lambda a: mode.from_tensor(a) if isinstance(a, torch.Tensor) else a, args)))
    meta = as_tuple(sample.op(*tree_map(lambda a: a.to("meta") if isinstance(a, torch.Tensor) else a, args)))
    assert len(fake) == len(meta) == len(real)
    for r, f, m in zip(real, fake, meta):
        assert isinstance(f, FakeTensor) and f.device == r.device
        assert _layout(f) == _layout(r), f"fake {_layout(f)} vs real {_layout(r)}"
        assert m.is_meta and _layout(m) == _layout(r), f"meta {_layout(m)} vs real {_layout(r)}"


@pytest.mark.parametrize("sample_id", SAMPLES)
def test_real_implementation_matches_torch(sample_id):
    """Each operator's real result equals torch.nn.functional's (exactly for selections: max
    pooling's values and indices, unpooling, ReLU's gradient)."""
    sample = SAMPLES[sample_id]()
    with torch.no_grad():
        actual = as_tuple(sample.op(*_detached(sample.args)))
    _assert_torch_values(sample, actual)


def _assert_torch_values(sample: Sample, actual: tuple):
    expected = as_tuple(sample.expected())
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        e = e.detach()
        assert a.shape == e.shape and a.dtype == e.dtype, f"{a.shape} {a.dtype} vs {e.shape} {e.dtype}"
        if sample.exact or not e.is_floating_point():
            torch.testing.assert_close(a, e, rtol=0, atol=0)
        else:
            assert_close(a, e)


# ---------------------------------------------------------------------------------------------
# The Triton twins: each operation the Triton backend implements as a torch.library.triton_op.

needs_triton = pytest.mark.skipif(not torchconv_impl.backends.TRITON_INSTALLED, reason="needs Triton")
TRITON_OPERATORS = (
    "conv_forward", "conv_input_grad", "conv_weight_grad", "max_pool_forward", "adaptive_max_pool_forward",
    "max_pool_backward", "avg_pool_forward", "avg_pool_backward", "adaptive_avg_pool_forward", "adaptive_avg_pool_backward",
)  # fmt: skip


@needs_triton
def test_triton_twins_are_the_triton_backends_operations():
    assert set(torchconv_impl.backends.load("triton").KERNELS) == set(TRITON_OPERATORS)


@needs_triton
@pytest.mark.parametrize("sample_id", [s for s in SAMPLES if s.split("-")[0] in TRITON_OPERATORS])
def test_triton_twin_matches_torch(sample_id):
    """Each twin ``torchconv::triton_<name>`` computes torch's values, laid out in its
    ``memory_format`` argument (on a GPU; here in Triton's interpreter, eagerly: interpreted
    kernels cannot be traced)."""
    torchconv_impl.ops.define_triton_operators()
    sample = SAMPLES[sample_id]()
    *args, memory_format, _ = _detached(sample.args)
    with torch.no_grad():  # the twin takes the memory format by name
        actual = as_tuple(op(f"triton_{sample.name}")(*args, str(memory_format).removeprefix("torch."), "triton"))
    for t in actual:
        assert t.is_contiguous(memory_format=memory_format), f"{t.stride()} is not {memory_format}"
    _assert_torch_values(sample, actual)


@needs_triton
def test_triton_twin_has_its_operators_autograd_formula_and_batching_rule():
    """Graphs may hold a twin with tensors that need gradients, or vmap over it: its autograd
    formula (the Function's backward) and batching rule are its operator's."""
    torchconv_impl.ops.define_triton_operators()
    twin = op("triton_conv_forward")
    geometry = ([1, 1], [1, 1, 1, 1], [1, 1], 1, None, "contiguous_format", "triton")
    x, w = leaf(randn(2, 3, 6, 6)), leaf(randn(4, 3, 3, 3))
    delta = randn(2, 4, 6, 6)
    twin(x, w, None, *geometry).backward(delta)
    assert_close(x.grad, vjp(lambda t: TF.conv2d(t, w, padding=1), x.detach(), delta))
    assert_close(w.grad, vjp(lambda t: TF.conv2d(x.detach(), t, padding=1), w.detach(), delta))
    samples = randn(3, 2, 3, 6, 6)
    batched = torch.func.vmap(lambda t: twin(t, w.detach(), None, *geometry))(samples)
    assert_close(batched, torch.stack([TF.conv2d(t, w.detach(), padding=1) for t in samples]))


# Traced on fake CUDA tensors in a process without the interpreter: what torch.compile's
# AOTAutograd hands Inductor for Triton-backend calls (no GPU needed: Triton lowers each kernel
# to TTIR for an sm_90 target to find which arguments it writes).
_TRACE_ON_FAKE_CUDA = """
import json
import torch, triton
from functorch.compile import aot_function
from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table
from torch._subclasses.fake_tensor import FakeTensorMode
from triton.backends.compiler import GPUTarget
import torchconv_impl
from torchconv_impl import functional as F, ops
from torchconv_impl._geometry import ConvGeometry
from torchconv_impl.triton_kernels import _common

class Sm90:
    def get_current_target(self):
        return GPUTarget("cuda", 90, 32)

if not torch.cuda.is_available():  # no device to ask
    triton.runtime.driver.set_active(Sm90())
    _common.multiprocessors = lambda device: 132
ops.define_triton_operators()
CF = torch.contiguous_format

def network(x, w, b, w_depthwise):
    y = F.conv2d(x, w, b, padding=1)
    t = F.conv_transpose2d(y, w, stride=2)
    dw = ops.conv_weight_grad(x, y, (3, 3), ConvGeometry((1, 1), ((1, 1), (1, 1)), (1, 1), 1), "triton")
    y_depthwise = F.conv2d(x, w_depthwise, padding=1, groups=4)
    t_depthwise = F.conv_transpose2d(y_depthwise, w_depthwise, stride=2, groups=4)
    dw_depthwise = ops.conv_weight_grad(x, y_depthwise, (3, 3), ConvGeometry((1, 1), ((1, 1), (1, 1)), (1, 1), 4), "triton")
    m, indices = F.max_pool2d(y, 2, return_indices=True)
    dm = ops.max_pool_backward(m, indices, [8, 8], ops.pool_geometry((2, 2), (2, 2), (0, 0), ceil_mode=False), CF, "triton")
    am, _ = F.adaptive_max_pool2d(y, 3, return_indices=True)
    a = F.avg_pool2d(y, 3, 2, 1)
    da = ops.avg_pool_backward(a, [8, 8], ops.pool_geometry((3, 3), (2, 2), (1, 1), ceil_mode=False), True, None, CF, "triton")
    g = F.adaptive_avg_pool2d(y, 2)
    dg = ops.adaptive_avg_pool_backward(g, [8, 8], CF, "triton")
    return t.sum() + dw.sum() + t_depthwise.sum() + dw_depthwise.sum() + dm.sum() + am.sum() + da.sum() + dg.sum()

graphs = []
with FakeTensorMode() as mode:
    x, w, b = torch.empty(2, 4, 8, 8, device="cuda"), torch.empty(4, 4, 3, 3, device="cuda"), torch.empty(4, device="cuda")
    w_depthwise = torch.empty(4, 1, 3, 3, device="cuda")
with torchconv_impl.use_backend("triton"), mode:
    aot_function(network, fw_compiler=lambda gm, _: graphs.append(gm) or gm)(x, w, b, w_depthwise)
launches, operators = [], []
for node in graphs[0].graph.nodes:
    if node.target is torch.ops.higher_order.triton_kernel_wrapper_functional:
        kernel = kernel_side_table.get_kernel(node.kwargs["kernel_idx"])
        launches.append([kernel.fn.__name__, node.kwargs["tensors_to_clone"]])
    elif isinstance(node.target, torch._ops.OpOverload):
        operators.append(str(node.target))
print(json.dumps(dict(launches=launches, operators=operators)))
"""


@needs_triton
def test_compile_traces_triton_backend_calls_to_kernel_launches():
    """Under torch.compile a Triton-backend call is no opaque operator: AOTAutograd traces each
    twin down to its kernel launch (``triton_kernel_wrapper_functional``), which Inductor
    compiles with the graph; each launch writes only its outputs (Triton's analysis of the
    kernel proves the inputs untouched, so none is copied)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", _TRACE_ON_FAKE_CUDA], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    traced = json.loads(result.stdout.strip().splitlines()[-1])
    kernels = [name for name, _ in traced["launches"]]
    assert sorted(kernels) == sorted([
        "conv_forward_kernel", "conv_input_grad_kernel", "conv_weight_grad_kernel", "depthwise_forward_kernel",
        "depthwise_input_grad_kernel", "depthwise_weight_grad_kernel", "max_pool_forward_kernel",
        "max_pool_backward_kernel", "max_pool_forward_kernel", "avg_pool_forward_kernel", "avg_pool_backward_kernel",
        "avg_pool_forward_kernel", "avg_pool_backward_kernel",
    ])  # fmt: skip
    for name, written in traced["launches"]:
        assert set(written) <= {"y", "indices", "dx", "dw"}, (name, written)
    assert not [o for o in traced["operators"] if o.startswith("torchconv.")], traced["operators"]
    assert not [o for o in traced["operators"] if FORBIDDEN_OPS.search(o.split(".")[1])], traced["operators"]


# ---------------------------------------------------------------------------------------------
# Fake or meta calls before and between real calls of the same shapes.


def _backward(y, inputs, delta):
    """y and its gradients w.r.t. ``inputs`` for the cotangent ``delta``."""
    return (y, *torch.autograd.grad(y, inputs, delta))


# name → (shapes of the input tensors, f(functional, *tensors) → tuple of results)
SEQUENCES = {
    "conv2d": ([(2, 3, 8, 8), (4, 3, 3, 3), (4,)], lambda f, x, w, b: (f.conv2d(x, w, b, padding=1),)),
    "conv2d_strided_dilated": ([(2, 3, 9, 8), (4, 3, 3, 2), (4,)],
                               lambda f, x, w, b: (f.conv2d(x, w, b, stride=2, padding=(1, 0), dilation=(1, 2)),)),
    "conv_transpose2d": ([(2, 4, 5, 5), (4, 3, 3, 3), (3,)],
                         lambda f, x, w, b: (f.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),)),
    "max_pool2d": ([(2, 3, 8, 8)], lambda f, x: f.max_pool2d(x, 3, 2, 1, return_indices=True)),
    "avg_pool2d": ([(2, 3, 8, 8)], lambda f, x: (f.avg_pool2d(x, 3, 2, 1, ceil_mode=True),)),
    "adaptive_avg_pool2d": ([(2, 3, 8, 7)], lambda f, x: (f.adaptive_avg_pool2d(x, (3, 5)),)),
    # Unit stride with padding: δ's rows with gap columns come from the cached zero buffers.
    "conv2d_unit_stride_backward": ([(2, 3, 8, 8), (4, 3, 3, 3), (4,), (2, 4, 8, 8)],
                                    lambda f, x, w, b, d: _backward(f.conv2d(x, w, b, padding=1), (x, w, b), d)),
    "max_pool2d_backward": ([(2, 3, 8, 8), (2, 3, 4, 4)],
                            lambda f, x, d: _backward(f.max_pool2d(x, 3, 2, 1), (x,), d)),
}  # fmt: skip


def _call(case, tensors, kind):
    """``case`` on ours, on tensors that are real, fake (FakeTensorMode) or meta."""
    fn = SEQUENCES[case][1]
    if kind == "real":
        return fn(F, *(leaf(t) for t in tensors))
    if kind == "meta":
        results = fn(F, *(leaf(t.to("meta")) for t in tensors))
        assert all(r.is_meta for r in results)
        return results
    with FakeTensorMode() as mode:
        results = fn(F, *(leaf(mode.from_tensor(t)) for t in tensors))
    assert all(isinstance(r, FakeTensor) for r in results)
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kind", ["fake", "meta"])
@pytest.mark.parametrize("order", ["fake_then_real", "real_fake_real"])
@pytest.mark.parametrize("case", SEQUENCES)
def test_real_calls_after_fake_calls(case, order, kind, dtype):
    """Fake (or meta) calls of the same shapes before and between real calls leave the real
    calls' results and gradients equal to torch's: no scratch buffer or cache of the CPU
    engine keeps a fake tensor, nor a fake call's shapes in a real buffer's place."""
    shapes, fn = SEQUENCES[case]
    tensors = [torch.randn(shape, dtype=dtype) for shape in shapes]
    expected = fn(TF, *(leaf(t) for t in tensors))
    steps = [kind, "real"] if order == "fake_then_real" else ["real", kind, "real"]
    for step, kind_now in enumerate(steps):
        results = _call(case, tensors, kind_now)
        assert len(results) == len(expected)
        for r, e in zip(results, expected):
            assert r.shape == e.shape and r.dtype == e.dtype, f"step {step} ({kind_now}): {r.shape} {r.dtype} vs {e.shape} {e.dtype}"
            if kind_now == "real":
                if e.is_floating_point():
                    assert_close(r, e, msg=f"step {step} (real)")
                else:
                    torch.testing.assert_close(r, e, rtol=0, atol=0, msg=f"step {step} (real)")


# ---------------------------------------------------------------------------------------------
# Meta tensors through every functional op.


def _unpool(f, nd, shape):
    def run(d, i):
        pooled, indices = getattr(f, f"max_pool{nd}d")(d(*shape), 2, return_indices=True)
        return getattr(f, f"max_unpool{nd}d")(pooled, indices, 2)

    return run


# name → f(functional) → g(float maker, class-index maker) → result(s)
FUNCTIONAL = {
    "conv1d": lambda f: lambda d, i: f.conv1d(d(2, 3, 9), d(4, 3, 3), d(4), stride=2, padding=1),
    "conv2d": lambda f: lambda d, i: f.conv2d(d(2, 3, 9, 8), d(4, 3, 3, 3), d(4), padding="same"),
    "conv2d_grouped_strided": lambda f: lambda d, i: f.conv2d(d(2, 4, 9, 8), d(6, 2, 3, 2), None, 2, (1, 0), (2, 1), 2),
    "conv3d": lambda f: lambda d, i: f.conv3d(d(1, 2, 5, 5, 5), d(4, 1, 3, 3, 3), None, stride=2, groups=2),
    "conv_transpose1d": lambda f: lambda d, i: f.conv_transpose1d(d(2, 3, 9), d(3, 4, 3), d(4), stride=2, output_padding=1),
    "conv_transpose2d": lambda f: lambda d, i: f.conv_transpose2d(d(2, 4, 5, 6), d(4, 3, 3, 3), None, 2, 1, 1, 2),
    "conv_transpose3d": lambda f: lambda d, i: f.conv_transpose3d(d(1, 2, 3, 3, 3), d(2, 3, 2, 2, 2), d(3), stride=2),
    "max_pool1d": lambda f: lambda d, i: f.max_pool1d(d(2, 3, 9), 3, 2, 1, return_indices=True),
    "max_pool2d": lambda f: lambda d, i: f.max_pool2d(d(2, 3, 9, 8), 3, 2, 1, ceil_mode=True, return_indices=True),
    "max_pool3d": lambda f: lambda d, i: f.max_pool3d(d(1, 2, 5, 5, 5), 2),
    "avg_pool1d": lambda f: lambda d, i: f.avg_pool1d(d(2, 3, 9), 3, 2, 1),
    "avg_pool2d": lambda f: lambda d, i: f.avg_pool2d(d(2, 3, 9, 8), 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "avg_pool3d": lambda f: lambda d, i: f.avg_pool3d(d(1, 2, 5, 5, 5), 2, divisor_override=3),
    "adaptive_avg_pool1d": lambda f: lambda d, i: f.adaptive_avg_pool1d(d(2, 3, 9), 4),
    "adaptive_avg_pool2d": lambda f: lambda d, i: f.adaptive_avg_pool2d(d(2, 3, 9, 8), (3, None)),
    "adaptive_avg_pool3d": lambda f: lambda d, i: f.adaptive_avg_pool3d(d(1, 2, 5, 5, 5), 2),
    "adaptive_max_pool1d": lambda f: lambda d, i: f.adaptive_max_pool1d(d(2, 3, 9), 4, return_indices=True),
    "adaptive_max_pool2d": lambda f: lambda d, i: f.adaptive_max_pool2d(d(2, 3, 9, 8), (3, 2)),
    "adaptive_max_pool3d": lambda f: lambda d, i: f.adaptive_max_pool3d(d(1, 2, 5, 5, 5), 2, return_indices=True),
    "max_unpool1d": lambda f: _unpool(f, 1, (2, 3, 8)),
    "max_unpool2d": lambda f: _unpool(f, 2, (2, 3, 8, 6)),
    "max_unpool3d": lambda f: _unpool(f, 3, (1, 2, 4, 4, 2)),
    "linear": lambda f: lambda d, i: f.linear(d(2, 5, 7), d(3, 7), d(3)),
    "relu": lambda f: lambda d, i: f.relu(d(2, 3, 4)),
    "cross_entropy_indices": lambda f: lambda d, i: f.cross_entropy(d(4, 5), i(5, 4)),
    "cross_entropy_indices_weighted_smoothed_none": lambda f: lambda d, i: f.cross_entropy(
        d(4, 5, 3), i(5, 4, 3), d(5).abs(), ignore_index=1, reduction="none", label_smoothing=0.1),
    "cross_entropy_probabilities": lambda f: lambda d, i: f.cross_entropy(d(4, 5), d(4, 5).softmax(1)),
    "cross_entropy_probabilities_smoothed_none": lambda f: lambda d, i: f.cross_entropy(
        d(4, 5, 3), d(4, 5, 3).softmax(1), reduction="none", label_smoothing=0.2),
    "mse_loss": lambda f: lambda d, i: f.mse_loss(d(2, 3), d(2, 3)),
    "mse_loss_none": lambda f: lambda d, i: f.mse_loss(d(2, 3), d(2, 3), reduction="none"),
}  # fmt: skip


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_on_meta_tensors(name):
    """Each functional op on meta tensors returns meta tensors of torch's shapes and dtypes
    (torch's found on real tensors of the same shapes)."""
    expected = as_tuple(FUNCTIONAL[name](TF)(torch.randn, lambda high, *shape: torch.randint(high, shape)))
    actual = as_tuple(FUNCTIONAL[name](F)(
        lambda *shape: torch.empty(shape, device="meta"), lambda high, *shape: torch.empty(shape, dtype=torch.long, device="meta")
    ))  # fmt: skip
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.is_meta, a.device
        assert (a.shape, a.dtype) == (e.shape, e.dtype)


def test_backward_on_meta_tensors():
    """conv2d (unit stride, padding) and max_pool2d differentiate on meta tensors: the
    gradients are meta tensors of their inputs' shapes (and cross-entropy's of the logits')."""
    x, w, b = (torch.empty(shape, device="meta", requires_grad=True) for shape in [(2, 3, 8, 8), (4, 3, 3, 3), (4,)])
    y = F.conv2d(x, w, b, padding=1)
    assert y.is_meta and y.shape == (2, 4, 8, 8)
    grads = torch.autograd.grad(y, (x, w, b), torch.empty_like(y))
    assert [(g.is_meta, g.shape) for g in grads] == [(True, x.shape), (True, w.shape), (True, b.shape)]
    pooled = F.max_pool2d(x, 3, 2, 1)
    (grad,) = torch.autograd.grad(pooled, x, torch.empty_like(pooled))
    assert grad.is_meta and grad.shape == x.shape
    logits = torch.empty(4, 5, device="meta", requires_grad=True)
    loss = F.cross_entropy(logits, torch.empty(4, dtype=torch.long, device="meta"))
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad.is_meta and grad.shape == logits.shape


# ---------------------------------------------------------------------------------------------
# torch.export


def _target_name(target) -> str:
    return target.overloadpacket.__name__ if isinstance(target, torch._ops.OpOverload) else getattr(target, "__name__", str(target))


def _graph_ops(ep) -> tuple[set, set]:
    """(names of the torchconv operators in ``ep``'s graph, names of forbidden native ops)."""
    ours, forbidden = set(), set()
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        name = _target_name(node.target)
        if getattr(node.target, "namespace", None) == "torchconv":
            ours.add(name)
        elif FORBIDDEN_OPS.search(name):
            forbidden.add(name)
    return ours, forbidden


def _check_export(model, twin, x, tmp_path, operators):
    """model exports; the program, the program saved and loaded, and the eager model after the
    export all give the twin's output; the graph holds ``operators`` and no native conv/pool op."""
    expected = twin(x)
    ep = torch.export.export(model, (x,))
    ours, forbidden = _graph_ops(ep)
    assert ours == operators and not forbidden, (ours, forbidden)
    assert_close(ep.module()(x), model(x).detach())
    assert_close(ep.module()(x), expected)
    for _ in range(2):  # eager again, same shape: nothing of the tracing's fakes is left behind
        with no_native_ops():
            assert_close(model(x), expected)
    path = tmp_path / "program.pt2"
    torch.export.save(ep, path)
    loaded = torch.export.load(path)
    assert _graph_ops(loaded) == (operators, set())
    assert_close(loaded.module()(x), expected)
    return ep


def test_export_conv2d_then_eager():
    """A single Conv2d exports and then still gives torch's output eagerly (the export once left
    fake tensors in the CPU engine's buffers: later results were off by 1e24)."""
    theirs = torch.nn.Conv2d(3, 4, 3)
    ours = torchconv_impl.convert(theirs)
    x = torch.randn(2, 3, 8, 8)
    ep = torch.export.export(ours, (x,))
    assert_close(ep.module()(x), theirs(x))
    for _ in range(2):
        assert_close(ours(x), theirs(x))


def test_export_lenet5(tmp_path):
    """LeNet-5 (ReLU, max pooling) exports with our operators only; exported, saved/loaded and
    eager-after-export outputs equal the torch.nn twin's."""
    model = LeNet5(activation="relu", pooling="max")
    _check_export(model, model.twin(), torch.randn(2, 1, 32, 32), tmp_path, {"conv_forward", "max_pool_forward"})


def test_export_lenet5_dynamic_batch():
    """Exported with a dynamic batch dimension, LeNet-5 runs on another batch size and gives
    the twin's output (the fake implementations work with symbolic sizes)."""
    model = LeNet5(activation="relu", pooling="max")
    batch = torch.export.Dim("batch", min=2, max=64)
    ep = torch.export.export(model, (torch.randn(2, 1, 32, 32),), dynamic_shapes={"input": {0: batch}})
    x = torch.randn(5, 1, 32, 32)
    assert_close(ep.module()(x), model.twin()(x))


def test_export_resnet18(tmp_path):
    """A converted torchvision ResNet-18 (eval) exports with our operators only; exported,
    saved/loaded and eager-after-export outputs equal the original's."""
    theirs = torchvision.models.resnet18(num_classes=10).eval()
    ours = torchconv_impl.convert(theirs).eval()
    operators = {"conv_forward", "max_pool_forward", "adaptive_avg_pool_forward"}
    with torch.no_grad():
        _check_export(ours, theirs, torch.randn(1, 3, 32, 32), tmp_path, operators)


def test_training_through_exported_lenet5():
    """Backward through ``ep.module()`` of LeNet-5 runs our gradient operators (the exported
    operators carry the autograd formula; no native conv/pool op) and gives the eager model's
    parameter and input gradients, which are the torch twin's. (``ep.module()`` shares the
    exported model's parameters, so a copy is exported.)"""
    model = LeNet5(activation="relu", pooling="max")
    twin = model.twin()
    x = torch.randn(2, 1, 32, 32)
    delta = torch.randn(2, 10)
    program = torch.export.export(copy.deepcopy(model), (x,)).module()
    inputs = [leaf(x) for _ in range(3)]
    output = program(inputs[0])
    with no_native_ops() as mode:
        output.backward(delta)
    assert {"conv_input_grad", "conv_weight_grad", "max_pool_backward", "relu_input_grad"} <= set(mode.ops)
    model(inputs[1]).backward(delta)
    twin(inputs[2]).backward(delta)
    exported, eager, torch_twin = (dict(m.named_parameters()) for m in (program, model, twin))
    assert exported.keys() == eager.keys() == torch_twin.keys()
    assert not any(exported[name] is eager[name] for name in eager)
    for name in eager:
        assert_close(exported[name].grad, eager[name].grad, msg=name)
        assert_close(eager[name].grad, torch_twin[name].grad, msg=name)
    assert_close(inputs[0].grad, inputs[1].grad)
    assert_close(inputs[1].grad, inputs[2].grad)
