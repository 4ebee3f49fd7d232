#!/usr/bin/env bash
# How much a batch gains from the machine's cores: eight photos at `high` (stl+glb) with the
# default slots on every core, against one slot pinned to one core (`taskset -c 0`), run
# alternately; prints each run and the ratio of the medians. Optionally `perf stat` page
# faults at 1 and 4 slots (PERF=1), and the machine's own ceiling for this work (CEILING=1):
# two independent one-slot processes, each pinned to its own core with half the photos, against
# the pinned run -- what two cores give when nothing at all is shared in the process.
#
#   bash benches/slots.sh               # RUNS=3 alternating pairs
#   RUNS=5 PERF=1 CEILING=1 PYTHON=/path/to/python bash benches/slots.sh
#   ORFEAS_BIN=/tmp/orfeas-before bash benches/slots.sh   # another build, not rebuilt
#
# Needs a Python with numpy, pillow and scikit-image for the inputs (benches/make_inputs.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-3}"
PY="${PYTHON:-/tmp/bench-venv/bin/python}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
INPUTS="${ORFEAS_BENCH_INPUTS:-$ROOT/target/bench-inputs}"
QUALITY="${QUALITY:-high}"
FORMATS="${FORMATS:-stl,glb}"
WORK="$(mktemp -d /tmp/orfeas-slots.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

if [ -n "${ORFEAS_BIN:-}" ]; then
  BIN="$ORFEAS_BIN" # e.g. an older build, to compare
else
  cargo build --release -p orfeas-server >&2
  BIN="$TARGET/release/orfeas"
fi
[ -d "$INPUTS/batch8" ] || "$PY" benches/make_inputs.py "$INPUTS" >&2
BATCH="$INPUTS/batch8"

# seconds CMD...: wall time of one run into a fresh output directory.
seconds() {
  rm -rf "$WORK/out"
  # Each run writes ~570 MB at `high`: without a sync, the kernel writes the previous run's
  # files back during the next one, on whichever core is free (the pinned run's idle core).
  sync
  local start end
  start=$(date +%s.%N)
  "$@" "$BATCH" -o "$WORK/out" --quality "$QUALITY" --format "$FORMATS" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

# halves: the two processes of the ceiling run, each on its own core with half the photos.
halves() {
  rm -rf "$WORK/out" "$WORK/a" "$WORK/b"
  mkdir -p "$WORK/a" "$WORK/b"
  local files=("$BATCH"/*) i=0
  for f in "${files[@]}"; do
    if ((i++ % 2)); then ln -s "$f" "$WORK/b/"; else ln -s "$f" "$WORK/a/"; fi
  done
  sync
  local start end
  start=$(date +%s.%N)
  taskset -c 0 "$BIN" generate "$WORK/a" -o "$WORK/out/a" --slots 1 --quality "$QUALITY" --format "$FORMATS" >/dev/null 2>&1 &
  taskset -c 1 "$BIN" generate "$WORK/b" -o "$WORK/out/b" --slots 1 --quality "$QUALITY" --format "$FORMATS" >/dev/null 2>&1 &
  wait
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "warm-up..." >&2
seconds "$BIN" generate >/dev/null
pinned=(); default=(); ceiling=()
for i in $(seq "$RUNS"); do
  p=$(seconds taskset -c 0 "$BIN" generate --slots 1)
  d=$(seconds "$BIN" generate)
  pinned+=("$p"); default+=("$d")
  printf 'run %d: one slot on one core %.2f s, default %.2f s' "$i" "$p" "$d"
  if [ "${CEILING:-0}" = 1 ]; then
    c=$(halves); ceiling+=("$c")
    printf ', two pinned processes %.2f s' "$c"
  fi
  echo
done
mp=$(printf '%s\n' "${pinned[@]}" | median)
md=$(printf '%s\n' "${default[@]}" | median)
printf '\n| %d photos, %s, %s | median of %d |\n|---|---|\n' 8 "$QUALITY" "$FORMATS" "$RUNS"
printf '| one slot pinned to one core | %.2f s |\n| default (%s cores) | %.2f s |\n| ratio | **%.2f×** |\n' \
  "$mp" "$(nproc)" "$md" "$(echo "$mp / $md" | bc -l)"
if [ "${CEILING:-0}" = 1 ]; then
  mc=$(printf '%s\n' "${ceiling[@]}" | median)
  printf '| two pinned one-slot processes, half the photos each | %.2f s |\n| ceiling ratio | %.2f× |\n' \
    "$mc" "$(echo "$mp / $mc" | bc -l)"
fi

if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  for slots in 1 4; do
    rm -rf "$WORK/out"
    faults=$(perf stat -x, -e page-faults "$BIN" generate "$BATCH" -o "$WORK/out" --quality "$QUALITY" \
      --format "$FORMATS" --slots "$slots" 2>&1 >/dev/null | awk -F, '/page-faults/ {print $1}')
    printf '| page faults, %d slot(s) | %s |\n' "$slots" "$faults"
  done
fi
