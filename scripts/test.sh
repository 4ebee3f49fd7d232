#!/usr/bin/env bash
# The whole test suite, from a fresh clone: Rust unit + integration tests (core, CLI, the HTTP
# server over real HTTP/WebSocket), the CLI on the bundled examples judged by independent
# readers (trimesh, Khronos glTF validator), the Python package in a fresh virtual environment,
# the Node package installed from its `npm pack` tarball, and the Batch Studio page in headless
# Chromium; before them rustfmt and clippy (warnings are errors). Needs nothing beside the
# checkout: installs what it needs by itself (crates, PyPI/npm packages, Debian's chromium).
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

step "rustfmt"
cargo fmt --all --check

step "clippy (workspace, every target, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ] && [ -z "${ORFEAS_NATS_SERVER:-}" ]; then
  step "Installing Debian's nats-server (the cluster tests start their own)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q nats-server
fi

step "S3-compatible server for the cluster's s3:// store test (moto from PyPI, pinned)"
bash scripts/s3/s3-server --install

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
# Judged by readers that share no code with orfeas (pinned trimesh from PyPI, the Khronos glTF
# validator from npm; the script installs them into a cache folder).
bash scripts/judges/validate-meshes "$out"/*.stl "$out"/*.obj "$out"/*.glb "$out"/*.ply "$out"/*.3mf

step "CLI full 3D objects (tiny random TripoSR of the fixtures): every mesh format, same judges"
triposr=orfeas-core/tests/fixtures/triposr
"$ORFEAS_BIN" generate "$triposr/input.png" "$triposr/input_border.png" -o "$out/objects" \
  --method triposr --weights "$triposr/tiny" --resolution 48 --format stl,obj,glb,ply,3mf --json > "$out/objects.json"
python3 - "$out/objects.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["complete"] == doc["total"] == 2, doc
for job in doc["jobs"]:
    assert job["method"] == "triposr" and job["watertight"] and job["triangles"] > 0, job
print("objects: 2 of 2 complete")
PY
bash scripts/judges/validate-meshes "$out"/objects/*.stl "$out"/objects/*.obj "$out"/objects/*.glb "$out"/objects/*.ply "$out"/objects/*.3mf

step "Python package (wheel in a fresh virtual environment)"
bash scripts/test-python.sh

step "Node package (napi build, npm pack, installed in a fresh folder)"
bash scripts/test-node.sh

step "Batch Studio page in headless Chromium"
bash scripts/test-studio.sh

echo
echo "all test suites passed in $(( $(date +%s) - started )) s"
