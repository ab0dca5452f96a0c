#!/usr/bin/env bash
# run.sh - builds the release preset if needed, installs the reference (npm ci) if needed,
# runs fo-microbench (full), writes build/bench-micro.json and prints the table.
#
# Usage: bench/micro/run.sh [fo-microbench options, e.g. --items 100000 or --no-node]
# Nothing is pinned. For steadier numbers on a quiet machine, pin to one core:
#   taskset -c 1 bench/micro/run.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if [ ! -f build/release/CMakeCache.txt ]; then
    cmake --preset release -DFO_BUILD_TESTS=OFF >/dev/null
fi
cmake --build build/release -j"$(nproc)" --target fo-microbench >/dev/null

if command -v npm >/dev/null 2>&1 && [ ! -f bench/micro/node_modules/flushout/package.json ]; then
    (cd bench/micro && npm ci --no-audit --no-fund --loglevel=error)
fi

build/release/bench/fo-microbench --json-out build/bench-micro.json "$@"
echo "results: build/bench-micro.json"
