#!/usr/bin/env bash
# The Node.js package `orfeas` (orfeas-node/), tested as a user gets it:
#   npm ci → napi build (dev profile, platform-suffixed .node) → index.d.ts drift check →
#   npm pack → npm install <tarball> in a fresh folder → node --test there (require + import) →
#   tsc --noEmit on a TypeScript usage file against the shipped index.d.ts.
# Honours CARGO_TARGET_DIR; needs node ≥ 20 and npm; installs its npm packages itself.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pkg=$root/orfeas-node
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

command -v node >/dev/null || { echo "node not found (Node.js >= 20 is needed)" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "Node.js >= 20 is needed, found $(node --version)" >&2; exit 1; }

step "npm ci (orfeas-node)"
cd "$pkg"
npm ci --no-audit --no-fund

step "napi build (dev profile) and the index.d.ts / index.js drift check"
# The build regenerates index.d.ts and index.js from src/ (and dts-header.d.ts); the committed
# copies must match what the code generates, or the shipped types would lie.
committed=$(mktemp -d)
scratch=$(mktemp -d)
trap 'rm -rf "$committed" "$scratch"' EXIT
cp index.d.ts index.js "$committed/"
npx napi build --platform
for f in index.d.ts index.js; do
  if ! diff -u "$committed/$f" "$f"; then
    echo "$f is out of date: run 'npm run build' in orfeas-node and commit the result" >&2
    exit 1
  fi
done
ls -l orfeas.linux-x64-gnu.node

step "npm pack, then npm install <tarball> in a fresh folder"
tarball=$(npm pack --pack-destination "$scratch" --silent | tail -n 1)
contents=$(tar -tzf "$scratch/$tarball" | sort)
echo "$contents"
case $'\n'"$contents"$'\n' in
  *$'\n'package/orfeas.linux-x64-gnu.node$'\n'*) ;;
  *) echo "the tarball lacks the native binary" >&2; exit 1 ;;
esac
app=$scratch/app
mkdir -p "$app"
cd "$app"
npm init -y >/dev/null
npm install --no-audit --no-fund "$scratch/$tarball"
cp -r "$pkg/__test__" "$app/__test__"

step "node --test against the installed package (CommonJS and ESM)"
ORFEAS_EXAMPLES="$root/examples" node --test __test__/*.test.cjs __test__/*.test.mjs

step "tsc --noEmit: a TypeScript program against the shipped index.d.ts"
# typescript and @types/node come from orfeas-node's locked devDependencies.
ln -s "$pkg/node_modules/@types" "$app/node_modules/@types"
"$pkg/node_modules/.bin/tsc" -p "$app/__test__/tsconfig.json"
echo "usage.ts type-checks"

echo
echo "node package tests passed in $(( $(date +%s) - started )) s"
