#!/usr/bin/env bash
# The Python package as a user gets it: builds the orfeas wheel with maturin, installs it into
# a FRESH virtual environment (with pytest, numpy, pillow, trimesh, mypy from PyPI), runs the
# pytest suite in orfeas-py/tests against the installed package, then checks the type stubs
# against the module with mypy.stubtest.
#
# The wheel is built in cargo's `dev` profile into CARGO_TARGET_DIR, the same profile and
# directory `cargo test --workspace` uses (the workspace optimises dependencies even in dev),
# so CI compiles orfeas-core and its dependencies once for both.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
python=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "maturin (build tool, its own venv)"
"$python" -m venv "$work/build"
"$work/build/bin/pip" install -q --disable-pip-version-check "maturin>=1.9,<2"

step "build the wheel (dev profile, $CARGO_TARGET_DIR)"
"$work/build/bin/maturin" build --manifest-path orfeas-py/Cargo.toml --profile dev \
  --interpreter "$python" --out "$work/wheels"
wheel=$(ls "$work"/wheels/orfeas-*.whl)
python3 - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for required in ("orfeas/__init__.py", "orfeas/py.typed", "orfeas/_orfeas.pyi", "orfeas/__main__.py", "orfeas/errors.py"):
    assert required in names, f"{required} missing from the wheel: {names}"
assert any(n.startswith("orfeas/_orfeas") and n.endswith(".so") for n in names), names
print("wheel contents ok:", sys.argv[1].rsplit("/", 1)[-1])
PY

step "install into a fresh venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" pytest pillow trimesh mypy

step "pytest (against the installed package)"
# Run from the tests folder so the checkout's python/ sources can never shadow the install.
(cd orfeas-py/tests && "$work/venv/bin/python" -m pytest -p no:cacheprovider -q .)

step "type stubs against the module (mypy.stubtest)"
(cd "$work" && "$work/venv/bin/python" -m mypy.stubtest orfeas)
echo
echo "python suite passed"
