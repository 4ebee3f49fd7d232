#!/usr/bin/env bash
# Depth Anything V2 on the CPU: candle (orfeas) vs PyTorch (transformers), side by side on the
# same weights, input size and thread count, alternating runs so both see the same machine.
#
#   bash benches/depth_anything_compare.sh [PYTHON_WITH_TORCH] [SIZE] [ROUNDS] [THREADS]
#
# PYTHON_WITH_TORCH: a Python with torch + transformers (default: $DA_PYTHON or python3).
# Without real weights, benches/da_make_weights.py writes random Small weights (the cost of a
# forward does not depend on the values). Never run in CI (torch is 3 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-${DA_PYTHON:-python3}}
size=${2:-518}
rounds=${3:-3}
threads=${4:-$(nproc)}
weights=${DA_WEIGHTS:-${TMPDIR:-/tmp}/orfeas-da-small-random}
[ -f "$weights/model.safetensors" ] || "$py" benches/da_make_weights.py "$weights" small
cargo build --release --locked -p orfeas-benches --bin da_forward
bin=${CARGO_TARGET_DIR:-target}/release/da_forward
for r in $(seq "$rounds"); do
  RAYON_NUM_THREADS=$threads "$bin" "$weights" "$size" 3
  OMP_NUM_THREADS=$threads "$py" benches/da_torch.py "$weights" "$size" 3 "$threads" 2>/dev/null
done | tee /dev/stderr | python3 -c '
import json, sys, statistics
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
by = {}
for r in rows:
    by.setdefault(r["impl"], []).append(r["median_s"])
c, t = statistics.median(by["candle"]), statistics.median(by["pytorch"])
print(f"candle {c:.3f} s/image, pytorch {t:.3f} s/image, candle speed relative to pytorch: {t / c:.2f}x")
'
