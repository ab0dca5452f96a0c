#!/usr/bin/env bash
# longrun.sh - a long run compressed into minutes (issue 11 item 6): a hub with the SQLite
# store takes about a million commands over hundreds of models (one writer per model, a
# mix of creates, updates and deletes), while the data directory (flushout.db, its WAL) and
# the hub's RSS are sampled every 2 s. Retention (--history), snapshots (--snapshot-every)
# and SQLite's checkpoints should keep the directory bounded: once every model is past its
# history window its size should level off, not grow with the commands.
#
#   bench/longrun.sh [--quick] [--out DIR] [--models N] [--commands N] [--batch K]
#                    [--payload B] [--history N] [--build build/release]
#                    [--server-cpu 0] [--bench-cpu 1]
#
# --commands: the total (default 1000000), spread over --models (default 300) in flushes of
# --batch (default 10) commands. --quick: 100 models, 300000 commands (3000 per model, three
# times the default history: retention is reached). Output: DIR/longrun/samples.csv (seconds, db bytes,
# WAL bytes, directory bytes, hub RSS KiB, commands so far), the hub's log, the generator's
# JSON, and DIR/longrun.json with the growth per quarter of the run. DIR: build/bench.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=$ROOT/build/bench
MODELS=300
COMMANDS=1000000
BATCH=10
PAYLOAD=100
HISTORY=1000
SRV_CPU=0
BENCH_CPU=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) MODELS=100; COMMANDS=300000; shift ;;
    --out) OUT=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --commands) COMMANDS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --payload) PAYLOAD=$2; shift 2 ;;
    --history) HISTORY=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --server-cpu) SRV_CPU=$2; shift 2 ;;
    --bench-cpu) BENCH_CPU=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "longrun.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
FLUSHES=$(((COMMANDS + MODELS * BATCH - 1) / (MODELS * BATCH))) # per model
SERVERS=hub
FO_BENCH_NAME=longrun.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
fo_bench_check_tools
mkdir -p "$OUT/longrun"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/longrun/*

DATA=
SAMPLER=
cleanup() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
    stop_srv
    [ -n "$DATA" ] && rm -rf "$DATA"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DATA=$(mktemp -d /tmp/flushout-bench-longrun.XXXX)
echo "longrun.sh: $MODELS models x $FLUSHES flushes of $BATCH commands (mix 2:6:2, $PAYLOAD B payloads), --history $HISTORY, $BUILD; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
start_srv hub "$OUT/longrun/hub.log" --store sqlite --data "$DATA" --history "$HISTORY"

# A counter of the hub's /metrics (0 when it does not answer), without a process per call.
metric() {
    local v
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" 2>/dev/null || { echo 0; return; }
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    v=$(timeout 5 awk -v n="$1" '$1 == n {print int($2); exit}' <&3)
    exec 3<&-
    echo "${v:-0}"
}

# Samples: seconds, flushout.db bytes, WAL bytes, directory bytes (du), hub RSS KiB, commands
# (the hub's flushout_commands_total).
sample() {
    local t0=$SECONDS db wal dir rss cmds
    echo "seconds,db_bytes,wal_bytes,dir_bytes,hub_rss_kb,commands" >"$OUT/longrun/samples.csv"
    while kill -0 "$SRV_PID" 2>/dev/null; do
        cmds=$(metric flushout_commands_total)
        db=$(stat -c %s "$DATA/flushout.db" 2>/dev/null || echo 0)
        wal=$(stat -c %s "$DATA/flushout.db-wal" 2>/dev/null || echo 0)
        dir=$(du -sb "$DATA" 2>/dev/null | cut -f1)
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$SRV_PID/status" 2>/dev/null || echo 0)
        echo "$((SECONDS - t0)),$db,$wal,${dir:-0},${rss:-0},$cmds" >>"$OUT/longrun/samples.csv"
        sleep 2
    done
}
sample &
SAMPLER=$!

t0=$SECONDS
bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$BENCH_CPU" "$BENCH" \
    --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$SRV_PID" --json --no-progress \
    --print-errors 20 --check-every 16 --models "$MODELS" --writers 1 --subscribers 0 \
    --commands "$BATCH" --payload "$PAYLOAD" --mix 2:6:2 --flushes "$FLUSHES" \
    --model-prefix "long-" --warmup 0 --duration 3600 >"$OUT/longrun/bench.json" \
    2>"$OUT/longrun/bench.err" || echo "longrun.sh: failures or error, see $OUT/longrun/bench.err" >&2
secs=$((SECONDS - t0))
sleep 4 # one more sample at rest
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=
stop_srv
final_dir=$(du -sb "$DATA" | cut -f1)

python3 - "$OUT" "$MODELS" "$FLUSHES" "$BATCH" "$PAYLOAD" "$HISTORY" "$secs" "$final_dir" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import csv, json, sys, time
out, models, flushes, batch, payload, history, secs, final_dir, load = sys.argv[1:10]
rows = [r for r in csv.DictReader(open(f"{out}/longrun/samples.csv"))]
try:
    j = json.load(open(f"{out}/longrun/bench.json"))
except (OSError, ValueError):
    j = {}
total = int(models) * int(flushes) * int(batch)
def at(frac):
    """The first sample with at least frac of the commands done."""
    for r in rows:
        if int(r["commands"]) >= frac * total:
            return {k: int(v) for k, v in r.items()}
    return None
quarters = {f"{int(q * 100)}%": at(q) for q in (0.25, 0.5, 0.75, 1.0)}
peak = max((int(r["dir_bytes"]) for r in rows), default=0)
res = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_average": load,
       "models": int(models), "commands": total, "batch": int(batch), "payload": int(payload),
       "history": int(history), "seconds": int(secs), "errors": j.get("errors"),
       "commands_per_sec": j.get("commands_per_sec"), "dir_bytes_peak": peak,
       "dir_bytes_after_stop": int(final_dir), "quarters": quarters}
json.dump(res, open(f"{out}/longrun.json", "w"), indent=1)
mb = lambda b: f"{b / 1e6:.1f} MB"
print(f"longrun.sh: {total:,} commands over {models} models in {secs} s "
      f"({j.get('commands_per_sec', 0) or 0:,.0f}/s), errors {j.get('errors')}; load average {load}")
for k, r in quarters.items():
    if r:
        print(f"  at {k:>4} ({r['commands']:>9,} commands, {r['seconds']:>4} s): dir {mb(r['dir_bytes'])} "
              f"(db {mb(r['db_bytes'])}, WAL {mb(r['wal_bytes'])}), hub RSS {r['hub_rss_kb'] / 1024:.0f} MB")
print(f"  peak {mb(peak)}; after a clean stop {mb(int(final_dir))}; samples in {out}/longrun/samples.csv")
PY
