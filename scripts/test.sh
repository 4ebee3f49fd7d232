#!/usr/bin/env bash
# The whole test suite, from a fresh clone: Rust unit + integration tests (core, CLI, the HTTP
# server over real HTTP/WebSocket), the CLI on the bundled examples judged by independent
# readers (trimesh, Khronos glTF validator), the Python package in a fresh virtual environment,
# the Node package installed from its `npm pack` tarball, and the Batch Studio page in headless
# Chromium. Installs what it needs by itself (crates, PyPI/npm packages, Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# napi always builds with an explicit --target, which cargo keeps apart from host-default builds;
# giving every step the same explicit target lets cargo test, maturin and napi share one build of
# the dependencies (dev profile) instead of three.
export CARGO_BUILD_TARGET=${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
bin_dir=$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug
export ORFEAS_BIN=${ORFEAS_BIN:-$bin_dir/orfeas}
started=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }

step "Rust tests (workspace)"
cargo test --workspace --locked

step "CLI on examples/: every format, validated by independent readers"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The binary `cargo test` built for the CLI tests (same features: no second build).
"$ORFEAS_BIN" generate examples -o "$out" --format stl,obj,glb,ply,3mf --quality low --json > "$out/summary.json"
python3 - "$out/summary.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["total"] > 0 and doc["failed"] == 0 and doc["complete"] == doc["total"], doc
for job in doc["jobs"]:
    assert job["status"] == "complete" and job["watertight"] and job["triangles"] > 0, job
print(f"summary: {doc['complete']} of {doc['total']} examples complete")
PY
validator=""
for candidate in "$root/../shared/tools/validate-meshes" "$root/shared/tools/validate-meshes"; do
  [ -x "$candidate" ] && validator=$candidate && break
done
if [ -n "$validator" ]; then
  # trimesh reads 3MF through lxml, which the validator's own install does not bring.
  eval_home=${ORFEAS_VALIDATOR_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/orfeas-validators}
  mkdir -p "$eval_home"
  [ -x "$eval_home/venv/bin/python" ] || python3 -m venv "$eval_home/venv"
  "$eval_home/venv/bin/python" -c "import lxml" 2>/dev/null || "$eval_home/venv/bin/pip" install -q lxml
  "$validator" "$out"/*.stl "$out"/*.obj "$out"/*.glb "$out"/*.ply "$out"/*.3mf
else
  echo "validate-meshes not found beside the checkout (../shared/tools); skipped" >&2
  exit 1
fi

step "Python package (wheel in a fresh virtual environment)"
bash scripts/test-python.sh

step "Node package (napi build, npm pack, installed in a fresh folder)"
bash scripts/test-node.sh

step "Batch Studio page in headless Chromium"
bash scripts/test-studio.sh

echo
echo "all test suites passed in $(( $(date +%s) - started )) s"
