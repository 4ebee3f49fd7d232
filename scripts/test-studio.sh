#!/usr/bin/env bash
# The Batch Studio browser test: builds `orfeas` (dev profile, shared with the Rust tests), makes
# sure Debian's Chromium is there, installs playwright-core from the lock file, and drives the page
# of a real `orfeas serve` (orfeas-server/tests/browser/studio.test.mjs), and of a cluster front end
# with two workers on a real nats-server (cluster.test.mjs; scripts/test.sh installs Debian's).
# Artefacts (screenshots, server log) go to $ORFEAS_ARTIFACTS, default $CARGO_TARGET_DIR/test-artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export ORFEAS_ARTIFACTS=${ORFEAS_ARTIFACTS:-$CARGO_TARGET_DIR/test-artifacts}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
chromium=${CHROMIUM:-/usr/bin/chromium}

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$chromium" ]; then
  step "Installing Debian's chromium"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q chromium
fi
export CHROMIUM=$chromium

if [ -z "${ORFEAS_BIN:-}" ]; then
  step "Building orfeas (dev profile)"
  cargo build --locked --bin orfeas
  export ORFEAS_BIN=$CARGO_TARGET_DIR/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug/orfeas
fi

step "Installing the browser test's npm packages"
cd "$root/orfeas-server/tests/browser"
npm ci --no-audit --no-fund --loglevel=error

step "Batch Studio in headless Chromium"
mkdir -p "$ORFEAS_ARTIFACTS"
node --test --test-reporter=spec job-state.test.mjs studio.test.mjs cluster.test.mjs
echo "screenshot: $ORFEAS_ARTIFACTS/studio.png"
