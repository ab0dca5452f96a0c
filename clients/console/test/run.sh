#!/usr/bin/env bash
# run.sh - builds the console (npm run build) and runs its tests in headless Chromium
# (Debian's `chromium`, driven by playwright-core) against real hubs.
#   FLUSHOUT_HUB=path/to/flushout-hub clients/console/test/run.sh
# Env: CHROMIUM (default /usr/bin/chromium), FLUSHOUT_ARTIFACTS (screenshots; default
# build/console-e2e). Installs the locked dependencies (npm ci) when node_modules is
# missing. Exit 77 (ctest's SKIP_RETURN_CODE) when Node.js is missing, or Chromium is
# missing outside CI (CI=true: a failure).
set -euo pipefail
pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$pkg"

# Node, Chromium, npm ci, FLUSHOUT_HUB: the shared checks.
. "$pkg/../browser-test-env.sh"
node build.mjs
exec node --test --test-concurrency=1 test/*.test.js
