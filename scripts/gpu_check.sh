#!/usr/bin/env bash
# One command for a lent CUDA machine (torch and Triton preinstalled, no network): the test
# suite on the GPU, then scripts/bench.py against cuDNN — bf16 and fp16 channels_last, fp32
# NCHW — with JSON, CSV and a plot per run, inside a wall-time budget.
#
#   bash scripts/gpu_check.sh                 # results in gpu_check/ (or $OUT)
#   DRY_RUN=1 bash scripts/gpu_check.sh       # the same stages on CPU, tiny: checks the script
#
# Each stage has its own time limit (seconds, env overrides) so that the whole fits BUDGET
# (default 480 s: a lent machine gives 15 minutes in all, start-up included); a stage that runs
# out is reported as such and the next one starts. Autotuning is pruned to the first
# TORCHCONV_AUTOTUNE configs of each kernel (1 for the tests: correctness needs no tuning).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
DRY_RUN=${DRY_RUN:-0}
BUDGET=${BUDGET:-480}
TESTS_S=${TESTS_S:-210}
BENCH_S=${BENCH_S:-80}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
start=$(date +%s)
summary="$OUT/summary.txt"
: > "$summary"

say() { echo "$*" | tee -a "$summary"; }

# The package, importable without installing anything: the repository's torchconv_impl plus its
# Triton kernels, which setup.py installs as torchconv_impl.triton_kernels.
site="$OUT/site"
rm -rf "$site" && mkdir -p "$site/torchconv_impl"
for entry in "$PWD"/torchconv_impl/*; do ln -s "$entry" "$site/torchconv_impl/"; done
ln -s "$PWD/triton_kernels" "$site/torchconv_impl/triton_kernels"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"

# stage NAME LIMIT COMMAND...: runs COMMAND under LIMIT seconds (less if the budget is nearly
# spent), its output in $OUT/NAME.txt; says how it ended.
stage() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - start) ))
  (( left < limit )) && limit=$left
  if (( limit <= 5 )); then say "$name: skipped, the ${BUDGET} s budget is spent"; return; fi
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$? t=$(( $(date +%s) - t0 ))
  case $rc in
    0) say "$name: passed in ${t} s" ;;
    124) say "$name: stopped at its ${limit} s limit (see $OUT/$name.txt)" ;;
    *) say "$name: FAILED (exit $rc) in ${t} s — $(tail -n 1 "$OUT/$name.txt")" ;;
  esac
}

if [[ $DRY_RUN == 1 ]]; then
  export TRITON_INTERPRET=1
  device=cpu
  tests=(tests/test_triton.py -k "fused_relu or with_bias_matches")
  bench_cases=(--only "LeNet C5" --repeats 1)
else
  device=cuda
  # The Triton backend's own tests first, so that a stage cut short has run what matters most.
  tests=(tests/test_triton.py tests/test_conv.py tests/test_conv_transpose.py tests/test_pool.py tests/test_autocast.py tests)
  bench_cases=(--only b32)
fi

say "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$PYTHON" - <<'EOF' 2>&1 | tee -a "$summary"
import platform, torch
try:
    import triton
    version = triton.__version__
except ImportError:
    version = "not installed"
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
print(f"machine: {gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}); triton {version}; python {platform.python_version()}")
EOF
[[ $DRY_RUN == 1 ]] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$summary" 2>&1

TORCHCONV_AUTOTUNE=1 stage tests "$TESTS_S" "$PYTHON" -m pytest -q -x -p no:cacheprovider "${tests[@]}"
for run in "bfloat16 --channels-last" "float16 --channels-last" "float32"; do
  read -r dtype layout <<< "$run"
  name="bench-$dtype${layout:+-channels-last}"
  [[ $DRY_RUN == 1 ]] && dtype=float32
  TORCHCONV_AUTOTUNE=${TORCHCONV_AUTOTUNE:-3} stage "$name" "$BENCH_S" \
    "$PYTHON" scripts/bench.py --device "$device" --dtype "$dtype" $layout "${bench_cases[@]}" --out "$OUT/$name"
done
say "total: $(( $(date +%s) - start )) s of a ${BUDGET} s budget; results in $OUT/"
