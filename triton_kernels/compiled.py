"""The kernels as compiled for an H100 (sm_90), without a GPU: registers, spills, shared memory
and the main loop's SASS, for launches at ResNet-50's layer shapes and MobileNetV2's depthwise ones.

Each variant is compiled with the arguments its launcher passes. The launcher runs on meta
tensors (shapes and strides, no memory) with the kernel swapped for a recorder; the recorded
arguments are then specialised as a launch specialises them — ints equal to 1 become
constexprs, ints divisible by 16 and 16-byte-aligned pointers get ``tt.divisibility=16`` — so
the compiler sees the unit strides and aligned addresses a real launch lets it vectorise on.
Block sizes, num_warps and num_stages come from the kernel's own config list. Compiling needs
Triton's compiler and the ptxas, nvdisasm and cuobjdump its NVIDIA backend ships, not a GPU;
it must run in a process without TRITON_INTERPRET (under the interpreter the kernels are
decorated with a single 16-wide config and an interpreter-only code path).

Per variant: registers and stack from the cubin's resource usage; spills as the bytes of
local-memory stores and loads in the SASS (Triton kernels keep no arrays in local memory, so
every STL/LDL is a spill, and their widths sum to ptxas's "bytes spill stores/loads"); shared
memory as Triton allocated it; and the main loop — the innermost backward branch whose body
holds MMA instructions — as its MMA instruction (HGMMA: wgmma), its size in SASS instructions
per MMA instruction, and the widths of its global loads.

    python -m torchconv_impl.triton_kernels.compiled [--markdown] [--json] [--variants FILE] [--jobs N]
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.compiler.compiler import make_backend

from .._geometry import ConvGeometry
from . import _common, conv, depthwise, pool

H100 = GPUTarget("cuda", 90, 32)
H100_MULTIPROCESSORS = 132  # H100 SXM: what conv_weight_grad's split-K heuristic sizes for
TOOLS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32, "float64": torch.float64}
_POINTER_TYPES = {torch.bfloat16: "*bf16", torch.float16: "*fp16", torch.float32: "*fp32", torch.float64: "*fp64",
                  torch.int64: "*i64"}
# The CUDA caching allocator hands out blocks aligned far beyond 16 bytes: a tensor's pointer
# is 16-byte aligned when its storage offset is.
_ALIGNMENT = 16


@dataclasses.dataclass(frozen=True)
class ConvProblem:
    """A square 2-d convolution with torch's ``padding=kernel // 2``, no groups."""

    name: str
    batch: int
    in_channels: int
    size: int  # input height = width
    out_channels: int
    kernel: int
    stride: int = 1
    bias: bool = False
    activation: str | None = None

    kernels = ("conv_forward_kernel", "conv_input_grad_kernel", "conv_weight_grad_kernel")

    def launch(self, kernel: str, dtype: torch.dtype, channels_last: bool):
        """Calls the launcher that runs ``kernel``, on meta tensors."""
        geometry = ConvGeometry(stride=(self.stride,) * 2, padding=((self.kernel // 2,) * 2,) * 2, dilation=(1, 1), groups=1)
        input_size = (self.size, self.size)
        output_size = geometry.output_size(input_size, (self.kernel, self.kernel))
        x = _meta((self.batch, self.in_channels, *input_size), dtype, channels_last)
        # model.to(memory_format=torch.channels_last) converts the weights too.
        weight = _meta((self.out_channels, self.in_channels, self.kernel, self.kernel), dtype, channels_last)
        bias = _meta((self.out_channels,), dtype, False) if self.bias else None
        grad_output = _meta((self.batch, self.out_channels, *output_size), dtype, channels_last)
        if kernel == "conv_forward_kernel":
            conv.conv_forward(x, weight, bias, geometry, self.activation)
        elif kernel == "conv_input_grad_kernel":
            conv.conv_input_grad(grad_output, weight, input_size, None, geometry)
        else:
            conv.conv_weight_grad(x, grad_output, (self.kernel, self.kernel), geometry)


@dataclasses.dataclass(frozen=True)
class PoolProblem:
    """A square 2-d max or average pooling; ``kernel`` None: adaptive, to ``output``²."""

    name: str
    kind: str  # "max" or "avg"
    batch: int
    channels: int
    size: int
    output: int
    kernel: int | None = None
    stride: int | None = None
    padding: int = 0
    divisor_override: int | None = None

    @property
    def kernels(self):
        return (f"{self.kind}_pool_forward_kernel", f"{self.kind}_pool_backward_kernel")

    def launch(self, kernel: str, dtype: torch.dtype, channels_last: bool):
        """Calls the launcher that runs ``kernel``, on meta tensors."""
        input_size, output_size = (self.size,) * 2, (self.output,) * 2
        window = {} if self.kernel is None else dict(kernel_size=(self.kernel,) * 2, stride=(self.stride,) * 2,
                                                      padding=(self.padding,) * 2)
        x = _meta((self.batch, self.channels, *input_size), dtype, channels_last)
        grad_output = _meta((self.batch, self.channels, *output_size), dtype, channels_last)
        if kernel == "max_pool_forward_kernel":
            pool.window_max(x, output_size, dilation=(1, 1) if window else None, **window)
        elif kernel == "max_pool_backward_kernel":
            indices = _meta(grad_output.shape, torch.int64, channels_last)
            pool.max_pool_backward(grad_output, indices, input_size, dilation=(1, 1) if window else None, **window)
        elif kernel == "avg_pool_forward_kernel":
            pool.window_average(x, output_size, divisor_override=self.divisor_override, **window)
        else:
            pool.window_average_backward(grad_output, input_size, divisor_override=self.divisor_override, **window)


def _meta(shape, dtype, channels_last: bool) -> torch.Tensor:
    tensor = torch.empty(shape, dtype=dtype, device="meta")
    return tensor.to(memory_format=torch.channels_last) if channels_last and tensor.dim() == 4 else tensor


@dataclasses.dataclass(frozen=True)
class DepthwiseProblem:
    """A square 2-d convolution with one input channel per group and ``padding=kernel // 2``:
    groups = channels, ``multiplier`` output channels per input channel."""

    name: str
    batch: int
    channels: int
    size: int
    kernel: int
    stride: int = 1
    multiplier: int = 1

    kernels = ("depthwise_forward_kernel", "depthwise_input_grad_kernel", "depthwise_weight_grad_kernel")

    def launch(self, kernel: str, dtype: torch.dtype, channels_last: bool):
        """Calls the launcher that runs ``kernel``, on meta tensors."""
        geometry = ConvGeometry(stride=(self.stride,) * 2, padding=((self.kernel // 2,) * 2,) * 2, dilation=(1, 1),
                                groups=self.channels)
        input_size, out_channels = (self.size, self.size), self.channels * self.multiplier
        output_size = geometry.output_size(input_size, (self.kernel, self.kernel))
        x = _meta((self.batch, self.channels, *input_size), dtype, channels_last)
        weight = _meta((out_channels, 1, self.kernel, self.kernel), dtype, channels_last)
        grad_output = _meta((self.batch, out_channels, *output_size), dtype, channels_last)
        if kernel == "depthwise_forward_kernel":
            depthwise.conv_forward(x, weight, None, geometry, "relu")
        elif kernel == "depthwise_input_grad_kernel":
            depthwise.conv_input_grad(grad_output, weight, input_size, None, geometry)
        else:
            depthwise.conv_weight_grad(x, grad_output, (self.kernel, self.kernel), geometry)


# ResNet-50's layers at batch 32 (torchvision's: the stem, a bottleneck's 1×1 reduction and
# 3×3, the stride-2 3×3 of stage 2, a 3×3 of the last stage, the stem's max pooling and the
# head's global average).
RESNET50 = (
    ConvProblem("3×3 64→64 56²", 32, 64, 56, 64, 3),
    ConvProblem("1×1 256→64 56²", 32, 256, 56, 64, 1),
    ConvProblem("3×3/2 128→128 56²", 32, 128, 56, 128, 3, stride=2),
    ConvProblem("stem 7×7/2 3→64 224²", 32, 3, 224, 64, 7, stride=2),
    ConvProblem("3×3 512→512 7²", 32, 512, 7, 512, 3),  # a late layer: split-K (4 chunks of 128 channels)
    PoolProblem("max 3×3/2 64×112²", "max", 32, 64, 112, 56, kernel=3, stride=2, padding=1),
    PoolProblem("global avg 2048×7²", "avg", 32, 2048, 7, 1),
)
# MobileNetV2's depthwise 3×3 layers at batch 32, and a single-channel input (LeNet's first layer).
ONE_CHANNEL_PER_GROUP = (
    DepthwiseProblem("depthwise 3×3 144 56²", 32, 144, 56, 3),
    DepthwiseProblem("depthwise 3×3/2 144 56²", 32, 144, 56, 3, stride=2),
    DepthwiseProblem("depthwise 3×3 960 7²", 32, 960, 7, 3),
    DepthwiseProblem("5×5 1→6 32², batch 64", 64, 1, 32, 5, multiplier=6),
)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One compilation: a kernel launched for ``problem``, its inputs in ``dtype`` and layout.
    ``config``: an index into the kernel's config list, or explicit (*blocks, num_warps, num_stages)."""

    kernel: str
    problem: ConvProblem | PoolProblem | DepthwiseProblem
    dtype: str  # a key of DTYPES
    channels_last: bool
    config: int | tuple = 0

    def to_json(self) -> dict:
        problem = dataclasses.asdict(self.problem) | {"family": type(self.problem).__name__}
        return dataclasses.asdict(self) | {"problem": problem}

    @classmethod
    def from_json(cls, data: dict) -> Variant:
        problem = dict(data["problem"])
        family = {f.__name__: f for f in (ConvProblem, PoolProblem, DepthwiseProblem)}[problem.pop("family")]
        config = data["config"] if isinstance(data["config"], int) else tuple(data["config"])
        return cls(data["kernel"], family(**problem), data["dtype"], data["channels_last"], config)


def table_variants() -> list[Variant]:
    """Every kernel of every RESNET50 and ONE_CHANNEL_PER_GROUP problem's family in bfloat16,
    float16 and float32, each channels-last then NCHW, in the first config of the kernel's list."""
    return [Variant(kernel, problem, dtype, channels_last)
            for problem in (*RESNET50, *ONE_CHANNEL_PER_GROUP) for kernel in problem.kernels
            for dtype in ("bfloat16", "float16", "float32") for channels_last in (True, False)]


def _module(kernel: str):
    return conv if kernel.startswith("conv") else depthwise if kernel.startswith("depthwise") else pool


@contextlib.contextmanager
def _replaced(module, name, value):
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


class _Recorder:
    """Stands in for an autotuned kernel: ``kernel[grid](*args, **kwargs)`` records the call."""

    def __init__(self):
        self.calls = []

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append((args, kwargs))


def launch_arguments(variant: Variant) -> dict:
    """The arguments the launcher passes to ``variant.kernel``, by parameter name."""
    module, recorder = _module(variant.kernel), _Recorder()
    h100 = lambda device: H100_MULTIPROCESSORS  # noqa: E731 (meta tensors have no GPU to ask)
    with _replaced(module, variant.kernel, recorder), _replaced(_common, "multiprocessors", h100):
        variant.problem.launch(variant.kernel, DTYPES[variant.dtype], variant.channels_last)
    (args, kwargs), = recorder.calls
    return dict(zip(getattr(module, variant.kernel).fn.arg_names, args)) | kwargs


def _launch_constexpr(value) -> bool:
    """Whether a launch makes a non-constexpr argument a constexpr, as Triton's does: None and ints equal to 1."""
    return value is None or (type(value) is int and value == 1)


def _signature_type(value) -> str:
    if isinstance(value, torch.Tensor):
        return _POINTER_TYPES[value.dtype]
    if type(value) is int:
        return "i32" if -2**31 <= value < 2**31 else "u64" if value >= 2**63 else "i64"
    raise TypeError(f"no launch specialisation for {type(value).__name__} {value!r}")


def _divisible_by_16(value) -> bool:
    """Triton's launch specialisation: ints divisible by 16, pointers aligned to 16 bytes."""
    if isinstance(value, torch.Tensor):
        return value.storage_offset() * value.element_size() % _ALIGNMENT == 0
    return value % 16 == 0


def config_of(variant: Variant) -> triton.Config:
    configs = getattr(_module(variant.kernel), variant.kernel).configs
    if isinstance(variant.config, int):
        return configs[variant.config]
    *blocks, num_warps, num_stages = variant.config
    return triton.Config(dict(zip(configs[0].kwargs, blocks)), num_warps=num_warps, num_stages=num_stages)


def compile_variant(variant: Variant, arguments: dict):
    """The CompiledKernel a launch of ``variant`` with ``arguments`` (``launch_arguments``)
    would build on an H100."""
    fn = getattr(_module(variant.kernel), variant.kernel).fn  # the JITFunction under the autotuner
    config = config_of(variant)
    arguments = arguments | config.kwargs
    divisible = make_backend(H100).parse_attr("D")  # tt.divisibility=16, in the installed Triton's spelling
    signature, constexprs, attrs = {}, {}, {}
    for index, name in enumerate(fn.arg_names):
        value = arguments[name]
        if fn.params[index].is_constexpr or _launch_constexpr(value):
            signature[name], constexprs[name] = "constexpr", value
            continue
        signature[name] = _signature_type(value)
        if _divisible_by_16(value):
            attrs[(index,)] = divisible
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(source, target=H100, options=dict(num_warps=config.num_warps, num_stages=config.num_stages))


# SASS as nvdisasm prints it: "/*0a30*/  @!P0 HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], R24 ;" and labels ".L_x_3:".
_INSTRUCTION = re.compile(r"^\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?(?P<opcode>[A-Z][\w.]*)(?P<operands>[^;]*);")
_LABEL = re.compile(r"^(?P<label>\.L_x_\d+):")
_BRANCH_TARGET = re.compile(r"`?\((?P<label>\.L_x_\d+)\)")
_MMA_OPCODES = ("HGMMA", "HMMA", "DMMA", "IMMA", "QGMMA", "IGMMA", "BGMMA")
_GLOBAL_LOADS = ("LDG", "LDGSTS")
_WIDTH_BITS = {"U8": 8, "S8": 8, "U16": 16, "S16": 16, "64": 64, "128": 128}


@dataclasses.dataclass(frozen=True)
class MainLoop:
    instructions: int
    mma_opcode: str  # the first MMA instruction's opcode, e.g. HGMMA.64x128x16.F32.BF16
    mmas: int

    @property
    def wgmma(self) -> bool:
        return self.mma_opcode.startswith("HGMMA")

    @property
    def sass_per_mma(self) -> float:
        return self.instructions / self.mmas


@dataclasses.dataclass(frozen=True)
class Sass:
    """What a kernel's SASS shows: its main loop (None without MMA instructions in a loop: a
    float32 IEEE dot, a pooling kernel), local-memory (spill) bytes per thread, and the global
    loads by width in bits, counted over the main loop, or the whole kernel where there is none."""

    loop: MainLoop | None
    spill_store_bytes: int
    spill_load_bytes: int
    global_loads: dict

    @classmethod
    def parse(cls, sass: str) -> Sass:
        instructions, labels = [], {}
        for line in sass.splitlines():
            if label := _LABEL.match(line):
                labels[label["label"]] = len(instructions)
            elif instruction := _INSTRUCTION.match(line):
                instructions.append((instruction["opcode"], instruction["operands"]))
        body = _main_loop_body(instructions, labels)
        mmas = _mmas(body or [])
        loop = MainLoop(len(body), mmas[0], len(mmas)) if body else None
        moved = collections.Counter()
        for opcode, _ in instructions:
            moved[opcode.split(".")[0]] += _width(opcode) // 8
        loads = collections.Counter(_width(op) for op, _ in body or instructions if op.split(".")[0] in _GLOBAL_LOADS)
        return cls(loop, moved["STL"], moved["LDL"], dict(sorted(loads.items())))


def _mmas(instructions) -> list[str]:
    return [opcode for opcode, _ in instructions if opcode.startswith(_MMA_OPCODES)]


def _main_loop_body(instructions, labels):
    """The instructions of the innermost loop (a backward branch to an earlier label, the
    label's instruction to the branch) holding MMA instructions, or None."""
    bodies = []
    for end, (opcode, operands) in enumerate(instructions):
        target = _BRANCH_TARGET.search(operands) if opcode.startswith("BRA") else None
        if target and labels.get(target["label"], end + 1) <= end:
            body = instructions[labels[target["label"]]:end + 1]
            if _mmas(body):
                bodies.append(body)
    return min(bodies, key=len, default=None)


def _width(opcode: str) -> int:
    """Bits an LDG/LDGSTS/STL/LDL moves per thread (32 unless a suffix says otherwise)."""
    return next((_WIDTH_BITS[part] for part in opcode.split(".")[1:] if part in _WIDTH_BITS), 32)


def _tool(name: str, *args) -> str:
    return subprocess.run([TOOLS / name, *args], check=True, capture_output=True, text=True).stdout


def resource_usage(cubin_path) -> dict:
    """cuobjdump's per-function resource usage: REG, STACK, SHARED, LOCAL, … as ints."""
    line = next(line for line in _tool("cuobjdump", "--dump-resource-usage", str(cubin_path)).splitlines() if "REG:" in line)
    return {key: int(value) for key, value in re.findall(r"(\w+(?:\[\d+\])?):(\d+)", line)}


@dataclasses.dataclass(frozen=True)
class Measurement:
    variant: Variant
    config: str  # BLOCK sizes × warps × stages
    precision: str
    registers: int
    stack_bytes: int
    shared_bytes: int
    sass: Sass

    def row(self) -> dict:
        v, sass, loop = self.variant, self.sass, self.sass.loop
        return {
            "kernel": v.kernel.removesuffix("_kernel"), "problem": v.problem.name, "dtype": v.dtype,
            "layout": "channels_last" if v.channels_last else "NCHW", "config": self.config, "precision": self.precision,
            "regs": self.registers, "spill st/ld B": f"{sass.spill_store_bytes}/{sass.spill_load_bytes}",
            "smem KiB": round(self.shared_bytes / 1024, 1), "loop MMA": loop.mma_opcode if loop else "—",
            "SASS/MMA": round(loop.sass_per_mma, 1) if loop else "—",
            "global loads": ", ".join(f"{count}×{bits}b" for bits, count in sass.global_loads.items()) or "—",
        }


def measure(variant: Variant) -> Measurement:
    arguments = launch_arguments(variant)
    kernel = compile_variant(variant, arguments)
    config = config_of(variant)
    with tempfile.TemporaryDirectory() as directory:
        cubin = Path(directory) / "kernel.cubin"
        cubin.write_bytes(kernel.asm["cubin"])
        usage = resource_usage(cubin)
        sass = Sass.parse(_tool("nvdisasm", "-c", str(cubin)))
    blocks = "×".join(str(size) for size in config.kwargs.values())
    return Measurement(variant, f"{blocks} w{config.num_warps} s{config.num_stages}", arguments.get("PRECISION", "—"),
                       usage["REG"], usage["STACK"], kernel.metadata.shared, sass)


def measure_all(todo, jobs: int = 1) -> list[Measurement]:
    """``measure`` over ``todo`` in order, on ``jobs`` processes."""
    if jobs <= 1:
        return [measure(variant) for variant in todo]
    with concurrent.futures.ProcessPoolExecutor(jobs) as executor:
        return list(executor.map(measure, todo))


def to_json(measurement: Measurement) -> dict:
    loop = measurement.sass.loop
    sass = dataclasses.asdict(measurement.sass) | {
        "loop": loop and dataclasses.asdict(loop) | {"wgmma": loop.wgmma, "sass_per_mma": loop.sass_per_mma},
    }
    return dataclasses.asdict(measurement) | {"variant": measurement.variant.to_json(), "sass": sass}


def table(measurements, markdown: bool) -> str:
    rows = [measurement.row() for measurement in measurements]
    header = list(rows[0])
    cells = [[str(row[column]) for column in header] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max(len(text) for text in column) for column in zip(header, *cells)]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(row, widths)) for row in [header, *cells])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--json", action="store_true", help="print one JSON object per variant instead of a table")
    parser.add_argument("--variants", type=Path, help="a JSON list of variants (Variant.to_json) instead of the default table's")
    parser.add_argument("--jobs", type=int, default=1, help="compile on this many processes")
    args = parser.parse_args(argv)
    if _common.INTERPRET:
        sys.exit("compiled: TRITON_INTERPRET is set, under which the kernels are not the ones a GPU runs; unset it")
    todo = [Variant.from_json(data) for data in json.loads(args.variants.read_text())] if args.variants else table_variants()
    measurements = measure_all(todo, args.jobs)
    if args.json:
        print("\n".join(json.dumps(to_json(measurement)) for measurement in measurements))
    else:
        print(table(measurements, args.markdown))


if __name__ == "__main__":
    main()
