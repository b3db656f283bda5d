#!/usr/bin/env bash
# One GPU session for the CUDA issue, in one command of about 10 minutes on an H100/H200.
#
# Prepare on the development machine (once; the data travels in an ignored folder):
#     mkdir -p .gpu-data && cp -r ../shared/data/fashion-mnist .gpu-data/
#     grep -qx '/.gpu-data/' .git/info/exclude || echo /.gpu-data/ >> .git/info/exclude
# Run on the GPU machine, from the repository root (the device tool: carry [".gpu-data"]):
#     bash benchmarks/gpu_session.sh
# It needs python3 with a CUDA build of torch, numpy, scipy, matplotlib and pytest (the GPU
# image's python3 has them); initlab runs from src/ (PYTHONPATH), nothing is installed.
# Everything it measures lands in $OUT (default /tmp/initlab-gpu): env.txt, the CUDA
# tests' and the whole suite's logs, bench_gpu's fp32 and tf32 tables (JSON and text), the
# 700-model `initlab run seed --seeds 100 --device cuda` log and its summary.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/initlab-gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export INITLAB_DATA_DIR=${INITLAB_DATA_DIR:-$PWD/.gpu-data}
PY=${PY:-python3}

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, sys; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name(0))"
} 2>&1 | tee "$OUT/env.txt"

echo "== CUDA tests (tests/test_cuda.py) =="
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -n 30 | tee "$OUT/test_cuda.log"

echo "== bench_gpu.py fp32 (K = 1 .. 5000) =="
timeout 240 $PY benchmarks/bench_gpu.py --json > "$OUT/bench_gpu_fp32.json" 2> "$OUT/bench_gpu_fp32.err"
$PY - "$OUT/bench_gpu_fp32.json" <<'PYEOF' | tee "$OUT/bench_gpu_fp32.txt"
import json, sys
d = json.load(open(sys.argv[1])); m = d["meta"]
print(m["device"], m["precision"], f"mm peak {m['matmul_peak_gflops']:.0f} GFLOP/s")
for r in d["rows"]:
    mem = "-" if r["peak_mem_gib"] is None else f"{r['peak_mem_gib']:.2f} GiB"
    print(f"{r['trainer']:<8} K={r['K']:<5} {r['ms_per_model_epoch']:9.3f} ms/model-epoch  acc {r['val_acc']:.4f}  "
          f"{mem:>10}  {r['fraction_of_peak']:.1%} of peak  vs vmap {r.get('speedup_vs_vmap') or '-'}")
PYEOF

echo "== bench_gpu.py tf32 (K = 1000) =="
timeout 90 $PY benchmarks/bench_gpu.py --precision tf32 --models 1000 --vmap-max 1000 --generic-max 0 \
    > "$OUT/bench_gpu_tf32.txt" 2>&1; tail -n 6 "$OUT/bench_gpu_tf32.txt"

echo "== initlab run seed --seeds 100 --device cuda (700 models) =="
timeout 150 $PY -m initlab run seed --seeds 100 --device cuda --out /tmp/seed100 --no-report --no-probe \
    2>&1 | tail -n 25 | tee "$OUT/run_seed100.log"
$PY -m initlab summary /tmp/seed100 --json > "$OUT/run_seed100_summary.json" 2>&1

echo "== the whole suite on this machine (CUDA tests included) =="
timeout 180 $PY -m pytest -q -p no:cacheprovider -x --ignore=tests/test_report_browser.py tests 2>&1 \
    | tail -n 40 | tee "$OUT/suite.log"
ls -la "$OUT"
