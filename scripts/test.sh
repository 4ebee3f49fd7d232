#!/usr/bin/env bash
# The whole test suite, from a fresh clone: Rust unit + integration tests, then the CLI on
# the bundled examples judged by independent readers (trimesh, Khronos glTF validator).
# Installs what it needs by itself (Rust crates, and the validators' Python/npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*"; }

step "Rust tests (workspace)"
cargo test --workspace --locked

step "CLI on examples/: every format, validated by independent readers"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --locked --bin orfeas
"$target_dir/debug/orfeas" generate examples -o "$out" --format stl,obj,glb,ply,3mf --quality low --json > "$out/summary.json"
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
echo
echo "all test suites passed"
