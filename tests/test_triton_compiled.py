"""A guard on the Triton kernels as compiled for an H100 (sm_90), without a GPU
(``triton_kernels/compiled.py``): what the interpreter cannot see.

Each case is compiled with the arguments its launcher passes, specialised as a launch would,
all in one process without TRITON_INTERPRET. A case fails on a compile error (the typing rules
of compiled code: ints equal to 1 specialised as constexprs, one return type per function), a
spill in a 16-bit variant, a 16-bit convolution whose main loop has no wgmma, and a main loop
grown past its ceiling in SASS instructions per MMA instruction. Every kernel family is here,
float64 and the gather of max_pool_backward included.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

triton = pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia")

from torchconv_impl.triton_kernels import compiled  # noqa: E402
from torchconv_impl.triton_kernels.compiled import ONE_CHANNEL_PER_GROUP, RESNET50, ConvProblem, PoolProblem, Variant  # noqa: E402

R50_3X3, R50_STRIDE_2, R50_STEM, R50_LATE, R50_GLOBAL_AVG = RESNET50[0], RESNET50[2], RESNET50[3], RESNET50[4], RESNET50[-1]
# Tensors past 2³¹ elements (meta tensors: no memory), for which the launchers pick int64 offsets.
R50_3X3_INT64 = ConvProblem("3×3 64→64 56², batch 12288, bias+ReLU", 12288, 64, 56, 64, 3, bias=True, activation="relu")
MAX_POOL_INT64 = PoolProblem("max 3×3/2 64×112², batch 4096", "max", 4096, 64, 112, 56, kernel=3, stride=2, padding=1)
ADAPTIVE_MAX = PoolProblem("adaptive max 2048×7² → 3²", "max", 32, 2048, 7, 3)
AVG_DIVISOR = PoolProblem("avg 3×3/1 divisor −3", "avg", 32, 64, 56, 56, kernel=3, stride=1, padding=1, divisor_override=-3)


def case(kernel, problem, dtype, channels_last, config=0, sass_per_mma=None):
    """``sass_per_mma``: the main loop's SASS instructions per MMA instruction as measured
    with Triton ``CEILINGS_TRITON`` (None: no MMA loop)."""
    variant = Variant(kernel, problem, dtype, channels_last, config)
    layout = "channels_last" if channels_last else "NCHW"
    problem_id = problem.name.translate(str.maketrans({"×": "x", "→": "to", "²": "", "−": "-", " ": "_", ",": ""}))
    return pytest.param(variant, sass_per_mma, id=f"{kernel.removesuffix('_kernel')}-{problem_id}-{dtype}-{layout}")


CASES = [
    # The 16-bit main configs (the first of each kernel's list) at a ResNet-50 3×3 layer.
    case("conv_forward_kernel", R50_3X3, "bfloat16", True, sass_per_mma=49.0),
    case("conv_input_grad_kernel", R50_3X3, "bfloat16", True, sass_per_mma=54.5),
    case("conv_weight_grad_kernel", R50_3X3, "bfloat16", True, sass_per_mma=62.5),
    # 128×128×64, the 16-bit config with the fewest SASS per wgmma (four per step).
    case("conv_forward_kernel", R50_3X3, "bfloat16", True, config=1, sass_per_mma=32.8),
    case("conv_input_grad_kernel", R50_3X3, "bfloat16", True, config=1, sass_per_mma=37.5),
    case("conv_weight_grad_kernel", R50_3X3, "bfloat16", True, config=1, sass_per_mma=48.8),
    # 128×64×64, the tile the tuner keeps for 64 output channels (HGMMA 64×64×16: half the work of 64×128×16).
    case("conv_forward_kernel", R50_3X3, "bfloat16", True, config=2, sass_per_mma=22.1),
    case("conv_input_grad_kernel", R50_3X3, "bfloat16", True, config=2, sass_per_mma=23.6),
    # ... and for 128 output channels in the weight gradient (whose rows are the output channels).
    case("conv_weight_grad_kernel", R50_STRIDE_2, "bfloat16", True, config=2, sass_per_mma=27.8),
    case("conv_forward_kernel", R50_3X3, "bfloat16", False, sass_per_mma=160.5),  # NCHW: 16-bit scalar loads
    case("conv_forward_kernel", R50_3X3, "float32", True, sass_per_mma=33.5),  # TF32, torch's default for convolutions
    # A late layer, its forward and input gradient split-K (test_a_late_layer_splits_its_reduction).
    case("conv_forward_kernel", R50_LATE, "bfloat16", True, sass_per_mma=49.5),
    case("conv_input_grad_kernel", R50_LATE, "bfloat16", True, sass_per_mma=55.5),
    # The stem's 3 channels: (tap, channel) reduced jointly, a padding mask per element.
    case("conv_forward_kernel", R50_STEM, "bfloat16", True, sass_per_mma=498.5),
    case("conv_weight_grad_kernel", R50_STEM, "bfloat16", True, sass_per_mma=152.0),
    # Typing: int64 offsets, bias and ReLU epilogue, float64 (DMMA), adaptive windows,
    # divisor_override, max_pool_backward's gather.
    case("conv_forward_kernel", R50_3X3_INT64, "float16", True, sass_per_mma=71.0),
    case("conv_input_grad_kernel", R50_3X3, "float64", False, config=5, sass_per_mma=4.6),
    case("conv_weight_grad_kernel", R50_3X3_INT64, "float32", True, sass_per_mma=84.0),
    case("max_pool_forward_kernel", ADAPTIVE_MAX, "bfloat16", True),
    case("max_pool_backward_kernel", MAX_POOL_INT64, "float64", False),
    case("avg_pool_forward_kernel", AVG_DIVISOR, "float16", False),
    case("avg_pool_backward_kernel", R50_GLOBAL_AVG, "float32", True),
    # One input channel per group: element-wise multiply-adds, no MMA loop.
    case("depthwise_forward_kernel", ONE_CHANNEL_PER_GROUP[1], "bfloat16", True),
    case("depthwise_input_grad_kernel", ONE_CHANNEL_PER_GROUP[0], "float16", True),
    case("depthwise_weight_grad_kernel", ONE_CHANNEL_PER_GROUP[3], "float64", False),
]
CEILINGS_TRITON = "3.8"  # the version the sass_per_mma figures were measured with
CEILING_MARGIN = 1.10  # a main loop may grow 10 % before the guard fails

# A 16-bit convolution tile too big for the registers of 4 warps (128×256 float32 accumulators:
# 256 per thread): it spills, and its loop grows past the 3×3 forward's ceiling.
OVERSIZED = Variant("conv_forward_kernel", R50_3X3, "bfloat16", True, (128, 256, 32, 4, 1))


@pytest.fixture(scope="module")
def compiled_cases(tmp_path_factory):
    """Variant → its measurement (compiled.to_json), every case and OVERSIZED in one process
    (two compiling), without the TRITON_INTERPRET that conftest sets."""
    variants = [param.values[0] for param in CASES] + [OVERSIZED]
    spec = tmp_path_factory.mktemp("compiled") / "variants.json"
    spec.write_text(json.dumps([variant.to_json() for variant in variants]))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, "-m", "torchconv_impl.triton_kernels.compiled", "--variants", str(spec), "--json", "--jobs", "2"],
        env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(zip(variants, map(json.loads, result.stdout.splitlines()), strict=True))


def guard_failures(measurement: dict) -> list[str]:
    """What the guard refuses in a measurement (compiled.to_json), its ceiling aside."""
    variant, sass = measurement["variant"], measurement["sass"]
    failures = []
    if variant["dtype"] in ("bfloat16", "float16"):
        if sass["spill_store_bytes"] or sass["spill_load_bytes"] or measurement["stack_bytes"]:
            failures.append(f"spills: {sass['spill_store_bytes']} B stored, {sass['spill_load_bytes']} B loaded, "
                            f"{measurement['stack_bytes']} B stack")
        if variant["kernel"].startswith("conv") and not (sass["loop"] and sass["loop"]["wgmma"]):
            failures.append(f"main loop without wgmma: {sass['loop'] and sass['loop']['mma_opcode']}")
    return failures


def ceiling_failure(measurement: dict, sass_per_mma: float) -> str | None:
    loop = measurement["sass"]["loop"]
    ceiling = sass_per_mma * CEILING_MARGIN
    if loop is None or loop["sass_per_mma"] > ceiling:
        return f"main loop: {loop and loop['sass_per_mma']:.1f} SASS per MMA, ceiling {ceiling:.1f} (measured {sass_per_mma})"
    return None


@pytest.mark.parametrize("variant, sass_per_mma", CASES)
def test_compiles_without_spills_and_with_wgmma(compiled_cases, variant, sass_per_mma):
    measurement = compiled_cases[variant]
    assert guard_failures(measurement) == [], measurement
    assert (measurement["sass"]["loop"] is not None) == (sass_per_mma is not None), "an MMA loop appeared or vanished"


@pytest.mark.skipif(not triton.__version__.startswith(CEILINGS_TRITON + "."),
                    reason=f"SASS counts depend on the compiler: the ceilings were measured with Triton {CEILINGS_TRITON}")
@pytest.mark.parametrize("variant, sass_per_mma", [param for param in CASES if param.values[1] is not None])
def test_main_loop_within_ceiling(compiled_cases, variant, sass_per_mma):
    assert ceiling_failure(compiled_cases[variant], sass_per_mma) is None


def test_a_late_layer_splits_its_reduction():
    """At 7², batch 32, the 3×3 512→512 layer's 52 output tiles of 128×128 would fill 52 of an
    H100's 132 multiprocessors: its forward and input gradient split their 512 channels in
    four chunks of 128; the 3×3 64→64 layer at 56² (3,136 tiles) does not split."""
    for kernel in ("conv_forward_kernel", "conv_input_grad_kernel"):
        assert compiled.launch_arguments(Variant(kernel, R50_LATE, "bfloat16", True))["CHUNK"] == 128
        assert compiled.launch_arguments(Variant(kernel, R50_3X3, "bfloat16", True))["CHUNK"] == 64


def test_guard_refuses_an_oversized_config(compiled_cases):
    measurement = compiled_cases[OVERSIZED]
    assert [failure.split(":")[0] for failure in guard_failures(measurement)] == ["spills"]
    assert ceiling_failure(measurement, 49.0) is not None


# nvdisasm's layout: an outer loop (.L_x_0) around the main loop (.L_x_1), and the trap loop
# after EXIT, which holds no MMA.
SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   IMAD.MOV.U32 R2, RZ, RZ, R3 ;
.L_x_1:
        /*0020*/                   LDG.E.128 R4, desc[UR4][R2.64] ;
        /*0030*/              @!P1 LDG.E.U16 R8, desc[UR4][R2.64+0x10] ;
        /*0040*/                   STL.64 [R1], R4 ;
        /*0050*/                   HMMA.16816.F32.BF16 R12, R4, R8, R12 ;
        /*0060*/                   LDL.64 R4, [R1] ;
        /*0070*/                   HMMA.16816.F32.BF16 R12, R4, R8, R12 ;
        /*0080*/                   ISETP.NE.AND P0, PT, R9, RZ, PT ;
        /*0090*/               @P0 BRA `(.L_x_1) ;
        /*00a0*/                   ISETP.NE.AND P2, PT, R10, RZ, PT ;
        /*00b0*/               @P2 BRA `(.L_x_0) ;
        /*00c0*/                   EXIT ;
.L_x_2:
        /*00d0*/                   BRA `(.L_x_2);
"""


def test_sass_parse_finds_the_innermost_mma_loop_and_the_spills():
    sass = compiled.Sass.parse(SASS)
    assert sass.loop == compiled.MainLoop(instructions=8, mma_opcode="HMMA.16816.F32.BF16", mmas=2)
    assert sass.loop.sass_per_mma == 4 and not sass.loop.wgmma
    assert (sass.spill_store_bytes, sass.spill_load_bytes, sass.global_loads) == (8, 8, {16: 1, 128: 1})
    assert compiled.Sass.parse(SASS.replace("HMMA", "FFMA")).loop is None


def test_guard_refuses_a_spilling_conv_loop_without_wgmma():
    """The synthetic SASS as a 16-bit convolution's: an HMMA (mma.sync) loop, spilling; also
    past a ceiling measured at 3 SASS per MMA."""
    measurement = compiled.to_json(compiled.Measurement(Variant("conv_forward_kernel", R50_3X3, "float16", True), "", "ieee",
                                                        255, 0, 0, compiled.Sass.parse(SASS)))
    failures = guard_failures(measurement)
    assert [failure.split(":")[0] for failure in failures] == ["spills", "main loop without wgmma"], failures
    assert ceiling_failure(measurement, 3.0) is not None and ceiling_failure(measurement, 4.0) is None
