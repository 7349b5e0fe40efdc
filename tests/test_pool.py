"""Pooling vs torch (the oracle): outputs, indices, gradients, double gradients, errors, modules."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF
from support import DEVICE, DTYPES, TORCH_REJECTS, check_against_torch, no_native_ops, record_calls

import torchconv_impl.functional as F
import torchconv_impl.nn as N
from torchconv_impl import ArgumentError

TORCH_ERRORS = (*TORCH_REJECTS, TypeError)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tensors here are tiny: torch's intra-op threads only add overhead, and on a busy 2-core
    machine each native pooling call stalls for milliseconds waiting for them."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _name(fn_name: str, nd: int) -> str:
    return f"{fn_name}{nd}d"


def ours_and_torch(fn_name: str, nd: int):
    name = _name(fn_name, nd)
    return getattr(F, name), getattr(TF, name)


def torch_accepts(theirs, *args, **kwargs) -> bool:
    try:
        theirs(*args, **kwargs)
    except TORCH_ERRORS:
        return False
    return True


def _with_indices(unpool, indices, *args):
    """``unpool`` with its indices (and any further arguments) bound: a function of the pooled values."""

    def max_unpool(pooled, **kwargs):
        return unpool(pooled, indices, *args, **kwargs)

    return max_unpool


def make_input(shape, dtype, memory_format=torch.contiguous_format):
    """Random values of ``dtype`` in ``memory_format``; floating-point inputs require grad."""
    if dtype.is_floating_point:
        t = torch.randn(shape, dtype=dtype, device=DEVICE)
    else:
        t = torch.randint(-50, 50, shape, device=DEVICE).to(dtype)
    return t.contiguous(memory_format=memory_format).requires_grad_(dtype.is_floating_point)


# ---------------------------------------------------------------------------------------------
# Max pooling: PyTorch's OpInfo sample product (common_methods_invocations._TestParamsMaxPool*).

MAX_POOL_OPTIONS = {
    1: dict(kernel_size=[3, (3,)], stride=[2, None, (2,)], padding=[0, 1, (1,)], dilation=[1, (1,)]),
    2: dict(kernel_size=[3, (3, 2)], stride=[2, None, (2, 1)], padding=[0, 1, (1, 1)], dilation=[1, (1, 2)]),
    3: dict(kernel_size=[3, (3, 2, 3)], stride=[2, None, (2, 1, 2)], padding=[0, 1], dilation=[1, (1, 2, 1)]),
}
OPINFO_SPATIAL = {1: [(3,), (6,)], 2: [(3, 6), (6, 6)], 3: [(3, 6, 5), (6, 6, 5)]}


def opinfo_shapes(nd):
    for batch, spatial in itertools.product([(1,), (2,), ()], OPINFO_SPATIAL[nd]):
        shape = (*batch, 2, *spatial)
        yield shape, torch.contiguous_format
        if nd == 2 and len(shape) == 4:  # as OpInfo: channels_last for batched 2-d only
            yield shape, torch.channels_last


def kwargs_product(options):
    for values in itertools.product(*options.values()):
        yield dict(zip(options, values))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "nd, shape, memory_format",
    [(nd, shape, mf) for nd in (1, 2, 3) for shape, mf in opinfo_shapes(nd)],
    ids=lambda v: str(v).replace("torch.", ""),
)
def test_max_pool_opinfo_samples(backend, nd, shape, memory_format, dtype):
    ours, theirs = ours_and_torch("max_pool", nd)
    options = dict(MAX_POOL_OPTIONS[nd], ceil_mode=[True, False], return_indices=[True, False])
    x = make_input(shape, dtype, memory_format)
    accepted = 0
    for kwargs in kwargs_product(options):
        if not torch_accepts(theirs, x, **kwargs):
            with pytest.raises(ArgumentError):
                ours(x, **kwargs)
            continue
        accepted += 1
        check_against_torch(ours, theirs, x, exact=True, msg=str(kwargs), **kwargs)
    assert accepted > 0


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_stride_forms(backend, nd):
    """stride None, [] and () all mean the kernel size."""
    ours, theirs = ours_and_torch("max_pool", nd)
    x = make_input((2, 3, *(7,) * nd), torch.float64)
    for stride in (None, [], ()):
        if torch_accepts(theirs, x, 2, stride):
            check_against_torch(ours, theirs, x, 2, stride, exact=True, msg=f"stride={stride!r}")
        else:
            assert ours(x, 2, stride).shape == ours(x, 2).shape


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.int8])
def test_max_pool_integer_dtypes(backend, dtype):
    x = make_input((2, 3, 5, 6), dtype)
    check_against_torch(F.max_pool2d, TF.max_pool2d, x, 3, 2, 1, return_indices=True, exact=True)
    check_against_torch(F.max_pool1d, TF.max_pool1d, x[0], 2, 1, 1, return_indices=True, exact=True)
    check_against_torch(F.max_pool3d, TF.max_pool3d, x, (1, 2, 3), padding=(0, 1, 1), ceil_mode=True, exact=True)


NAN, INF = float("nan"), float("inf")
# Windows with NaNs (torch's index: the last NaN), ties (the first maximum), all −inf windows
# overlapping the padding (the first in-bounds element), and NaN beside −inf.
SPECIAL_ROW = [1.0, NAN, 3.0, NAN, 2.0, 5.0, 5.0, 0.0, -INF, -INF, 1.0, NAN, -INF, -INF, -INF, NAN, 4.0, 4.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_nan_ties_and_infinities(backend, nd, dtype):
    row = torch.tensor(SPECIAL_ROW, dtype=dtype, device=DEVICE)
    plane = torch.stack([row, row.roll(1), row.flip(0), torch.full_like(row, -INF)])  # (4, 18)
    x = plane.expand(2, 2, 4, 18).reshape(2, 2, *{1: (72,), 2: (4, 18), 3: (2, 2, 18)}[nd])
    ours, theirs = ours_and_torch("max_pool", nd)
    other = (1,) * (nd - 1)  # the windows slide along the last dim, 2 wide (padded by ≤ 1) across the others
    for kernel, stride, padding, dilation in [(4, None, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2), (2, 1, 1, 1)]:
        for ceil_mode in (False, True):
            args = dict(
                kernel_size=(2,) * (nd - 1) + (kernel,),
                stride=stride and other + (stride,),
                padding=(min(padding, 1),) * (nd - 1) + (padding,),
                dilation=other + (dilation,),
                ceil_mode=ceil_mode,
            )
            check_against_torch(ours, theirs, x, return_indices=True, exact=True, msg=str(args), **args)
    ours, theirs = ours_and_torch("adaptive_max_pool", nd)
    for size in (1, 3, 5):
        check_against_torch(ours, theirs, x, size, return_indices=True, exact=True, msg=f"adaptive {size}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_max_pool_finite_ties_and_plane_edges(backend, dtype):
    """Finite inputs full of ties (small integers): the first maximum wins in every window,
    across padding, dilation, ceil mode and windows wider than the plane. Adding one NaN far
    away sends the same windows through torch's literal scan (the CPU engine's path
    for non-finite input); both must give torch's indices."""
    x = torch.randint(-2, 2, (2, 3, 5, 4), device=DEVICE).to(dtype)
    with_nan = torch.cat([x, torch.full_like(x[:1], NAN)])
    for kernel, stride, padding, dilation, ceil_mode in [
        (2, 2, 0, 1, False), (3, 2, 1, 1, True), ((3, 2), 1, (1, 0), (2, 3), False), (5, 1, 2, 1, True), ((4, 3), 3, (2, 1), 1, True)
    ]:
        args = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        check_against_torch(F.max_pool2d, TF.max_pool2d, x, return_indices=True, exact=True, msg=str(args), **args)
        check_against_torch(F.max_pool2d, TF.max_pool2d, with_nan, return_indices=True, exact=True, msg=f"with NaN {args}", **args)


def test_max_pool_indices_are_flat_plane_positions(backend):
    x = torch.zeros(1, 1, 3, 4, device=DEVICE)
    x[0, 0, 2, 1] = 1.0
    _, indices = F.max_pool2d(x, (3, 4), return_indices=True)
    assert indices.item() == 2 * 4 + 1


def test_max_pool_overlapping_windows_accumulate(backend):
    """A shared argmax receives the sum of δ of every window that chose it: windows
    [pad 0 9], [0 9 0], [9 0 0] all pick the 9; [0 0 pad] picks its first 0."""
    x = torch.tensor([[[0.0, 9.0, 0.0, 0.0]]], device=DEVICE, requires_grad=True)
    output = F.max_pool1d(x, 3, stride=1, padding=1)
    (grad,) = torch.autograd.grad(output, x, torch.tensor([[[1.0, 2.0, 4.0, 8.0]]], device=DEVICE))
    torch.testing.assert_close(grad, torch.tensor([[[0.0, 7.0, 8.0, 0.0]]], device=DEVICE))


def test_max_pool_backward_gets_no_gradient_for_indices(backend, monkeypatch):
    """The indices output has no gradient: backward receives None for it rather than a
    zero-filled int64 tensor of the output's size (autograd's default), which would cost a
    fill per step. Its dX is still torch's, with and without the indices returned."""
    from torchconv_impl.autograd import pool as autograd_pool

    calls = record_calls(monkeypatch, autograd_pool.MaxPool, "backward")
    x = make_input((2, 3, 6, 6), torch.float64)
    for return_indices in (False, True):
        check_against_torch(F.max_pool2d, TF.max_pool2d, x, 2, return_indices=return_indices, exact=True)
    assert [grad_indices for (_, _, grad_indices), _, _ in calls] == [None, None]


# ---------------------------------------------------------------------------------------------
# Average pooling.

AVG_POOL_OPTIONS = {
    1: dict(kernel_size=[3, (2,)], stride=[None, 2, (1,)], padding=[0, 1]),
    2: dict(kernel_size=[3, (3, 2)], stride=[None, 2, (2, 1)], padding=[0, 1, (1, 0)]),
    3: dict(kernel_size=[3, (3, 2, 3)], stride=[None, 2, (2, 1, 2)], padding=[0, 1]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("batch", [(2,), ()], ids=["batched", "unbatched"])
def test_avg_pool_options(backend, nd, batch, dtype):
    ours, theirs = ours_and_torch("avg_pool", nd)
    options = dict(AVG_POOL_OPTIONS[nd], ceil_mode=[False, True], count_include_pad=[True, False])
    if nd > 1:
        options["divisor_override"] = [None, 3, -2]
    spatial = {1: (7,), 2: (6, 5), 3: (4, 5, 6)}[nd]
    memory_format = torch.channels_last if nd == 2 and batch else torch.contiguous_format
    x = make_input((*batch, 2, *spatial), dtype, memory_format)
    for kwargs in kwargs_product(options):
        if not torch_accepts(theirs, x, **kwargs):
            with pytest.raises(ArgumentError):
                ours(x, **kwargs)
            continue
        check_against_torch(ours, theirs, x, msg=str(kwargs), **kwargs)


def test_avg_pool_ceil_mode_drops_window_starting_in_padding(backend):
    """Length 5, k=2, s=2, p=1, ceil: (5+2−2+1)/2+1 = 4 windows, but the 4th would start at
    padded position 6 ≥ 5+1 (in the right padding), so torch keeps 3."""
    x = make_input((1, 1, 5), torch.float64)
    assert F.avg_pool1d(x, 2, 2, 1, ceil_mode=True).shape[-1] == 3
    check_against_torch(F.avg_pool1d, TF.avg_pool1d, x, 2, 2, 1, ceil_mode=True, count_include_pad=False)
    check_against_torch(F.max_pool1d, TF.max_pool1d, x, 2, 2, 1, ceil_mode=True, return_indices=True, exact=True)


def test_avg_pool_int64_truncates(backend):
    x = make_input((2, 3, 5, 7), torch.int64)
    check_against_torch(F.avg_pool2d, TF.avg_pool2d, x, 3, 2, 1, count_include_pad=False)
    check_against_torch(F.avg_pool1d, TF.avg_pool1d, x[0], 2)
    check_against_torch(F.avg_pool3d, TF.avg_pool3d, x, (1, 2, 3), divisor_override=-2)


# ---------------------------------------------------------------------------------------------
# Adaptive pooling.

ADAPTIVE_SIZES = {
    1: [1, 3, 7, (4,), 10],
    2: [1, (3, 2), (None, 4), (7, 5), (9, 11), (2, None)],
    3: [1, (2, None, 3), (5, 4, 6), (3, 7, 2)],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["adaptive_avg_pool", "adaptive_max_pool"])
def test_adaptive_pool_sizes(backend, kind, nd, dtype):
    ours, theirs = ours_and_torch(kind, nd)
    spatial = {1: (7,), 2: (7, 5), 3: (5, 4, 6)}[nd]
    extra = dict(return_indices=True) if kind == "adaptive_max_pool" else {}
    for batch, memory_format in [((2,), torch.contiguous_format), ((), torch.contiguous_format), ((2,), "channels_last")]:
        if memory_format == "channels_last":
            memory_format = {2: torch.channels_last, 3: torch.channels_last_3d}.get(nd)
            if memory_format is None:
                continue
        x = make_input((*batch, 3, *spatial), dtype, memory_format)
        for size in ADAPTIVE_SIZES[nd]:
            if nd == 1 and isinstance(size, tuple) and None in size:
                continue  # torch's 1-d ops reject None; ours keep the input size
            check_against_torch(ours, theirs, x, size, exact=kind == "adaptive_max_pool", msg=f"{batch} {memory_format} {size}", **extra)


def test_adaptive_pool_empty_output_and_channels(backend):
    # Forward only where an output dimension past the batch is empty: torch's backward refuses those.
    x = make_input((2, 3, 5, 6), torch.float64).detach()
    check_against_torch(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, x, (0, 2))
    check_against_torch(F.adaptive_max_pool2d, TF.adaptive_max_pool2d, x, 0, return_indices=True, exact=True)
    check_against_torch(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, make_input((2, 0, 5, 6), torch.float64).detach(), 3)
    check_against_torch(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, make_input((0, 3, 5, 6), torch.float64), 3)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_empty_batch_forward_and_backward(backend, nd):
    """A batch of zero samples (the tail of a dataset split, say): torch pools it and
    backpropagates through it; every pooling op here must too, as a last batch may be empty."""
    x = make_input((0, 3, *(6,) * nd), torch.float64).requires_grad_()
    for name, args, kwargs in [
        ("max_pool", (2,), {}), ("max_pool", (3, 2, 1), dict(return_indices=True)), ("avg_pool", (2,), {}),
        ("adaptive_avg_pool", (4,), {}), ("adaptive_max_pool", (4,), dict(return_indices=True)),
    ]:
        ours, theirs = ours_and_torch(name, nd)
        expected = theirs(x, *args, **kwargs)
        with no_native_ops():
            actual = ours(x, *args, **kwargs)
            pooled = actual[0] if isinstance(actual, tuple) else actual
            (grad,) = torch.autograd.grad(pooled.sum(), x)
        expected = expected[0] if isinstance(expected, tuple) else expected
        assert pooled.shape == expected.shape and grad.shape == x.shape, name
    pooled, indices = getattr(TF, _name("max_pool", nd))(x, 2, return_indices=True)
    unpool, torch_unpool = ours_and_torch("max_unpool", nd)
    with no_native_ops():
        unpooled = unpool(pooled, indices, 2)
        (grad,) = torch.autograd.grad(unpooled.sum(), pooled)
    assert unpooled.shape == torch_unpool(pooled, indices, 2).shape and grad.shape == pooled.shape


def test_one_to_one_windows_are_the_identity(backend):
    x = make_input((2, 3, 4, 5), torch.float64)
    torch.testing.assert_close(F.adaptive_avg_pool2d(x, (4, 5)), x, rtol=0, atol=0)
    torch.testing.assert_close(F.avg_pool2d(x, 1), x, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# Max unpooling.


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_round_trip(backend, nd, dtype):
    ours, theirs = ours_and_torch("max_unpool", nd)
    pool = getattr(TF, _name("max_pool", nd))
    spatial = {1: (8,), 2: (6, 8), 3: (4, 6, 8)}[nd]
    odd = tuple(s + 1 for s in spatial)
    # Windows that do not overlap (an index shared by two windows makes unpooling ambiguous);
    # the output plane must have the pooled input's size for the flat indices to mean the same.
    for batch, kernel, stride, padding, output_size in [
        ((2,), 2, None, 0, None),  # the default size is the input's
        ((), 2, None, 0, None),
        ((2,), 3, 3, 1, spatial),
        ((2,), 2, 3, 0, spatial),
        ((2,), 2, None, 0, odd),  # one more than the default
        ((2,), 2, None, 0, (2, 3, *odd)),  # given with batch and channels
    ]:
        spatial_in = spatial if output_size is None else output_size[-nd:]
        x = make_input((*batch, 3, *spatial_in), dtype)
        pooled, indices = pool(x, kernel, stride, padding, return_indices=True)
        options = dict(kernel_size=kernel, stride=stride, padding=padding, output_size=output_size)
        check_against_torch(_with_indices(ours, indices), _with_indices(theirs, indices), pooled, exact=True, msg=str(options), **options)


def test_max_unpool_integer(backend):
    x = make_input((2, 3, 4, 6), torch.int32)
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    expected = TF.max_unpool2d(pooled.double(), indices, 2).to(torch.int32)  # torch has no integer unpool
    torch.testing.assert_close(F.max_unpool2d(pooled, indices, 2), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_low_precision(backend, dtype):
    x = make_input((2, 3, 7, 6), torch.float32)
    check_against_torch(F.max_pool2d, TF.max_pool2d, x.to(dtype), 3, 2, 1, return_indices=True, exact=True)
    check_against_torch(F.adaptive_max_pool2d, TF.adaptive_max_pool2d, x.to(dtype), 4, return_indices=True, exact=True)
    for name, args in [("avg_pool2d", (3, 2, 1, True, False)), ("adaptive_avg_pool2d", (4,))]:
        check_against_torch(getattr(F, name), getattr(TF, name), x.to(dtype), *args, reference_dtype=torch.float32, msg=name)


# ---------------------------------------------------------------------------------------------
# gradcheck / gradgradcheck (float64; torch supports double backward for every pooling op).


def _max_unpool_of_pool(nd):
    pool, unpool = getattr(F, _name("max_pool", nd)), getattr(F, _name("max_unpool", nd))

    def fn(x):
        pooled, indices = pool(x, 2, return_indices=True)
        return unpool(pooled * 2, indices, 2, output_size=x.shape[2:])

    return fn


GRADCHECK_CASES = [
    ("max_pool", lambda nd: lambda x: getattr(F, _name("max_pool", nd))(x, 3, 1, 1, 1, True)),
    ("max_pool dilated", lambda nd: lambda x: getattr(F, _name("max_pool", nd))(x, 2, 2, 1, 2, True)),
    ("avg_pool", lambda nd: lambda x: getattr(F, _name("avg_pool", nd))(x, 3, 2, 1, True, False)),
    ("avg_pool overlapping", lambda nd: lambda x: getattr(F, _name("avg_pool", nd))(x, 2, 1, 1)),
    ("adaptive_avg_pool", lambda nd: lambda x: getattr(F, _name("adaptive_avg_pool", nd))(x, 3)),
    ("adaptive_max_pool", lambda nd: lambda x: getattr(F, _name("adaptive_max_pool", nd))(x, 3)),
    ("max_unpool", _max_unpool_of_pool),
]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck_and_gradgradcheck(backend, case, nd):
    fn = case[1](nd)
    x = torch.randn(1, 2, *(5, 4, 3)[:nd], dtype=torch.float64, device=DEVICE, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    with no_native_ops():  # once, not inside gradcheck: the dispatch check is slow per op
        output = fn(x)
        delta = torch.randn_like(output, requires_grad=True)
        (grad,) = torch.autograd.grad(output, x, delta, create_graph=True)
        torch.autograd.grad(grad, delta, torch.randn_like(grad))


# ---------------------------------------------------------------------------------------------
# Argument errors: each rejected by torch too, and by us with an ArgumentError naming the problem.

X1, X2, X3 = (torch.randn(1, 2, *(6,) * nd) for nd in (1, 2, 3))
IDX2 = TF.max_pool2d(X2, 2, return_indices=True)[1]
ERROR_CASES = [
    ("max_pool2d", (X2[0, 0], 2), {}, "input to be 3-D"),
    ("max_pool2d", (X2[None], 2), {}, "input to be 3-D"),
    ("max_pool1d", (torch.randn(0, 4), 2), {}, "non-zero channel"),
    ("max_pool2d", (torch.randn(1, 2, 0, 6), 2), {}, "non-zero channel and spatial"),
    ("max_pool2d", (X2, 0), {}, "kernel_size to be positive"),
    ("max_pool2d", (X2, -1), {}, "kernel_size to be positive"),
    ("max_pool2d", (X2, (2, 2, 2)), {}, "kernel_size to be an int or a tuple of 2"),
    ("max_pool2d", (X2, 2, 0), {}, "stride to be positive"),
    ("max_pool1d", (X1, 2, 0), {}, "stride to be positive"),
    ("max_pool2d", (X2, 3, 1, -1), {}, "padding to be non-negative"),
    ("max_pool2d", (X2, 3, 1, 2), {}, "padding to be at most half"),
    ("max_pool2d", (X2, 3, 1, 2, 2), {}, "padding to be at most half"),  # dilation does not widen it
    ("max_pool1d", (X1, 2, 1, 2), {"return_indices": True}, "padding to be at most half"),
    ("max_pool2d", (X2, 2), {"dilation": 0}, "dilation to be positive"),
    ("max_pool2d", (X2, 7), {}, "too small"),
    ("max_pool3d", (X3, 3), {"dilation": 3}, "too small"),
    ("max_pool2d", (X2.bool(), 2), {}, "floating-point or integer dtype"),
    ("max_pool2d", (X2.to(torch.complex64), 2), {}, "floating-point or integer dtype"),
    ("avg_pool2d", (X2, 3, 1, 2), {}, "padding to be at most half"),
    ("avg_pool1d", (X1, 2, 0), {}, "stride to be positive"),
    ("avg_pool2d", (X2, 7), {}, "too small"),
    ("avg_pool2d", (X2, 2), {"divisor_override": 0}, "divisor_override to be None or a non-zero int"),
    ("avg_pool2d", (X2, 2), {"divisor_override": 2.5}, "divisor_override to be None or a non-zero int"),
    ("avg_pool2d", (X2.int(), 2), {}, "floating-point dtype or int64"),
    ("avg_pool3d", (torch.randn(1, 0, 6, 6, 6), 2), {}, "non-zero channel"),
    ("adaptive_avg_pool2d", (X2, -1), {}, "output_size to be non-negative"),
    ("adaptive_avg_pool2d", (X2, (3,)), {}, "output_size to be an int or a tuple of 2"),
    ("adaptive_avg_pool2d", (X2, (3, 3, 3)), {}, "output_size to be an int or a tuple of 2"),
    ("adaptive_avg_pool2d", (torch.randn(1, 2, 0, 4), 2), {}, "non-zero spatial"),
    ("adaptive_avg_pool2d", (torch.randn(3, 4), 2), {}, "input to be 3-D"),
    ("adaptive_avg_pool2d", (X2.long(), 2), {}, "floating-point dtype"),
    ("adaptive_max_pool2d", (torch.randn(1, 0, 6, 6), 2), {}, "non-zero channel"),
    ("adaptive_max_pool2d", (X2.long(), 2), {}, "floating-point dtype"),
    ("adaptive_avg_pool1d", (torch.randn(4), 2), {}, "input to be 2-D"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2.int(), 2), {}, "indices to be an int64 tensor"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2.float(), 2), {}, "indices to be an int64 tensor"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2[..., :2], 2), {}, "indices of the input's size"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2 + 36, 2), {}, r"indices in \[0, 36\)"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2 - 36, 2), {}, r"indices in \[0, 36\)"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2, 2), {"output_size": (9, 6)}, "within one stride"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2, 2), {"output_size": (6,)}, "sequence of 2 or 4 ints"),
    ("max_unpool2d", (X2[..., :3, :3], IDX2, 2), {"output_size": (5, 5)}, r"indices in \[0, 25\)"),
    ("max_unpool1d", (X1[0, 0, :3], IDX2[0, 0, 0], 2), {}, "input to be 2-D"),
    ("max_unpool2d", (X2[:, :0, :3, :3], IDX2[:, :0], 2), {}, "non-zero channel"),
]


@pytest.mark.parametrize("name, args, kwargs, message", ERROR_CASES, ids=[f"{c[0]}-{c[3]}" for c in ERROR_CASES])
def test_argument_errors(name, args, kwargs, message):
    """Rejected as torch rejects it, with an ArgumentError naming the op, before any tensor op
    runs — except the index range check, which has to read the indices."""
    with pytest.raises(TORCH_ERRORS):
        getattr(TF, name)(*args, **kwargs)
    with no_native_ops() as recorded, pytest.raises(ArgumentError, match=message) as error:
        getattr(F, name)(*args, **kwargs)
    assert name in str(error.value)
    assert recorded.ops == [] or message.startswith(r"indices in \["), recorded.ops


# ---------------------------------------------------------------------------------------------
# Modules: torch.nn twins with the same constructor, repr, state_dict and results.

MODULE_CASES = [
    ("MaxPool1d", (3,), dict(stride=2, padding=1, dilation=1, ceil_mode=True)),
    ("MaxPool2d", ((3, 2),), dict(stride=(2, 1), padding=1, dilation=(1, 2), return_indices=True)),
    ("MaxPool3d", (2,), dict(ceil_mode=True)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("AvgPool2d", ((3, 2),), dict(stride=(2, 1), padding=(1, 0), divisor_override=4)),
    ("AvgPool3d", (2,), dict(stride=1, padding=1, count_include_pad=False)),
    ("AdaptiveAvgPool1d", (4,), {}),
    ("AdaptiveAvgPool2d", ((None, 3),), {}),
    ("AdaptiveAvgPool3d", (2,), {}),
    ("AdaptiveMaxPool1d", (4,), dict(return_indices=True)),
    ("AdaptiveMaxPool2d", ((3, None),), {}),
    ("AdaptiveMaxPool3d", ((2, 3, 2),), dict(return_indices=True)),
]


@pytest.mark.parametrize("name, args, kwargs", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_modules_match_torch_nn(backend, name, args, kwargs):
    ours, theirs = getattr(N, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert isinstance(ours, type(theirs))
    assert repr(ours) == repr(theirs)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    nd = int(name[-2])
    x = make_input((2, 3, *(7, 6, 5)[:nd]), torch.float64)
    check_against_torch(ours, theirs, x, exact="Max" in name, msg=name)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize(
    "kernel_size, stride, padding, sizes", [(2, None, 0, (6, 4, 8)), (3, 2, 1, (7, 5, 9))], ids=["default", "stride-padding"]
)
def test_max_unpool_modules_match_torch_nn(backend, nd, kernel_size, stride, padding, sizes):
    """The module passes its kernel_size, stride and padding on: unpooling a pool of the same
    geometry, with and without output_size (the sizes are ones the default output size restores)."""
    name = f"MaxUnpool{nd}d"
    ours, theirs = (getattr(m, name)(kernel_size, stride=stride, padding=padding) for m in (N, torch.nn))
    assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
    x = make_input((2, 3, *sizes[:nd]), torch.float64)
    pooled, indices = getattr(torch.nn, f"MaxPool{nd}d")(kernel_size, stride, padding, return_indices=True)(x)
    for size in (None, x.shape[2:]):
        check_against_torch(_with_indices(ours, indices, size), _with_indices(theirs, indices, size), pooled, exact=True, msg=f"{name} {size}")
