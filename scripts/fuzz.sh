#!/usr/bin/env bash
# The long budget of the generated hostile-input tests (orfeas-core/tests/hostile_inputs.rs):
# the same properties the suite runs with 64 cases each, here with many more.
#   scripts/fuzz.sh            # 20000 cases per property
#   scripts/fuzz.sh 200000     # more
# A failure prints proptest's minimal input: add it to hostile_inputs.rs as a named
# regression test (see regression_diagonal_pixels_only_say_why_nothing_is_left) and fix it.
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-20000}
ORFEAS_FUZZ_CASES=$cases cargo test --locked -p orfeas-core --test hostile_inputs -- --nocapture
