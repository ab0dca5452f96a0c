#!/usr/bin/env bash
# storm.sh - a reconnect storm (issue 11 item 6): 10,000 clients on 100 models (one writer
# and 99 subscribers each) against a hub; 3 s into the window every subscriber drops its
# connection and reconnects at once, subscribing with `from` (flushout-bench --storm-at).
# Reported: how long until every subscriber was back, failures (none expected: every
# diff must start where the subscriber stopped, every later push follow gap-free), the
# writers' ack latency during the storm against the rest of the window, the hub's RSS.
#
#   bench/storm.sh [--connections N] [--models M] [--storm-at S] [--duration S]
#                  [--store memory|sqlite] [--out DIR] [--build build/release]
#                  [--server-cpu 0] [--bench-cpu 1]
#
# Output: DIR/storm/bench.json (the generator's JSON, storm_* fields), the hub's log, and
# a summary on stdout. DIR: build/bench.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=$ROOT/build/bench
CONNS=10000
MODELS=100
STORM_AT=3
DURATION=10
STORE=memory
SRV_CPU=0
BENCH_CPU=1
while [ $# -gt 0 ]; do
    case $1 in
    --connections) CONNS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --storm-at) STORM_AT=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --store) STORE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --server-cpu) SRV_CPU=$2; shift 2 ;;
    --bench-cpu) BENCH_CPU=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "storm.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
SERVERS=hub
FO_BENCH_NAME=storm.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
fo_bench_check_tools
mkdir -p "$OUT/storm"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/storm/*

DATA=
cleanup() { stop_srv; [ -n "$DATA" ] && rm -rf "$DATA"; return 0; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "storm.sh: $CONNS connections on $MODELS models (1 writer each), storm at ${STORM_AT}s of ${DURATION}s, store $STORE, $BUILD; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ "$STORE" = sqlite ]; then
    DATA=$(mktemp -d /tmp/flushout-bench-storm.XXXX)
    start_srv hub "$OUT/storm/hub.log" --store sqlite --data "$DATA"
else
    start_srv hub "$OUT/storm/hub.log" --store memory
fi
SUBS=$((CONNS / MODELS - 1))
bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$BENCH_CPU" "$BENCH" \
    --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$SRV_PID" --json --print-errors 20 \
    --connections "$CONNS" --models "$MODELS" --writers 1 --subscribers "$SUBS" \
    --commands 1 --warmup 1 --duration "$DURATION" --storm-at "$STORM_AT" \
    --check-every 16 >"$OUT/storm/bench.json" 2>"$OUT/storm/bench.err" ||
    echo "storm.sh: failures or error, see $OUT/storm/bench.err" >&2
stop_srv

python3 - "$OUT" "$STORM_AT" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
out, storm_at, load = sys.argv[1], float(sys.argv[2]), sys.argv[3]
try:
    j = json.load(open(f"{out}/storm/bench.json"))
except (OSError, ValueError):
    print("storm.sh: no JSON from flushout-bench"); sys.exit(1)
p99 = j.get("ack_p99_by_sec_ms", [])
before = p99[: int(storm_at)]
print(f"storm.sh: {j.get('storm_clients')} subscribers dropped; {j.get('storm_back')} back "
      f"(snaps {j.get('storm_snaps')}), {j.get('storm_failed')} failed, all back in "
      f"{j.get('storm_all_back_ms')} ms; errors {j.get('errors')} {j.get('errors_by_kind')}")
print(f"  writers' acks during the storm: {j.get('storm_acks')}, p50 {j.get('storm_ack_p50_ms')} ms, "
      f"p99 {j.get('storm_ack_p99_ms')} ms, max {j.get('storm_ack_max_ms')} ms; "
      f"p99 per second before it: {', '.join(f'{v:.1f}' for v in before)} ms")
print(f"  hub RSS {j.get('hub_rss_kb', 0) / 1024:.0f} MB at the end, peak {j.get('hub_rss_peak_kb', 0) / 1024:.0f} MB; "
      f"load average {load}")
PY
