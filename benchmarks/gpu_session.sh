#!/usr/bin/env bash
# The whole GPU session as one command of at most BUDGET seconds (default 560: the device
# tool stops a command at 600), every phase under its own time limit, the figures landing
# in $OUT (at most 8 files, which is what the device tool brings back):
#
#   session.log         everything printed (the environment, each phase, its exit status)
#   suite.log           the whole test suite on the GPU machine (tests/test_cuda.py on CUDA)
#   bench_fp32.json     bench_gpu.py: engine (eager, cuda-graphs), generic, vmap, plain; K = 1..5000
#   bench_tf32.json     the same at K = 1000 with TF32 matmuls (engine and vmap)
#   bench_bf16.json     the same at K = 1000 in bf16 (engine and vmap)
#   bench_compile.json  the engine at K = 1000 with torch.compile, and with foreach Adam
#                       (eager and cuda-graphs) against the fused kernel's K launches
#   run_seed100.json    `initlab run seed --seeds 100 --device cuda --max-group auto`: its
#                       group sizes (batch_models per epoch record) and summary
#   README_table.md     benchmarks/gpu_table.py over the bench files: the README's table
#
# Prepare on the development machine (once; the data travels in an ignored folder):
#     mkdir -p .gpu-data && cp -r ../shared/data/fashion-mnist ../shared/data/mnist .gpu-data/
#     grep -qx '/.gpu-data/' .git/info/exclude || echo /.gpu-data/ >> .git/info/exclude
# Run on the GPU machine, from the repository root (the device tool: carry [".gpu-data"],
# timeout_s 600):
#     bash benchmarks/gpu_session.sh
# Check the script itself on any machine without a GPU, at tiny sizes (a few minutes; the
# phases' limits times SCALE, default 4):
#     OUT=/tmp/gpu-dry bash benchmarks/gpu_session.sh --cpu-dry-run
# It needs python3 with torch (a CUDA build on the GPU), numpy, scipy, matplotlib and
# pytest (pytest-xdist and pytest-timeout when present); initlab runs from src/
# (PYTHONPATH), nothing is installed.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ "${1:-}" == "--cpu-dry-run" ]]; then DRY=1; elif [[ -n "${1:-}" ]]; then
    echo "usage: bash benchmarks/gpu_session.sh [--cpu-dry-run]" >&2; exit 2; fi
OUT=${OUT:-/tmp/initlab-gpu}
mkdir -p "$OUT"
# the dry run's phases get SCALE times the GPU's limits (a small CPU is slower at anything)
if (( DRY )); then SCALE=${SCALE:-4}; BUDGET=${BUDGET:-$(( 560 * SCALE ))}; else SCALE=${SCALE:-1}; BUDGET=${BUDGET:-560}; fi
PY=${PY:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ -z "${INITLAB_DATA_DIR:-}" ]]; then
    if [[ -d .gpu-data ]]; then export INITLAB_DATA_DIR=$PWD/.gpu-data; else export INITLAB_DATA_DIR=$PWD/../shared/data; fi
fi
RUNS=$(mktemp -d)
exec > >(tee -a "$OUT/session.log") 2>&1

left() { echo $(( BUDGET - SECONDS )); }
# phase NAME MAX_SECONDS COMMAND...: run COMMAND for at most MAX_SECONDS (less when the
# budget has less left), say how it ended; skipped when under 15 s are left.
phase() {
    local name=$1 max=$(( $2 * SCALE )); shift 2
    local t; t=$(left)
    (( t - 5 < max )) && max=$(( t - 5 ))
    if (( max < 15 )); then echo "== $name: skipped ($(left) s of the ${BUDGET} s budget left)"; return 0; fi
    echo "== $name (at most ${max} s; $(left) s left) $(date -u +%H:%M:%S)"
    timeout --kill-after=5 "$max" "$@"
    local rc=$?
    (( rc == 124 || rc == 137 )) && echo "== $name: stopped at its limit of ${max} s" || echo "== $name: exit $rc"
    return 0
}

if (( DRY )); then
    DEV=cpu
    BENCH=(--device cpu --quick --data-dir "$INITLAB_DATA_DIR")
    SUITE=(env INITLAB_CUDA_TESTS_ON=cpu "$PY" -m pytest -q -p no:cacheprovider tests/test_engine_precision.py
           -k "max_group or precision_is_checked or step_mode")
    MAIN=(--trainers engine vmap plain --steps eager cuda-graphs)
    AT1000=(--trainers engine vmap --steps eager)
    COMPILE=(--trainers engine --steps compile --compile-backend aot_eager --engine-configs eager/foreach)
    SEED=(--seeds 2 --epochs 1 --limit-train 512 --limit-val 256 --device cpu)
else
    DEV=cuda
    BENCH=(--device cuda --data-dir "$INITLAB_DATA_DIR")
    XDIST=()
    "$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 12)
    TIMEOUT=()
    "$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT=(--timeout 120)
    SUITE=("$PY" -m pytest -q -p no:cacheprovider "${XDIST[@]}" "${TIMEOUT[@]}" -rfE
           --ignore=tests/test_report_browser.py --ignore=tests/test_papers_browser.py tests)
    MAIN=(--models 1 10 100 1000 5000 --steps eager cuda-graphs --generic-max 100 --vmap-max 5000 --budget-s 120)
    AT1000=(--models 1000 --trainers engine vmap --steps eager cuda-graphs --budget-s 35)
    COMPILE=(--models 1000 --trainers engine --steps compile --engine-configs eager/foreach cuda-graphs/foreach)
    SEED=(--seeds 100 --epochs 3 --device cuda)
fi

echo "== environment $(date -u) (dry run: $DRY, budget ${BUDGET} s, data $INITLAB_DATA_DIR)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
"$PY" -c "import sys, os, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', 'cpus', os.cpu_count())"
uptime

phase "the test suite" 150 bash -c '"$@" > "'"$OUT"'/suite.log" 2>&1; rc=$?; tail -n 25 "'"$OUT"'/suite.log"; exit $rc' _ "${SUITE[@]}"

phase "bench_gpu fp32" 150 "$PY" benchmarks/bench_gpu.py "${BENCH[@]}" "${MAIN[@]}" --precision fp32 --out "$OUT/bench_fp32.json"
phase "bench_gpu tf32" 45 "$PY" benchmarks/bench_gpu.py "${BENCH[@]}" "${AT1000[@]}" --precision tf32 --out "$OUT/bench_tf32.json"
phase "bench_gpu bf16" 45 "$PY" benchmarks/bench_gpu.py "${BENCH[@]}" "${AT1000[@]}" --precision bf16 --out "$OUT/bench_bf16.json"
phase "bench_gpu compile, foreach Adam" 75 "$PY" benchmarks/bench_gpu.py "${BENCH[@]}" "${COMPILE[@]}" --precision fp32 --out "$OUT/bench_compile.json"

phase "initlab run seed --max-group auto" 80 "$PY" -m initlab run seed "${SEED[@]}" --max-group auto \
    --no-download --no-probe --no-report --quiet --out "$RUNS/seed100"
"$PY" - "$RUNS/seed100" "$OUT/run_seed100.json" <<'PYEOF'
import json, sqlite3, subprocess, sys
run, out = sys.argv[1], sys.argv[2]
d = {"run": run}
try:
    db = sqlite3.connect(f"file:{run}/initlab.sqlite?mode=ro", uri=True)
    d["models_per_group"] = {str(k): n for k, n in db.execute(
        "SELECT batch_models, COUNT(*) FROM epochs WHERE epoch = 1 GROUP BY batch_models")}
    d["epoch_records"] = db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    d["wall_s_per_epoch"] = [w for (w,) in db.execute(
        "SELECT DISTINCT wall_s FROM epochs WHERE epoch >= 1 ORDER BY epoch LIMIT 10")]
except Exception as exc:  # no store: the run failed or was stopped before it wrote one
    d["error"] = f"{type(exc).__name__}: {exc}"
s = subprocess.run([sys.executable, "-m", "initlab", "summary", run, "--json"], capture_output=True, text=True)
try:
    d["summary"] = json.loads(s.stdout)
except ValueError:
    d["summary_error"] = (s.stderr or s.stdout)[-2000:]
json.dump(d, open(out, "w"), indent=2)
print("models per group (epoch 1 records by batch_models):", d.get("models_per_group"), d.get("error", ""))
PYEOF

"$PY" benchmarks/gpu_table.py "$OUT"/bench_fp32.json "$OUT"/bench_tf32.json "$OUT"/bench_bf16.json \
    "$OUT"/bench_compile.json > "$OUT/README_table.md" 2>&1
cat "$OUT/README_table.md"
rm -rf "$RUNS"
echo "== done in $SECONDS s (budget ${BUDGET} s) $(date -u)"
ls -la "$OUT"
