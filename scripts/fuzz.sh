#!/usr/bin/env bash
# The hostile-input properties with a long budget: the same proptest properties `cargo test`
# runs with a few cases each (orfeas-core/tests/hostile_inputs/, orfeas-server/tests/
# hostile_multipart.rs), here with many cases per property, round after round with fresh seeds.
# See docs/testing.md.
#
#   scripts/fuzz.sh [CASES | DURATION] [--profile dev|fuzz] [--only core|server] [-- FILTER...]
#
#   CASES     cases per property and round (default 2000)
#   DURATION  30s, 20m, 2h: rounds of 2000 cases until the time is up
#   --profile dev (default): the test profile, overflow checks on;
#             fuzz: optimised like release, overflow checks and debug assertions still on
#             (Cargo.toml's [profile.fuzz]; builds into target/fuzz, several times faster per case)
#   --only    just the core properties or just the server's
#   FILTER    test name filters for the core binary, e.g. `-- weights::birefnet images`
#
# Each round prints its seed; a failure prints proptest's minimal failing input and the command
# that replays the round. Exit status: 0 when every round passed.
set -euo pipefail
cd "$(dirname "$0")/.."

cases=2000
seconds=""
profile=dev
only=""
filters=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --) shift; filters=("$@"); break ;;
    *[0-9]s) seconds=${1%s}; shift ;;
    *[0-9]m) seconds=$(( ${1%m} * 60 )); shift ;;
    *[0-9]h) seconds=$(( ${1%h} * 3600 )); shift ;;
    *[!0-9]*|"") echo "fuzz.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    *) cases=$1; shift ;;
  esac
done
case "$profile" in
  dev) profile_args=() ;; # what `cargo test` builds: nothing new to compile
  fuzz) profile_args=(--profile fuzz) ;;
  *) echo "fuzz.sh: --profile dev or fuzz" >&2; exit 2 ;;
esac
# A seed given from outside replays that one round.
replay=${PROPTEST_RNG_SEED:-}

export ORFEAS_FUZZ_CASES=$cases
export RUST_BACKTRACE=${RUST_BACKTRACE:-0}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

run_round() {
  local seed=$1
  export PROPTEST_RNG_SEED=$seed
  echo "==> round seed $seed, $cases cases per property, profile $profile"
  if [ "$only" != server ]; then
    cargo test --locked "${profile_args[@]}" -p orfeas-core --test hostile_inputs -- "${filters[@]}"
  fi
  if [ "$only" != core ]; then
    cargo test --locked "${profile_args[@]}" -p orfeas-server --test hostile_multipart
  fi
}

# Build first, so that the time budget is spent on cases.
cargo test --locked "${profile_args[@]}" -p orfeas-core --test hostile_inputs --no-run
cargo test --locked "${profile_args[@]}" -p orfeas-server --test hostile_multipart --no-run

started=$(date +%s)
round=0
while :; do
  round=$((round + 1))
  seed=${replay:-$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ))}
  if ! run_round "$seed"; then
    echo
    echo "fuzz.sh: round $round failed. Replay it with:"
    echo "  PROPTEST_RNG_SEED=$seed scripts/fuzz.sh $cases --profile $profile${only:+ --only $only}"
    echo "then make the minimal failing input above a named #[test] (docs/testing.md)."
    exit 1
  fi
  if [ -n "$replay" ] || [ -z "$seconds" ] || [ $(( $(date +%s) - started )) -ge "$seconds" ]; then
    break
  fi
done
echo "fuzz.sh: $round round(s) passed in $(( $(date +%s) - started )) s"
