# browser-test-env.sh - what every browser test's run.sh needs first (clients/web, react,
# console), sourced from its package folder:
#   . "$pkg/../browser-test-env.sh"
# Node.js and npm (exit 77, ctest's SKIP_RETURN_CODE, when missing); Debian's chromium as
# CHROMIUM (default /usr/bin/chromium; missing: exit 77, or 1 in CI=true or with
# FLUSHOUT_REQUIRE_BROWSER=1); the package's locked dependencies (npm ci when
# package-lock.json is newer than what node_modules holds, so a pull that adds a package
# reinstalls); FLUSHOUT_HUB (default build/asan/hub/flushout-hub), which must exist.
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
if [[ ! node_modules/.package-lock.json -nt package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
export FLUSHOUT_HUB="${FLUSHOUT_HUB:-$PWD/../../build/asan/hub/flushout-hub}"
if [[ ! -x "$FLUSHOUT_HUB" ]]; then
    echo "run.sh: no hub at $FLUSHOUT_HUB (build it, or set FLUSHOUT_HUB)" >&2
    exit 1
fi
