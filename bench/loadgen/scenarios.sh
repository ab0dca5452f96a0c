#!/usr/bin/env bash
# scenarios.sh - run flushout-bench against a fresh flushout-hub per run, hub pinned to one
# core and the generator to another, and print the median of N runs per scenario.
#
#   bench/loadgen/scenarios.sh [--build build/release] [--runs 3] [--duration 20]
#                              [--warmup 2] [--only a,b,c,d,e,e2,f,f0,g] [--out DIR]
#                              [--hub-cpu 0] [--bench-cpu 1] [--bench-args "--check-every 16"]
#
# Scenarios (issue 5):
#   a  100 connections, 10 models, K=1, memory store
#   b  the same with the sqlite store (WAL, synchronous=FULL) in a fresh dir under /tmp
#   c  100 connections, 10 models, K=10
#   d  1000 connections over 1000 models (no fan-out)
#   e  fan-out: 1 writer + 1000 subscribers on one model (watch frames in/s)
#   e2 the same, open loop at 800 flushes/s with --pipeline: several pushes per subscriber
#      are pending at once, so the hub can pack them into one write
#   f  10k idle connections (upgrade + hello): hub RSS per connection
#   f0 the same without hello (the bare WebSocket)
#   g  10k idle subscribed connections (100 models x 100 subscribers): hub RSS per connection
# Every run's JSON is kept in DIR (default /tmp/flushout-scenarios.XXXX) with the hub's log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/release
RUNS=3
DURATION=20
WARMUP=2
ONLY=a,b,c,d,e,e2,f,f0,g
OUT=
HUB_CPU=0
BENCH_CPU=1
# Read most acks and pushes with the fast reader (1 in 16 fully decoded and compared), so
# that the generator's core is not the limit (with K=10 it receives ~250 MB/s).
BENCH_ARGS="--check-every 16"
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --hub-cpu) HUB_CPU=$2; shift 2 ;;
    --bench-cpu) BENCH_CPU=$2; shift 2 ;;
    --bench-args) BENCH_ARGS=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "scenarios.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
HUB=$BUILD/hub/flushout-hub
BENCH=$BUILD/bench/flushout-bench
for b in "$HUB" "$BENCH"; do
    [ -x "$b" ] || { echo "scenarios.sh: $b not built (cmake --preset release && cmake --build build/release)" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "scenarios.sh: needs jq" >&2; exit 2; }
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/flushout-scenarios.XXXX)
mkdir -p "$OUT"

HUB_PID=
stop_hub() {
    if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -TERM "$HUB_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$HUB_PID" 2>/dev/null && { echo "hub $HUB_PID ignored SIGTERM; killing" >&2; kill -KILL "$HUB_PID"; }
        wait "$HUB_PID" 2>/dev/null || true
    fi
    HUB_PID=
}
trap stop_hub EXIT

# start_hub LOG ARGS... : sets HUB_PID and PORT
start_hub() {
    local log=$1
    shift
    bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$HUB_CPU" "$HUB" \
        --listen 127.0.0.1:0 --conn-rate 0 --flush-rate 0 --max-connections 19000 "$@" 2>"$log" &
    HUB_PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" 2>/dev/null | head -1 | cut -d: -f2 || true)
        [ -n "$PORT" ] && return 0
        kill -0 "$HUB_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "scenarios.sh: hub did not start; log:" >&2
    cat "$log" >&2
    exit 1
}

# run NAME RUN STORE BENCH-ARGS...
run_one() {
    local name=$1 run=$2 store=$3
    shift 3
    local tag=$OUT/$name-$run data=
    if [ "$store" = sqlite ]; then
        data=$(mktemp -d /tmp/flushout-sqlite.XXXX)
        start_hub "$tag.hub.log" --store sqlite --data "$data"
    else
        start_hub "$tag.hub.log" --store memory
    fi
    if ! taskset -c "$BENCH_CPU" "$BENCH" --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$HUB_PID" \
        --json --no-progress --print-errors 20 $BENCH_ARGS "$@" >"$tag.json" 2>"$tag.err"; then
        echo "  ($name run $run: errors, see $tag.err)" >&2
    fi
    kill -0 "$HUB_PID" 2>/dev/null || echo "  ($name run $run: the hub died; see $tag.hub.log)" >&2
    stop_hub
    [ -n "$data" ] && rm -rf "$data"
    return 0
}

median() { # FIELD FILES...
    local f=$1
    shift
    jq -r ".$f // empty" "$@" 2>/dev/null | sort -g |
        awk '{a[NR]=$1} END {if (NR) printf "%.5g\n", a[int((NR+1)/2)]; else print "-"}'
}

scenario() { # NAME STORE DESCRIPTION BENCH-ARGS...
    local name=$1 store=$2 desc=$3
    shift 3
    case ",$ONLY," in *",$name,"*) ;; *) return 0 ;; esac
    echo "== $name: $desc" >&2
    for r in $(seq "$RUNS"); do run_one "$name" "$r" "$store" "$@"; done
    local files=("$OUT/$name"-*.json)
    printf '%-2s %-44s %9s %9s %10s %10s %8s %8s %6s %6s %8s %8s\n' "$name" "$desc" \
        "$(median flushes_per_sec "${files[@]}")" "$(median commands_per_sec "${files[@]}")" \
        "$(median pushes_per_sec "${files[@]}")" "$(median frames_in_per_sec "${files[@]}")" \
        "$(median ack_p50_ms "${files[@]}")" "$(median ack_p99_ms "${files[@]}")" \
        "$(median errors "${files[@]}")" "$(median hub_cpu_pct "${files[@]}")" \
        "$(median hub_rss_kb "${files[@]}")" "$(median hub_rss_per_conn_bytes "${files[@]}")"
}

T="--warmup $WARMUP --duration $DURATION"
echo "results in $OUT; $RUNS run(s) per scenario, medians; bench args: $BENCH_ARGS; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '%-2s %-44s %9s %9s %10s %10s %8s %8s %6s %6s %8s %8s\n' "" "scenario" "flushes/s" "cmds/s" \
    "pushes/s" "frames_in/s" "ack_p50" "ack_p99" "errors" "hubCPU" "hubRSSkB" "B/conn"
scenario a memory "100 conns, 10 models, K=1, memory" $T --connections 100 --models 10 --commands 1
scenario b sqlite "100 conns, 10 models, K=1, sqlite" $T --connections 100 --models 10 --commands 1
scenario c memory "100 conns, 10 models, K=10, memory" $T --connections 100 --models 10 --commands 10
scenario d memory "1000 conns, 1000 models, K=1, memory" $T --connections 1000 --models 1000 --commands 1
scenario e memory "fan-out: 1 writer + 1000 subs, 1 model" $T --models 1 --writers 1 --subscribers 1000
scenario e2 memory "fan-out as e, open loop 800/s pipelined" $T --models 1 --writers 1 --subscribers 1000 --rate 800 --pipeline
scenario f memory "10k idle connections (hello only)" --idle --connections 10000 --duration 5
scenario f0 memory "10k idle connections (no hello)" --idle --no-hello --connections 10000 --duration 5
scenario g memory "10k idle subscribers (100 models)" --connections 10000 --models 100 --writers 0 --warmup 0 --duration 5
