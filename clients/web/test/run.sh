#!/usr/bin/env bash
# run.sh - builds the demo (npm run build) and runs its end-to-end test in headless
# Chromium (Debian's `chromium`, driven by playwright-core) against a real hub.
#   FLUSHOUT_HUB=path/to/flushout-hub clients/web/test/run.sh
# Env: CHROMIUM (default /usr/bin/chromium), FLUSHOUT_ARTIFACTS (screenshots; default
# build/web-e2e).
# Exit 77 (ctest's SKIP_RETURN_CODE) when Node.js is missing, or Chromium is missing
# outside CI; in CI (CI=true) a missing Chromium is a failure: the project's set-up
# (scripts/install-deps.sh test) installs it.
set -euo pipefail
pkg="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$pkg"

# Node, Chromium, npm ci, FLUSHOUT_HUB: the shared checks.
. "$pkg/../browser-test-env.sh"
node build.mjs
# One file at a time: the e2e test times a browser ("within a second").
exec node --test --test-concurrency=1 test/*.test.js
