#!/usr/bin/env bash
# deps.sh - installs clients/js's locked dependencies (npm ci) when any is missing, under a
# lock: js_client (run.sh) and js_package (package.sh) run side by side in ctest, and
# `npm ci` starts by deleting node_modules, so two unlocked installs on a fresh clone pull
# the packages out from under each other's tests.
#   clients/js/test/deps.sh
set -euo pipefail
pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$pkg"
exec 9>"$pkg/.npm-ci.lock"
flock 9
for f in flushout @msgpack/msgpack ws typescript; do
    if [[ ! -f "node_modules/$f/package.json" ]]; then
        npm ci --no-audit --no-fund --loglevel=error
        break
    fi
done
