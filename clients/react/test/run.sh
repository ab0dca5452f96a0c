#!/usr/bin/env bash
# run.sh - useFlushout's tests in headless Chromium (Debian's `chromium`, driven by
# playwright-core) against a real hub.
#   FLUSHOUT_HUB=path/to/flushout-hub clients/react/test/run.sh
# Env: CHROMIUM (default /usr/bin/chromium). Exit 77 (ctest's SKIP_RETURN_CODE) when Node.js is missing, or
# Chromium is missing outside CI; in CI (CI=true) a missing Chromium is a failure.
set -euo pipefail
pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$pkg"

# Node, Chromium, npm ci, FLUSHOUT_HUB: the shared checks.
. "$pkg/../browser-test-env.sh"
exec node --test test/*.test.js
