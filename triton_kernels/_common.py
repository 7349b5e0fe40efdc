"""What every kernel family shares: configs (autotuned on a GPU, one under the interpreter),
index blocks that switch to int64 for big tensors, the dot with torch's precision rules, and
the launch helpers (dtype constants, output layout, device guard)."""
from __future__ import annotations

import contextlib
import functools
import os

import torch
import triton
import triton.language as tl
from torch._subclasses.fake_tensor import is_fake

# Read once, when the kernels are decorated (Triton reads it then too). Under the interpreter
# the kernels run on CPU tensors, program by program in numpy: one small config, no tuning.
INTERPRET = tl.constexpr(bool(triton.knobs.runtime.interpret))  # a constexpr: kernels read it too

DOT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def configs(space, names=("BLOCK_M", "BLOCK_N", "BLOCK_K")):
    """A ``triton.Config`` per (*block sizes named by ``names``, num_warps, num_stages) of ``space``.

    Under the interpreter a single config with 16-wide blocks (tl.dot's minimum): no tuning.
    ``TORCHCONV_AUTOTUNE=N`` (read at import) keeps the first N of ``space``: each new shape then
    compiles N variants instead of all, which a time-boxed run (a test suite, a first benchmark
    on a lent GPU) needs; 1 tunes nothing.
    """
    if INTERPRET:
        return [triton.Config(dict.fromkeys(names, 16), num_warps=1, num_stages=1)]
    limit = int(os.environ.get("TORCHCONV_AUTOTUNE", "0")) or len(space)
    return [
        triton.Config(dict(zip(names, blocks)), num_warps=warps, num_stages=stages)
        for *blocks, warps, stages in space[:limit]
    ]


def accumulator(dtype: torch.dtype):
    """float64 sums in float64, every other dtype in float32."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def dot_precision(dtype: torch.dtype) -> str:
    """TF32 for float32 only where torch's own convolution would use it."""
    return "tf32" if dtype == torch.float32 and _cudnn_conv_allows_tf32() else "ieee"


def _cudnn_conv_allows_tf32() -> bool:
    """cuDNN convolution's float32 precision: ``cudnn.conv.fp32_precision``, "none" deferring to
    ``cudnn.fp32_precision`` then ``backends.fp32_precision`` (``cudnn.allow_tf32`` sets the
    first; reading that legacy flag raises once the new ones disagree). Older torch: allow_tf32."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is None:
        return torch.backends.cudnn.allow_tf32
    for precision in (conv.fp32_precision, torch.backends.cudnn.fp32_precision, torch.backends.fp32_precision):
        if precision != "none":
            return precision == "tf32"
    return False


# Index blocks run past a tensor's end by up to a tile (masked); a tile is far below this.
_TILE_MARGIN = 2**16


def needs_int64(*tensors) -> bool:
    """Whether an index into any of ``tensors`` can pass int32: its largest element offset
    (strided), or its element count, plus a tile's overshoot — a block index near 2³¹ computed
    in int32 would wrap negative, pass the ``< size`` mask and address memory before the tensor."""
    return any(
        t is not None
        and max(sum((size - 1) * stride for size, stride in zip(t.shape, t.stride())), t.numel()) + _TILE_MARGIN >= 2**31 - 1
        for t in tensors
    )


def traceable(kernel, tensor: torch.Tensor):
    """``kernel`` to launch on ``tensor``: while torch.compile traces the Triton operators
    (``torchconv_impl.ops`` makes each a ``torch.library.triton_op``; ``tensor`` is then fake),
    as ``torch.library.wrap_triton`` wraps it, which records the launch in the graph for Inductor
    to compile with it; otherwise the kernel itself (interpreted kernels cannot be traced)."""
    return torch.library.wrap_triton(kernel) if is_fake(tensor) and not INTERPRET else kernel


@functools.cache
def multiprocessors(device: torch.device) -> int:
    """The GPU's streaming multiprocessors (what split-K sizes its grid for); 1 off CUDA."""
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1


def split_count(tiles: int, length: int, least: int, device: torch.device) -> int:
    """Splits of a reduction of ``length`` for a grid of ``tiles`` output tiles: enough programs
    for two waves on the GPU, each split keeping at least ``least`` of the reduction (fewer
    would make the partial sums cost more than they save)."""
    return max(1, min(triton.cdiv(2 * multiprocessors(device), tiles), length // least))


def tuning_bucket(length: int) -> int:
    """A batch-dependent length (GEMM rows M, reduction pairs N·P) as the autotuning key holds it
    (the kernels' M_BUCKET, NP_BUCKET): rounded up to a power of two, so that a partial last
    batch reuses the full batches' configs instead of tuning every kernel again."""
    return triton.next_power_of_2(length)


def geometry_3d(geometry) -> tuple:
    """A ConvGeometry's stride, low padding and dilation for ``sizes_3d`` problems."""
    return pad_front(geometry.stride, 1), pad_front((lo for lo, _ in geometry.padding), 0), pad_front(geometry.dilation, 1)


def rows_by_channels(rows: int, channels: int):
    """The launch grid of a kernel tiling rows × channels: (row blocks, channel blocks)."""
    return lambda meta: (triton.cdiv(rows, meta["BLOCK_M"]), triton.cdiv(channels, meta["BLOCK_N"]))


def device_guard(tensor: torch.Tensor):
    """Kernels launch on the current CUDA device: make it ``tensor``'s. A traced launch (a fake
    tensor) needs none: the compiled code places it."""
    if tensor.is_cuda and not is_fake(tensor):
        return torch.cuda.device(tensor.device)
    return contextlib.nullcontext()


def empty_like_layout(shape, like: torch.Tensor, dtype=None) -> torch.Tensor:
    """A new (N, C, *S) tensor stored like ``like``: channels-last when ``like`` is, else contiguous.

    The autograd Functions return outputs in the input's memory format; allocating that way
    here spares them a copy. One allocation, never a view of one: a traced launch writes its
    output in place, and a view's writes would have to be carried back to its base.
    """
    dtype = dtype or like.dtype
    channels_last = like.dim() > 2 and like.stride(1) == 1 and like.shape[1] > 1 and not like.is_contiguous()
    if not channels_last:
        return torch.empty(shape, dtype=dtype, device=like.device)
    strides, step = [0] * len(shape), 1
    for dim in (1, *range(len(shape) - 1, 1, -1), 0):  # innermost first: C, then S from its last dim, then N
        strides[dim] = step
        step *= shape[dim]
    return torch.empty_strided(shape, strides, dtype=dtype, device=like.device)


def sizes_3d(tensor: torch.Tensor) -> tuple:
    """(D, H, W) of an (N, C, *S) tensor with 1 to 3 spatial dims: unit dims in front."""
    return pad_front(tensor.shape[2:], 1)


def strides_3d(tensor: torch.Tensor) -> tuple:
    """The (N, C, D, H, W) strides for ``sizes_3d`` (an added unit dim's stride is never used).
    Kernels take the tensor itself with these, not an unsqueezed view: a traced launch must
    write the output it was given, not a view of it."""
    return (*tensor.stride()[:2], *pad_front(tensor.stride()[2:], 0))


def pad_front(values, fill, nd: int = 3) -> tuple:
    """Per-dimension parameters for ``sizes_3d`` problems: ``fill`` for the added unit dims."""
    values = tuple(values)
    return (fill,) * (nd - len(values)) + values


@triton.jit
def block(pid, BLOCK: tl.constexpr, INT64: tl.constexpr):
    """Indices pid·BLOCK … pid·BLOCK + BLOCK − 1, computed in int64 when INT64."""
    if INT64:
        pid = pid.to(tl.int64)
    return pid * BLOCK + tl.arange(0, BLOCK)


@triton.jit
def trips(n):
    """``n`` as a ``range`` bound: compiled, ``n``; interpreted, its Python int. The interpreter
    holds a scalar as a 1-element array, and Triton 3.6's interpreter hands that array to int()
    unsqueezed, which NumPy refuses (since 2.4; deprecated since 1.25) for arrays of ndim > 0."""
    if INTERPRET:
        return n.handle.data.item()
    return n


@triton.jit
def unflatten(index, D, H, W):
    """Row-major index over (·, D, H, W) → (outer, d, h, w)."""
    w = index % W
    index = index // W
    h = index % H
    index = index // H
    return index // D, index % D, h, w


@triton.jit
def mma(a, b, acc, PRECISION: tl.constexpr):
    """acc + a·b, in acc's dtype (tl.dot's out_dtype must name it: Triton 3.6 defaults it to
    float32 rather than acc's dtype, and rejects a float64 acc). bfloat16 goes through float32
    under the interpreter, whose numpy dot would read bfloat16's raw bits as integers (exact: a
    bfloat16 product fits float32)."""
    if INTERPRET and a.dtype == tl.bfloat16:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee", out_dtype=acc.dtype)
    return tl.dot(a, b, acc, input_precision=PRECISION, out_dtype=acc.dtype)
