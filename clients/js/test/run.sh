#!/usr/bin/env bash
# run.sh - the JavaScript client's tests (Node's test runner) against a real hub.
#   FLUSHOUT_HUB=path/to/flushout-hub clients/js/test/run.sh
# Installs the locked dependencies when one is missing (test/deps.sh: npm ci under a lock).
# Exit 77 (ctest's SKIP_RETURN_CODE) only when Node.js itself is missing; everything else
# fails loudly.
set -euo pipefail
pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$pkg"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIPPED: node/npm not installed (scripts/install-deps.sh test installs them)"
    exit 77
fi
"$pkg/test/deps.sh"
export FLUSHOUT_HUB="${FLUSHOUT_HUB:-$pkg/../../build/asan/hub/flushout-hub}"
if [[ ! -x "$FLUSHOUT_HUB" ]]; then
    echo "run.sh: no hub at $FLUSHOUT_HUB (build it, or set FLUSHOUT_HUB)" >&2
    exit 1
fi
exec node --test test/*.test.js
