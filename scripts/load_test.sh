#!/usr/bin/env bash
# Load test of `orfeas serve` (run by hand; not part of the test suite). Builds the server and
# the load driver (orfeas-server/examples/load_test.rs), then: 200 jobs from 10 concurrent
# clients, 50 WebSocket listeners; checks every job completes and every listener sees every
# terminal event; prints p50/p99 event latency and the server's peak RSS as JSON.
# Usage: scripts/load_test.sh [--release] [driver options: --jobs N --clients N --listeners N --slots N --size PX]
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$(pwd)/target}
profile=debug
cargo_flags=()
if [ "${1:-}" = "--release" ]; then
  profile=release
  cargo_flags=(--release)
  shift
fi
cargo build "${cargo_flags[@]}" -p orfeas-server --bin orfeas --example load_test
"$target_dir/$profile/examples/load_test" --orfeas "$target_dir/$profile/orfeas" "$@"
