#!/usr/bin/env bash
# package.sh - the README's install instructions, as a new user follows them: `npm pack`
# the client into a fresh app folder, `npm install` the tarball, then `npm install ws`
# (which must not undo it), import the package from there and talk to a real hub over
# loopback (test/smoke.mjs), and type-check every ```ts block of the installed package's
# README under `tsc --strict` against the installed types.
#   FLUSHOUT_HUB=path/to/flushout-hub clients/js/test/package.sh
# Needs the npm registry (or npm's cache) for the package's dependencies. Exit 77 (ctest's
# SKIP_RETURN_CODE) only when Node.js itself is missing.
set -euo pipefail
pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIPPED: node/npm not installed (scripts/install-deps.sh test installs them)"
    exit 77
fi
"$pkg/test/deps.sh"
export FLUSHOUT_HUB="${FLUSHOUT_HUB:-$pkg/../../build/asan/hub/flushout-hub}"
if [[ ! -x "$FLUSHOUT_HUB" ]]; then
    echo "package.sh: no hub at $FLUSHOUT_HUB (build it, or set FLUSHOUT_HUB)" >&2
    exit 1
fi
FLUSHOUT_HUB="$(cd "$(dirname "$FLUSHOUT_HUB")" && pwd)/$(basename "$FLUSHOUT_HUB")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fo-js-package.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
app="$tmp/my-app"
mkdir "$app"
cd "$app"
npmq() { npm --no-audit --no-fund --loglevel=error "$@"; }

# The README's three commands.
npmq init -y >/dev/null
npm pkg set type=module
tgz="$(npm pack "$pkg" --loglevel=error | tail -1)"
[[ -f "$tgz" ]] || { echo "package.sh: npm pack wrote no tarball ($tgz)" >&2; exit 1; }
npmq install "./$tgz"
npmq install ws

inst="node_modules/flushout-hub-client"
if [[ -L "$inst" ]]; then
    echo "package.sh: $inst is a symlink: the install is not a copy" >&2
    exit 1
fi
for f in "$inst/package.json" "$inst/src/index.js" "$inst/index.d.ts" "$inst/README.md" \
         node_modules/flushout/package.json node_modules/@msgpack/msgpack/package.json \
         node_modules/ws/package.json; do
    [[ -f "$f" ]] || { echo "package.sh: $f missing after npm install ws" >&2; exit 1; }
done
# Only what the package means to ship.
if [[ -e "$inst/test" || -e "$inst/node_modules" ]]; then
    echo "package.sh: the tarball carries test/ or node_modules/" >&2
    exit 1
fi
grep -q "\"flushout-hub-client\": \"file:$tgz\"" package.json || {
    echo "package.sh: package.json does not record the tarball:" >&2; cat package.json >&2; exit 1; }

# Import it from the app folder and use it against a real hub.
cp "$pkg/test/smoke.mjs" .
node smoke.mjs "$pkg/test/hub.js"

# The README's TypeScript, against the installed types, as an app would compile it.
mkdir snippets
node "$pkg/test/snippets.mjs" "$inst/README.md" snippets
cp "$pkg/test/snippets-prelude.d.ts" snippets/prelude.d.ts
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "lib": ["es2022", "dom"],
    "types": []
  },
  "include": ["snippets/*.ts"]
}
JSON
"$pkg/node_modules/.bin/tsc" -p tsconfig.json
echo "package.sh: packed $tgz, installed it (then ws), imported it, talked to the hub; $(ls snippets/*.ts | grep -vc prelude) README snippet(s) compile under tsc --strict"
