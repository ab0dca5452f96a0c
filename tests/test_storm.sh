#!/bin/sh
# A reconnect storm against the real binary (issue 11 item 6; the full-size run is
# bench/storm.sh): 2000 connections on 20 models, one writer and 99 subscribers each; two
# seconds into the window every subscriber drops its connection and reconnects at once,
# subscribing with `from`. flushout-bench checks that every diff starts where its subscriber
# stopped and that pushes go on gap-free. Passes when all are back with no failure and no
# error, the writers were acked throughout, and the hub's memory stayed bounded.
#   tests/test_storm.sh HUB_BINARY BENCH_BINARY
set -u
HUB=$1
BENCH=$2
CONNS=${FO_STORM_CONNS:-2000}
MODELS=20
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fo-storm.XXXXXX")
HUB_PID=

cleanup() {
    [ -n "$HUB_PID" ] && kill -9 "$HUB_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

ulimit -n 8192 2>/dev/null || { echo "SKIPPED: cannot raise the open-files limit to 8192"; exit 77; }
# As if from many addresses: the per-address connection rate is off; flushes as fast as
# the writers send them.
"$HUB" --listen 127.0.0.1:0 --store memory --conn-rate 0 --flush-rate 0 --bytes-rate 0 \
    --overload-lag-ms 0 --max-connections 5000 2>"$TMP/hub.log" &
HUB_PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$TMP/hub.log" | head -1 | cut -d: -f2)
    [ -n "$PORT" ] && break
    kill -0 "$HUB_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    echo "FAIL: the hub did not start"; cat "$TMP/hub.log"; exit 1
fi

"$BENCH" --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$HUB_PID" --json --no-progress \
    --print-errors 20 --connections "$CONNS" --models "$MODELS" --writers 1 \
    --subscribers $((CONNS / MODELS - 1)) --commands 1 --warmup 1 --duration 6 --storm-at 2 \
    --check-every 16 >"$TMP/bench.json" 2>"$TMP/bench.err"
rc=$?
kill -TERM "$HUB_PID"
wait "$HUB_PID"
hub_rc=$?
HUB_PID=

python3 - "$TMP/bench.json" "$rc" "$hub_rc" "$CONNS" "$MODELS" <<'PY'
import json, sys
path, rc, hub_rc, conns, models = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fails = []
try:
    j = json.load(open(path))
except (OSError, ValueError) as e:
    print(f"FAIL: no JSON from flushout-bench (exit {rc}): {e}"); sys.exit(1)
subs = conns - models
print(f"storm: {j.get('storm_clients')} subscribers dropped, {j.get('storm_back')} back in "
      f"{j.get('storm_all_back_ms')} ms, {j.get('storm_failed')} failed, {j.get('storm_snaps')} "
      f"snapshots; errors {j.get('errors')}; writers' acks during it {j.get('storm_acks')}, p99 "
      f"{j.get('storm_ack_p99_ms')} ms; hub RSS peak {j.get('hub_rss_peak_kb', 0) // 1024} MB")
if rc != 0: fails.append(f"flushout-bench exited {rc}")
if hub_rc != 0: fails.append(f"the hub exited {hub_rc} on SIGTERM")
if j.get("storm_clients") != subs: fails.append(f"{j.get('storm_clients')} subscribers dropped, not {subs}")
if j.get("storm_back") != subs: fails.append(f"{j.get('storm_back')} of {subs} back")
if j.get("storm_failed") != 0: fails.append(f"{j.get('storm_failed')} failed to come back cleanly")
if j.get("errors") != 0: fails.append(f"errors: {j.get('errors_by_kind')}")
if not j.get("storm_acks"): fails.append("no writer was acked during the storm")
# Bounds for an ASan build on two busy cores (a release build: bench/storm.sh, README).
if (j.get("storm_all_back_ms") or 1e9) > 30000: fails.append("not all back within 30 s")
if (j.get("storm_ack_p99_ms") or 1e9) > 15000: fails.append("writers stalled past 15 s")
if j.get("hub_rss_peak_kb", 0) > 1024 * 1024: fails.append("hub RSS past 1 GB")
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PY
