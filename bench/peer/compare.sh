#!/usr/bin/env bash
# compare.sh - flushout-bench against the Node peer and against flushout-hub, the server
# pinned to one core and the generator to the other, one fresh server per run; prints one
# JSON line per run and a ratio table.
#
#   bench/peer/compare.sh [--duration 20] [--runs 1] [--servers peer,hub] [--peer-args "--cork none"]
#                         [--scenarios "100:10 1000:1000"] [--out DIR]
# A scenario is CONNECTIONS:MODELS (K=1, closed loop, every connection writes).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/release
DURATION=20
RUNS=1
SERVERS=peer,hub
PEER_ARGS=
SCENARIOS="100:10 1000:1000"
OUT=
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --peer-args) PEER_ARGS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
BENCH=$BUILD/bench/flushout-bench
HUB=$BUILD/hub/flushout-hub
[ -x "$BENCH" ] || { echo "compare.sh: $BENCH not built" >&2; exit 2; }
[ -d "$ROOT/bench/peer/node_modules/ws" ] || (cd "$ROOT/bench/peer" && npm ci --no-audit --no-fund >&2)
command -v jq >/dev/null || { echo "compare.sh: needs jq" >&2; exit 2; }
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/flushout-peer-compare.XXXX)
mkdir -p "$OUT"

SRV_PID=
stop_srv() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    SRV_PID=
}
trap stop_srv EXIT

start_srv() { # KIND LOG
    local kind=$1 log=$2
    if [ "$kind" = peer ]; then
        # shellcheck disable=SC2086
        bash -c 'ulimit -n 20000; exec taskset -c 0 node "$@"' _ "$ROOT/bench/peer/server.mjs" \
            --listen 127.0.0.1:0 $PEER_ARGS 2>"$log" &
    else
        bash -c 'ulimit -n 20000; exec taskset -c 0 "$@"' _ "$HUB" --listen 127.0.0.1:0 \
            --store memory 2>"$log" &
    fi
    SRV_PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" 2>/dev/null | head -1 | cut -d: -f2 || true)
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "compare.sh: $kind did not start:" >&2
    cat "$log" >&2
    exit 1
}

declare -A FPS
for scn in $SCENARIOS; do
    conns=${scn%%:*} models=${scn##*:}
    for kind in ${SERVERS//,/ }; do
        for run in $(seq "$RUNS"); do
            tag=$OUT/$kind-$conns-$models-$run
            start_srv "$kind" "$tag.log"
            bash -c 'ulimit -n 20000; exec taskset -c 1 "$@"' _ "$BENCH" \
                --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$SRV_PID" --no-progress \
                --connections "$conns" --models "$models" --commands 1 --duration "$DURATION" \
                --json >"$tag.json" 2>"$tag.err" || true
            stop_srv
            jq -c --arg k "$kind" --arg s "$scn" '{server: $k, scenario: $s, flushes_per_sec,
                commands_per_sec, pushes_per_sec, ack_p50_ms, ack_p99_ms, errors,
                hub_cpu_pct, hub_rss_kb, bench_cpu_pct, socket_writes_per_sec}' "$tag.json"
            FPS[$kind-$scn]="${FPS[$kind-$scn]:-} $(jq .flushes_per_sec "$tag.json")"
        done
    done
done
echo
printf '%-12s %14s %14s %8s\n' scenario "peer flushes/s" "hub flushes/s" ratio
for scn in $SCENARIOS; do
    med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }
    p=$(echo "${FPS[peer-$scn]:-}" | med) h=$(echo "${FPS[hub-$scn]:-}" | med)
    printf '%-12s %14.0f %14.0f %8s\n' "$scn" "$p" "$h" \
        "$(awk -v p="$p" -v h="$h" 'BEGIN { if (p > 0) printf "%.1fx", h / p; else print "-" }')"
done
echo "JSON and logs in $OUT"
