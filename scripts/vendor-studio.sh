#!/usr/bin/env bash
# Re-creates orfeas-server/static/vendor/ (the three.js files the Batch Studio page loads) from
# the npm registry, so the page needs no CDN and the copies can be checked against upstream.
# Usage: scripts/vendor-studio.sh            (pinned version below)
#        THREE_VERSION=0.185.0 scripts/vendor-studio.sh
# The addons are copied with every file they import relatively (found by following the imports),
# keeping upstream's examples/jsm layout under vendor/addons/ so their relative imports resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
version=${THREE_VERSION:-0.185.0} # last release that still ships build/*.min.js
vendor=$root/orfeas-server/static/vendor
addons=(loaders/GLTFLoader.js loaders/STLLoader.js controls/OrbitControls.js)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "three@$version" >/dev/null && tar xzf "three-$version.tgz")
pkg=$work/package

rm -rf "$vendor"
mkdir -p "$vendor/addons"
cp "$pkg/build/three.module.min.js" "$pkg/build/three.core.min.js" "$pkg/LICENSE" "$vendor/"

# Copy each addon and, transitively, every relative import it names.
queue=("${addons[@]}")
declare -A seen=()
while [ ${#queue[@]} -gt 0 ]; do
  rel=${queue[0]}
  queue=("${queue[@]:1}")
  [ -n "${seen[$rel]:-}" ] && continue
  seen[$rel]=1
  src=$pkg/examples/jsm/$rel
  [ -f "$src" ] || { echo "vendor-studio: $rel is imported but missing from three@$version" >&2; exit 1; }
  mkdir -p "$vendor/addons/$(dirname "$rel")"
  cp "$src" "$vendor/addons/$rel"
  while IFS= read -r dep; do
    resolved=$(python3 -c 'import os,sys; print(os.path.normpath(os.path.join(os.path.dirname(sys.argv[1]), sys.argv[2])))' "$rel" "$dep")
    queue+=("$resolved")
  done < <(grep -oE "from '\.{1,2}/[^']+'" "$src" | sed -E "s/^from '(.*)'$/\1/")
done

# three.module.min.js imports ./three.core.min.js; fail loudly if upstream changes that.
grep -q "three.core.min.js" "$vendor/three.module.min.js" || { echo "vendor-studio: three.module.min.js no longer imports three.core.min.js" >&2; exit 1; }

cat > "$vendor/README.md" <<MD
# Vendored three.js $version

Copied unmodified from the npm package \`three@$version\` (MIT, see LICENSE) by
\`scripts/vendor-studio.sh\`; do not edit by hand. \`addons/\` mirrors the package's
\`examples/jsm/\` for the files the Batch Studio page imports and their dependencies.
The page maps \`three\` and \`three/addons/\` to these files with an import map.
MD
(cd "$vendor" && find . -type f | sort | sed 's|^\./|  |')
echo "vendor-studio: three@$version copied into ${vendor#$root/}"
