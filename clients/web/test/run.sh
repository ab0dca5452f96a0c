#!/usr/bin/env bash
# run.sh - builds the demo (npm run build) and runs its end-to-end test in headless
# Chromium (Debian's `chromium`, driven by playwright-core) against a real hub.
#   FLUSHOUT_HUB=path/to/flushout-hub clients/web/test/run.sh
# Env: CHROMIUM (default /usr/bin/chromium), FLUSHOUT_ARTIFACTS (screenshots; default
# build/web-e2e). Installs the locked dependencies (npm ci) when node_modules is missing.
# Exit 77 (ctest's SKIP_RETURN_CODE) when Node.js is missing, or Chromium is missing
# outside CI; in CI (CI=true) a missing Chromium is a failure: the project's set-up
# (scripts/install-deps.sh test) installs it.
set -euo pipefail
pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$pkg"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIPPED: node/npm not installed (scripts/install-deps.sh test installs them)"
    exit 77
fi
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
    if [[ "${CI:-}" == true || "${FLUSHOUT_REQUIRE_BROWSER:-}" == 1 ]]; then
        echo "run.sh: $CHROMIUM not found; install Debian's chromium (scripts/install-deps.sh test)" >&2
        exit 1
    fi
    echo "SKIPPED: $CHROMIUM not found (apt-get install chromium)"
    exit 77
fi
if [[ ! -f node_modules/esbuild/package.json || ! -f node_modules/playwright-core/package.json || ! -f node_modules/flushout/package.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
export FLUSHOUT_HUB="${FLUSHOUT_HUB:-$pkg/../../build/asan/hub/flushout-hub}"
if [[ ! -x "$FLUSHOUT_HUB" ]]; then
    echo "run.sh: no hub at $FLUSHOUT_HUB (build it, or set FLUSHOUT_HUB)" >&2
    exit 1
fi
node build.mjs
# One file at a time: the e2e test times a browser ("within a second").
exec node --test --test-concurrency=1 test/*.test.js
