"""Benchmark torchconv_impl against torch's native layers, both timed in the same run.

    python scripts/bench.py                       # CPU, 1 thread: the CPU engine vs torch's CPU kernels
    python scripts/bench.py --device cuda         # GPU: Triton backend vs cuDNN (cudnn.benchmark on)
    python scripts/bench.py --device cuda --dtype bfloat16 --channels-last --out bench_results
    python scripts/bench.py --compile               # + eager vs torch.compile (Inductor), ours and torch
    python scripts/bench.py --networks --no-layers  # only the converted networks, ours/torch
    python scripts/bench.py --floors --no-layers    # what bounds a few layers' forward on CPU

Each case is timed per phase — forward, input-gradient, weight-gradient, forward+backward —
for torch and for ours on the same tensors. Printed: milliseconds, achieved TFLOP/s (conv) or
GB/s (pooling), and the ratio torch time / our time (> 1: we are faster). ``--out`` also
writes results.json, results.csv and a ratio plot. Timing: median of repeats after warm-up;
on CUDA with device events (triton.testing.do_bench).

``--compile`` adds a table of whole models, eager against ``torch.compile`` (Inductor), for ours
and for torch.nn in the same run: LeNet-5's training step (batch 64) and a converted
torchvision resnet18's inference (batch 8, 112²). The four variants are timed in turns, the
median of each kept; eager ours against eager ours again gives the harness's own spread.

``--networks`` adds the networks people convert, ours against torch.nn in the same run: the
training step (forward, loss, backward) and the inference of torchvision's resnet18, vgg11 and
mobilenet_v2 converted by ``torchconv_impl.convert`` (batch 8, 112², 10 classes), and LeNet-5's
training step (batch 64) against its twin. Printed as ours/torch (> 1: ours slower), medians of
ours, torch and ours again timed in turns, with the self-vs-self spread and the geometric mean
of the six network ratios.

``--floors`` (CPU) adds, for a few layers of those networks, the forward's floor: the bare work
the CPU engine's form of the layer cannot do without, timed on ready operands beside ours and
torch's — one BLAS product with the layer's multiply-adds (dense layers), K multiply-add passes
of torch's elementwise kernels over blocks that stay in cache (depthwise layers, one per
kernel offset), or the engine's own function called directly (a tiny layer: the rest is the
cost of the call through the functional, autograd and operator layers). floor/torch > 1 means
that form cannot reach torch's time whatever else is trimmed.
"""
from __future__ import annotations

import argparse
import copy
import csv
import datetime
import json
import math
import os
import platform
import re
import statistics
import time
from dataclasses import dataclass, field

import torch

import torchconv_impl
import torchconv_impl.functional as ours_F

torch_F = torch.nn.functional  # the baseline


@dataclass
class Case:
    name: str
    op: str  # a function name shared by torch.nn.functional and torchconv_impl.functional, or "model:<name>"
    input: tuple
    weight: tuple | None = None
    kwargs: dict = field(default_factory=dict)


def lenet_cases(batch):
    return [
        Case(f"LeNet C1 1→6 5×5 32² b{batch}", "conv2d", (batch, 1, 32, 32), (6, 1, 5, 5)),
        Case(f"LeNet C3 6→16 5×5 14² b{batch}", "conv2d", (batch, 6, 14, 14), (16, 6, 5, 5)),
        Case(f"LeNet C5 16→120 5×5 5² b{batch}", "conv2d", (batch, 16, 5, 5), (120, 16, 5, 5)),
        Case(f"LeNet S2 maxpool 2×2/2 b{batch}", "max_pool2d", (batch, 6, 28, 28), kwargs=dict(kernel_size=2)),
        Case(f"LeNet S2 avgpool 2×2/2 b{batch}", "avg_pool2d", (batch, 6, 28, 28), kwargs=dict(kernel_size=2)),
    ]


def resnet50_cases(batch):
    conv = lambda name, c, hw, o, k, s=1: Case(  # noqa: E731
        f"R50 {name} b{batch}", "conv2d", (batch, c, hw, hw), (o, c, k, k), dict(stride=s, padding=k // 2))
    return [
        conv("stem 7×7/2 3→64 224²", 3, 224, 64, 7, 2),
        conv("1×1 64→256 56²", 64, 56, 256, 1),
        conv("3×3 64→64 56²", 64, 56, 64, 3),
        conv("3×3 128→128 28²", 128, 28, 128, 3),
        conv("3×3 256→256 14²", 256, 14, 256, 3),
        conv("3×3 512→512 7²", 512, 7, 512, 3),
        conv("3×3/2 128→128 56²", 128, 56, 128, 3, 2),
        conv("1×1/2 256→512 56² (downsample)", 256, 56, 512, 1, 2),
    ]


CPU_CASES = lenet_cases(64) + [
    Case("ResNet 3×3 64→64 56² b8", "conv2d", (8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    Case("maxpool 3×3/2 64×112² b8", "max_pool2d", (8, 64, 112, 112), kwargs=dict(kernel_size=3, stride=2, padding=1)),
    Case("LeNet-5 whole net b64", "model:lenet", (64, 1, 32, 32)),
    Case("AlexNet whole net 224² b4", "model:alexnet", (4, 3, 224, 224)),
]

GPU_CASES = lenet_cases(256) + resnet50_cases(32) + resnet50_cases(256) + [
    Case("MobileNet depthwise 3×3 256ch 56² b32", "conv2d", (32, 256, 56, 56), (256, 1, 3, 3), dict(padding=1, groups=256)),
    Case("ConvTranspose 4×4/2 256→128 16² b32", "conv_transpose2d", (32, 256, 16, 16), (256, 128, 4, 4), dict(stride=2, padding=1)),
    Case("R50 conv+bias+ReLU 3×3 64→64 56² b32", "conv2d_bias_relu", (32, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    Case("maxpool 3×3/2 64×112² b32", "max_pool2d", (32, 64, 112, 112), kwargs=dict(kernel_size=3, stride=2, padding=1)),
    Case("maxpool 2×2/2 64×112² b32", "max_pool2d", (32, 64, 112, 112), kwargs=dict(kernel_size=2)),
]


def conv2d_bias_relu(F):
    """Ours: one fused operation; torch: cuDNN's convolution followed by a separate ReLU."""
    if F is ours_F:
        return ours_F.conv_bias_relu
    return lambda x, w, b, **kw: F.relu(F.conv2d(x, w, b, **kw))


def build_model(name, impl):
    """torch.nn's model; ``make_runner`` converts it for ours (LeNet5 builds either directly:
    its masked C3 twin is a torch.nn.Conv2d subclass, which convert() leaves alone)."""
    if name == "lenet":
        from torchconv_impl.models import LeNet5
        return LeNet5(impl=impl)
    import torchvision
    return torchvision.models.alexnet(weights=None)


def make_runner(case, impl, device, dtype, channels_last):
    """Returns {phase: zero-argument callable} for one implementation of a case."""
    F = ours_F if impl == "ours" else torch_F
    memory_format = torch.channels_last if channels_last and len(case.input) == 4 else torch.contiguous_format
    x = torch.randn(case.input, device=device, dtype=dtype).contiguous(memory_format=memory_format)
    if case.op.startswith("model:"):
        name = case.op.split(":")[1]
        model = build_model(name, impl).to(device=device, dtype=dtype).eval()
        if impl == "ours" and name != "lenet":
            model = torchconv_impl.convert(model)
        model = model.to(memory_format=memory_format)  # a training step: no gradient for the images

        def fwd_bwd():
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()
        return {"forward": lambda: model(x), "fwd+bwd": fwd_bwd}, None
    if case.weight is None:  # pooling
        fn = getattr(F, case.op)
        x.requires_grad_()
        y = fn(x, **case.kwargs)
        dy = torch.randn_like(y)
        nbytes = (x.numel() + y.numel()) * x.element_size()
        return {
            "forward": lambda: fn(x.detach(), **case.kwargs),
            "fwd+bwd": lambda: torch.autograd.grad(fn(x, **case.kwargs), x, dy),
        }, ("GB/s", nbytes)
    fn = conv2d_bias_relu(F) if case.op == "conv2d_bias_relu" else getattr(F, case.op)
    w = torch.randn(case.weight, device=device, dtype=dtype).contiguous(memory_format=memory_format) * 0.1
    bias_size = case.weight[0] if "transpose" not in case.op else case.weight[1] * case.kwargs.get("groups", 1)
    b = torch.randn(bias_size, device=device, dtype=dtype)
    x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
    y = fn(x, w, b, **case.kwargs)
    dy = torch.randn_like(y)
    # Each pass does one multiply-add per (output element of the convolution, C/G·K): for a
    # transposed convolution the convolution's "output" is the smaller tensor, its input.
    conv_output = x if "transpose" in case.op else y
    flops = 2 * conv_output.numel() * math.prod(case.weight[1:])
    return {
        "forward": lambda: fn(x.detach(), w.detach(), b.detach(), **case.kwargs),
        "input-grad": lambda: torch.autograd.grad(fn(x, w.detach(), None, **case.kwargs), x, dy),
        "weight-grad": lambda: torch.autograd.grad(fn(x.detach(), w, None, **case.kwargs), w, dy),
        "fwd+bwd": lambda: torch.autograd.grad(fn(x, w, b, **case.kwargs), (x, w, b), dy),
    }, ("TFLOP/s", flops)


def compile_cases(device, dtype):
    """{model: {variant: zero-argument callable}}, variants ours/torch × eager/compiled."""
    import torchvision

    from torchconv_impl.models import LeNet5

    def lenet_step(impl, compiled):
        model = LeNet5(activation="relu", pooling="max", impl=impl).to(device, dtype)
        x, t = torch.randn(64, 1, 32, 32, device=device, dtype=dtype), torch.randint(10, (64,), device=device)
        F = ours_F if impl == "ours" else torch_F
        loss = lambda: F.cross_entropy(model(x), t)  # noqa: E731
        loss = torch.compile(loss) if compiled else loss

        def step():
            model.zero_grad(set_to_none=True)
            loss().backward()
        return step

    def resnet_inference(impl, compiled):
        torch.manual_seed(0)
        model = torchvision.models.resnet18(num_classes=10).to(device, dtype).eval()
        model = torchconv_impl.convert(model) if impl == "ours" else model
        x = torch.randn(8, 3, 112, 112, device=device, dtype=dtype)
        forward = torch.compile(model) if compiled else model
        return lambda: forward(x)

    cases = {}
    for name, build in (("LeNet-5 training step b64", lenet_step), ("resnet18 inference b8 112²", resnet_inference)):
        cases[name] = {f"{impl} {mode}": build(impl, mode == "compiled") for impl in ("ours", "torch") for mode in ("eager", "compiled")}
        cases[name]["ours eager again"] = cases[name]["ours eager"]
    return cases


def medians_in_turns(variants: dict, repeats: int, warmups: int = 1) -> dict:
    """{variant: median ms}: every variant warmed up, then each repeat runs them all in turn, so
    that the machine's load changes hit every variant alike."""
    for fn in variants.values():
        for _ in range(warmups):
            fn()
    times = {variant: [] for variant in variants}
    for _ in range(repeats):
        for variant, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[variant].append(time.perf_counter() - start)
    return {variant: statistics.median(t) * 1e3 for variant, t in times.items()}


def run_compile_table(device, dtype, repeats):
    print(f"\n{'model':28s} {'variant':17s} {'median ms':>10s}")
    for name, variants in compile_cases(device, dtype).items():
        median = medians_in_turns(variants, repeats, warmups=3)  # warm-up compiles every variant
        for variant in variants:
            print(f"{name:28s} {variant:17s} {median[variant]:10.2f}")
        print(f"{name:28s} ours/torch eager {median['ours eager'] / median['torch eager']:.2f}, "
              f"compiled {median['ours compiled'] / median['torch compiled']:.2f}; "
              f"ours eager/compiled {median['ours eager'] / median['ours compiled']:.2f}, "
              f"torch {median['torch eager'] / median['torch compiled']:.2f}; "
              f"self-vs-self spread {median['ours eager again'] / median['ours eager']:.2f}")


def named(only: str, name: str) -> bool:
    """Whether case ``name`` has a word starting with ``only`` (any case): "lenet" names the
    LeNet cases, not mobilenet_v2; "" names every case."""
    return re.search(r"(?:^|[^0-9a-z])" + re.escape(only.casefold()), name.casefold()) is not None


def network_cases(device, dtype, only=""):
    """{case: {"ours": callable, "torch": callable}}: one training step or inference each, for the
    cases ``only`` names (``named``)."""
    import torchvision

    from torchconv_impl.models import LeNet5

    def training_step(model, x, t, F):
        def step():
            model.train()
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), t).backward()
        return step

    def inference(model, x):
        def forward():
            model.eval()
            with torch.no_grad():
                model(x)
        return forward

    def wanted(*names):
        return any(named(only, name) for name in names)

    cases = {}
    for name in ("resnet18", "vgg11", "mobilenet_v2"):
        training, inferring = f"{name} training step b8 112²", f"{name} inference b8 112²"
        if not wanted(training, inferring):
            continue
        torch.manual_seed(0)
        theirs = getattr(torchvision.models, name)(num_classes=10).to(device, dtype)
        models = {"ours": torchconv_impl.convert(copy.deepcopy(theirs)), "torch": theirs}
        x, t = torch.randn(8, 3, 112, 112, device=device, dtype=dtype), torch.randint(10, (8,), device=device)
        for case, runner in ((training, lambda m: training_step(m, x, t, torch_F)), (inferring, lambda m: inference(m, x))):
            if wanted(case):
                cases[case] = {impl: runner(m) for impl, m in models.items()}
    if not wanted("LeNet-5 training step b64"):
        return cases
    torch.manual_seed(0)
    lenets = {impl: LeNet5(activation="relu", pooling="max", impl=impl).to(device, dtype) for impl in ("ours", "torch")}
    lenets["torch"].load_state_dict(lenets["ours"].state_dict())
    x, t = torch.randn(64, 1, 32, 32, device=device, dtype=dtype), torch.randint(10, (64,), device=device)
    cases["LeNet-5 training step b64"] = {
        impl: training_step(m, x, t, ours_F if impl == "ours" else torch_F) for impl, m in lenets.items()
    }
    return cases


# (name, input, weight, conv2d keywords): a dense 3×3 layer of resnet18, LeNet's C3, two of
# mobilenet_v2's depthwise layers, and a layer too small for anything but the call to count.
FLOOR_LAYERS = [
    ("resnet18 3×3 64→64 28² b8", (8, 64, 28, 28), (64, 64, 3, 3), dict(padding=1)),
    ("LeNet C3 6→16 5×5 14² b64", (64, 6, 14, 14), (16, 6, 5, 5), {}),
    ("mobilenet_v2 depthwise 3×3 144ch 28² b8", (8, 144, 28, 28), (144, 1, 3, 3), dict(padding=1, groups=144)),
    ("mobilenet_v2 depthwise 3×3 960ch 4² b8", (8, 960, 4, 4), (960, 1, 3, 3), dict(padding=1, groups=960)),
    ("1×1 2→2 4² b2 (a call's own cost)", (2, 2, 4, 4), (2, 2, 1, 1), {}),
]


def floor_work(x, w, groups: int, tiny: bool):
    """(what, callable): the forward's floor for the CPU engine's form of conv2d(x, w) (see the module's notes)."""
    from torchconv_impl.backends.cpu import conv as cpu_conv
    from torchconv_impl.backends.cpu import depthwise

    if tiny:
        geometry = torchconv_impl._geometry.ConvGeometry((1, 1), ((0, 0), (0, 0)), (1, 1), groups)
        return "the engine's function", lambda: cpu_conv.conv_forward(x, w, None, geometry)
    n, channels, *plane = x.shape
    taps, positions = math.prod(w.shape[2:]), math.prod(plane)
    if groups == 1:
        a, b = torch.randn(w.shape[0], channels * taps), torch.randn(channels * taps, n * positions)
        out = torch.empty(w.shape[0], n * positions)
        return "one BLAS product", lambda: torch.mm(a, b, out=out)
    y, source, weights = torch.empty(n, channels, positions), torch.randn(n, channels, positions), torch.randn(channels, 1)
    blocks = depthwise._channel_blocks(n, channels, positions, taps, x)

    def passes():
        for first, last in blocks:
            for _ in range(taps):
                y[:, first:last].addcmul_(source[:, first:last], weights[first:last])
    return f"{taps} multiply-add passes", passes


def run_floor_table(repeats):
    print(f"\n{'layer (forward)':40s} {'floor':26s} {'torch ms':>9s} {'ours ms':>9s} {'floor ms':>9s} {'floor/torch':>11s} {'ours/floor':>10s}")
    for name, input_shape, weight_shape, kwargs in FLOOR_LAYERS:
        x, w = torch.randn(input_shape), torch.randn(weight_shape)
        what, floor = floor_work(x, w, kwargs.get("groups", 1), tiny=math.prod(input_shape) < 100)
        median = medians_in_turns({
            "torch": lambda: torch_F.conv2d(x, w, **kwargs), "ours": lambda: ours_F.conv2d(x, w, **kwargs), "floor": floor,
        }, repeats, warmups=3)
        print(f"{name:40s} {what:26s} {median['torch']:9.3f} {median['ours']:9.3f} {median['floor']:9.3f} "
              f"{median['floor'] / median['torch']:11.2f} {median['ours'] / median['floor']:10.2f}")


def run_network_table(device, dtype, repeats, only=""):
    print(f"\n{'network':34s} {'ours ms':>10s} {'torch ms':>10s} {'ours/torch':>10s} {'self-vs-self':>12s}")
    network_ratios = []
    for name, runners in network_cases(device, dtype, only).items():
        median = medians_in_turns({"ours": runners["ours"], "torch": runners["torch"], "ours again": runners["ours"]}, repeats)
        ratio = median["ours"] / median["torch"]
        spread = max(median["ours"], median["ours again"]) / min(median["ours"], median["ours again"])
        if not name.startswith("LeNet"):
            network_ratios.append(ratio)
        print(f"{name:34s} {median['ours']:10.2f} {median['torch']:10.2f} {ratio:10.2f} {spread:12.2f}")
    if network_ratios:
        geometric_mean = math.exp(statistics.fmean(map(math.log, network_ratios)))
        print(f"geometric mean ours/torch of the {len(network_ratios)} network figures: {geometric_mean:.2f}")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each flag's default shown, and the description as written."""


def timer(device, repeats):
    if device.type == "cuda":
        import triton.testing

        return lambda fn: triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")

    def cpu_time(fn):
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    return cpu_time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where both sides run")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="of every tensor")
    parser.add_argument("--channels-last", action="store_true", help="4-d tensors in channels-last memory format")
    parser.add_argument("--backend", default="auto", choices=torchconv_impl.backends.NAMES, help="torchconv_impl backend for 'ours'")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads, 0 = torch's default (docs/results.md's figures use 1: the machine is shared)")
    parser.add_argument("--repeats", type=int, default=7, help="CPU repeats per measurement (median)")
    parser.add_argument("--only", default="",
                        help="run only layer and network cases with a word starting with this text (any case; default: all)")
    parser.add_argument("--out", default="", help="folder for results.json / results.csv / ratios.png (default: none written)")
    parser.add_argument("--compile", action="store_true", help="also time whole models eager vs torch.compile")
    parser.add_argument("--networks", action="store_true", help="also time converted resnet18/vgg11/mobilenet_v2 and LeNet-5 against torch.nn")
    parser.add_argument("--floors", action="store_true", help="also time a few layers' forward floors (CPU) beside ours and torch's")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer table (to run only --compile, --networks or --floors)")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be non-negative, got {args.threads}")
    if args.repeats < 1:
        parser.error(f"--repeats must be positive, got {args.repeats}")
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.floors and device.type != "cpu":
        parser.error("--floors times the CPU engine's floors: it runs with --device cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch sees no CUDA device (torch.cuda.is_available() is False)")
    available = GPU_CASES if device.type == "cuda" else CPU_CASES
    if args.no_layers and not (args.compile or args.networks or args.floors):
        parser.error("--no-layers leaves nothing to run without --compile, --networks or --floors")
    cases = [] if args.no_layers else [c for c in available if named(args.only, c.name)]
    if not cases and not args.no_layers:
        parser.error(f"--only {args.only!r} matches no {device.type} case; the cases are: " + "; ".join(c.name for c in available))

    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the baseline at its best; TF32 left as torch's defaults, same on both sides
    time_ms = timer(device, args.repeats)
    machine = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    meta = dict(date=datetime.date.today().isoformat(), machine=machine, torch=torch.__version__, dtype=args.dtype,
                channels_last=args.channels_last, backend=args.backend, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32)
    print("  ".join(f"{k}={v}" for k, v in meta.items()))
    rows = run_layer_table(cases, args, device, dtype, time_ms, meta) if cases else []
    if args.out and rows:
        write_results(args.out, meta, rows, plot=True)
    if args.compile:
        with torchconv_impl.use_backend(args.backend):
            run_compile_table(device, dtype, max(args.repeats, 7))
    if args.networks:
        with torchconv_impl.use_backend(args.backend):
            run_network_table(device, dtype, max(args.repeats, 7), args.only)
    if args.floors:
        with torchconv_impl.use_backend("cpu"):
            run_floor_table(max(args.repeats, 7))


def run_layer_table(cases, args, device, dtype, time_ms, meta):
    """Each case timed per phase, printed as it goes; with --out, results.json and .csv are
    rewritten after every case, so that a run stopped by a time limit keeps what it measured."""
    header = f"{'case':44s} {'phase':12s} {'torch ms':>10s} {'ours ms':>10s} {'ours rate':>12s} {'torch/ours':>10s}"
    print(header + "\n" + "-" * len(header))
    rows = []
    with torchconv_impl.use_backend(args.backend):
        for case in cases:
            runners = {impl: make_runner(case, impl, device, dtype, args.channels_last) for impl in ("torch", "ours")}
            work = runners["ours"][1]
            for phase in runners["ours"][0]:
                torch_ms, ours_ms = (time_ms(runners[impl][0][phase]) for impl in ("torch", "ours"))
                rate = ""
                if work and phase != "fwd+bwd":
                    unit, amount = work
                    per_ms = {"TFLOP/s": 1e9, "GB/s": 1e6}[unit]
                    if device.type == "cpu" and unit == "TFLOP/s":
                        unit, per_ms = "GFLOP/s", 1e6
                    rate = f"{amount / ours_ms / per_ms:.2f} {unit}"
                rows.append(dict(case=case.name, phase=phase, torch_ms=torch_ms, ours_ms=ours_ms, ours_rate=rate, ratio=torch_ms / ours_ms))
                print(f"{case.name:44s} {phase:12s} {torch_ms:10.3f} {ours_ms:10.3f} {rate:>12s} {torch_ms / ours_ms:10.2f}", flush=True)
            if args.out:
                write_results(args.out, meta, rows, plot=False)
    for phase in ("forward", "fwd+bwd"):
        ratios = [r["ratio"] for r in rows if r["phase"] == phase]
        if ratios:
            print(f"geometric mean torch/ours, {phase}: {math.exp(statistics.fmean(map(math.log, ratios))):.2f}")
    return rows


def write_results(out, meta, rows, plot: bool):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if not plot:
        return
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One bar per (case, phase), 0.3 inch apart, so that 9-point labels never overlap; a
    # logarithmic axis, on which 2× faster and 2× slower lie equally far from 1.
    labels = [f"{r['case']} · {r['phase']}" for r in rows]
    fig, ax = plt.subplots(figsize=(11, 0.3 * len(rows) + 1.6), layout="constrained")
    ax.barh(labels, [r["ratio"] - 1 for r in rows], left=1, color=["C2" if r["ratio"] >= 1 else "C3" for r in rows])
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda ratio, _: f"{ratio:g}×"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.invert_yaxis()
    ax.set_xlabel("torch time / our time  (> 1, green: ours faster)")
    ax.set_title(f"{meta['machine']} · {meta['dtype']} · {meta['date']}", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.savefig(os.path.join(out, "ratios.png"), dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
