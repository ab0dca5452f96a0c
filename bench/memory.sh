#!/usr/bin/env bash
# memory.sh - the hub's peak memory under a budget (issue 8): a hub with the SQLite store and
# --memory-budget 128M; 1000 models, each with one writer and one subscriber, each driven past
# 1000 commands of 200-byte payloads (creates only: every command adds an object, the worst
# case for memory); then the hub's peak RSS (VmHWM, /proc/PID/status) against budget +
# 100 MB. The same with --store memory for contrast.
#
#   bench/memory.sh [--quick] [--out DIR] [--models N] [--commands N] [--batch K]
#                   [--payload B] [--budget SIZE] [--stores sqlite,memory]
#                   [--build build/release] [--server-cpu 0] [--bench-cpu 1]
#
# --commands: per model (default 1000; each model gets ceil((N+1)/K) flushes of K = --batch
# commands, default 50). --quick (about 30 s): 250 models, --budget 32M, --batch 100: a
# quarter of the models against a quarter of the budget (the 100 MB allowance stays), so
# eviction is still exercised; the issue's figure is the full run (about 2-3 minutes).
# Output: DIR/memory/*.json and logs, DIR/memory.json; then bench/summarize.py
# rewrites DIR/summary.txt with the memory target. DIR defaults to build/bench.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=$ROOT/build/bench
QUICK=0
MODELS=
COMMANDS=1000
BATCH=
PAYLOAD=200
BUDGET=
STORES=sqlite,memory
SRV_CPU=0
BENCH_CPU=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --commands) COMMANDS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --payload) PAYLOAD=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --stores) STORES=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --server-cpu) SRV_CPU=$2; shift 2 ;;
    --bench-cpu) BENCH_CPU=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "memory.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    : "${BATCH:=100}" "${MODELS:=250}" "${BUDGET:=32M}"
else
    : "${BATCH:=50}" "${MODELS:=1000}" "${BUDGET:=128M}"
fi
FLUSHES=$(((COMMANDS + BATCH) / BATCH)) # ceil((COMMANDS + 1) / BATCH): past COMMANDS
SERVERS=hub
FO_BENCH_NAME=memory.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
fo_bench_check_tools
mkdir -p "$OUT/memory"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/memory/*.json "$OUT"/memory/*.log "$OUT"/memory/*.err "$OUT"/memory/*.prom

DATA=
cleanup() { stop_srv; [ -n "$DATA" ] && rm -rf "$DATA"; return 0; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "memory.sh: $MODELS models x $FLUSHES flushes of $BATCH commands ($PAYLOAD B payloads, creates only), --memory-budget $BUDGET; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
IFS=, read -ra stores <<<"$STORES"
for store in "${stores[@]}"; do
    tag=$OUT/memory/$store
    if [ "$store" = sqlite ]; then
        DATA=$(mktemp -d /tmp/flushout-bench-memory.XXXX)
        start_srv hub "$tag.log" --store sqlite --data "$DATA" --memory-budget "$BUDGET"
    else
        start_srv hub "$tag.log" --store memory --memory-budget "$BUDGET"
    fi
    t0=$SECONDS
    bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$BENCH_CPU" "$BENCH" \
        --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$SRV_PID" --json --no-progress \
        --print-errors 20 --check-every 16 --models "$MODELS" --writers 1 --subscribers 1 \
        --commands "$BATCH" --payload "$PAYLOAD" --mix 1:0:0 --flushes "$FLUSHES" \
        --model-prefix "mem-" --warmup 0 --duration 600 >"$tag.json" 2>"$tag.err" ||
        echo "  ($store: failures or error, see $tag.err)" >&2
    scrape_metrics "$PORT" "$tag.prom"
    status=$(cat "/proc/$SRV_PID/status" 2>/dev/null || true)
    stop_srv
    [ -n "$DATA" ] && rm -rf "$DATA"
    DATA=
    python3 - "$tag" "$store" "$BUDGET" "$((SECONDS - t0))" "$status" <<'PY'
import json, re, sys
tag, store, budget, secs, status = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def kb(field):
    m = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(m.group(1)) if m else None
m = re.match(r"^(\d+)([KMG]?)", budget.upper())
budget_kb = int(m.group(1)) * {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024 * 1024}[m.group(2)]
prom = {}
try:
    for line in open(f"{tag}.prom"):
        p = line.split()
        if len(p) == 2 and p[0].startswith("flushout_"):
            prom[p[0]] = float(p[1])
except OSError:
    pass
try:
    j = json.load(open(f"{tag}.json"))
except (OSError, ValueError):
    j = {}
r = {"store": store, "peak_rss_kb": kb("VmHWM"), "rss_kb": kb("VmRSS"), "budget_kb": budget_kb,
     "limit_kb": budget_kb + 100 * 1024, "errors": j.get("errors"), "writers_done": j.get("writers_done"),
     "commands_per_sec": j.get("commands_per_sec"), "flushes_per_sec": j.get("flushes_per_sec"),
     "seconds": secs, "hot_models": prom.get("flushout_hot_models"),
     "hot_model_bytes": prom.get("flushout_hot_model_bytes"), "evictions": prom.get("flushout_evictions_total"),
     "loads": prom.get("flushout_loads_total"), "commands": prom.get("flushout_commands_total")}
json.dump(r, open(f"{tag}-result.json", "w"), indent=1)
def mb(v):
    return f"{v / 1024:,.0f} MB" if isinstance(v, (int, float)) else "n/a"
print(f"  {store}: peak RSS {mb(r['peak_rss_kb'])} (limit {mb(r['limit_kb'])}), {r['commands'] or 0:,.0f} commands "
      f"in {secs} s, {r['writers_done']} of the writers done, hot models {r['hot_models']}, evictions {r['evictions']}, "
      f"errors {r['errors']}", file=sys.stderr)
PY
done

python3 - "$OUT" "$MODELS" "$COMMANDS" "$BATCH" "$FLUSHES" "$PAYLOAD" "$BUDGET" "$QUICK" <<'PY'
import glob, json, sys, time
out, models, commands, batch, flushes, payload, budget, quick = sys.argv[1:9]
runs = []
for p in sorted(glob.glob(f"{out}/memory/*-result.json")):
    runs.append(json.load(open(p)))
json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick == "1",
           "models": int(models), "commands_per_model": int(flushes) * int(batch), "batch": int(batch),
           "payload": int(payload), "budget": budget, "runs": runs}, open(f"{out}/memory.json", "w"), indent=1)
PY
echo "memory.sh: $OUT/memory.json; the summary with every target measured so far:" >&2
python3 "$ROOT/bench/summarize.py" "$OUT"
