#!/usr/bin/env bash
# run.sh - the issue-5 scenarios against flushout-hub AND the Node peer (bench/peer) in the
# same run: server pinned to one core, flushout-bench to the other, one fresh server per run,
# medians of N runs; prints a ratio table and writes JSON to DIR.
#
#   bench/run.sh [--quick] [--out DIR] [--runs N] [--duration S] [--warmup S]
#                [--only a,b,c,d,d2,e,f,g] [--servers hub,peer] [--cold-models N]
#                [--build build/release] [--server-cpu 0] [--bench-cpu 1]
#
#   a  100 connections, 10 models, K=1 (closed loop, every connection writes)
#   b  the same with K=10
#   c  1000 connections over 1000 models, K=1 (no fan-out)
#   d  fan-out: 1 writer + 1000 subscribers on one model (closed loop: one flush in flight,
#      so latency-bound)
#   d2 the same, open loop at 800 flushes/s with --pipeline (several pushes pending per
#      subscriber at once): the fan-out throughput, pushes (frames out) per second
#   e  10k idle connections (upgrade + hello): server RSS per connection
#   f  hub only: memory store vs SQLite store (WAL, synchronous=FULL: fsync per commit),
#      shape of a; ratio sqlite/memory
#   g  hub only, cold start: N models (10k; --quick 1k) get 5 commands per flush against a
#      sqlite hub; the same N connections then connect again to that (warm) hub, then to a
#      fresh hub on the same data dir (cold: every model is on disk, none in memory). Time
#      = connect + hello + sub (loads the model) of all N, plus the slowest ack of the
#      first flush on each model; cold - warm is the loading cost.
#
# --quick: 1 run per scenario, 2 s windows, 1k cold models (about 1 minute). Default: 3 runs,
# 8 s windows (about 10 minutes). Output: DIR/runs/*.json (one flushout-bench JSON per run,
# server logs beside), DIR/results.json (medians and ratios), DIR/summary.txt (the table).
# DIR defaults to build/bench. Needs python3 (JSON) and taskset; node for the peer.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=$ROOT/build/bench
QUICK=0
RUNS=
DURATION=
WARMUP=
ONLY=a,b,c,d,d2,e,f,g
SERVERS=hub,peer
COLD_N=
SRV_CPU=0
BENCH_CPU=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --cold-models) COLD_N=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --server-cpu) SRV_CPU=$2; shift 2 ;;
    --bench-cpu) BENCH_CPU=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    : "${RUNS:=1}" "${DURATION:=2}" "${WARMUP:=1}" "${COLD_N:=1000}"
    IDLE_WAIT=1
else
    : "${RUNS:=3}" "${DURATION:=8}" "${WARMUP:=2}" "${COLD_N:=10000}"
    IDLE_WAIT=3
fi
FO_BENCH_NAME=run.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
fo_bench_check_tools
mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/runs/*.json "$OUT"/runs/*.log "$OUT"/runs/*.err

COLD_DIR=
cleanup() { stop_srv; [ -n "$COLD_DIR" ] && rm -rf "$COLD_DIR"; return 0; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# bench TAG BENCH-ARGS...: flushout-bench pinned to BENCH_CPU against the running server
bench() {
    local tag=$1
    shift
    if ! bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$BENCH_CPU" "$BENCH" \
        --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$SRV_PID" --json --print-errors 20 \
        "$@" >"$tag.json" 2>"$tag.err"; then
        echo "  ($(basename "$tag"): failures or error, see $tag.err)" >&2
    fi
    kill -0 "$SRV_PID" 2>/dev/null || echo "  ($(basename "$tag"): the server died; see $tag.log)" >&2
    return 0
}

# run_one SCN KIND STORE RUN BENCH-ARGS...: fresh server, one bench run, server stopped
run_one() {
    local scn=$1 kind=$2 store=$3 run=$4 data=
    shift 4
    local tag=$OUT/runs/$scn-$kind-$store-$run
    if [ "$kind" = peer ]; then
        start_srv peer "$tag.log"
    elif [ "$store" = sqlite ]; then
        data=$(mktemp -d /tmp/flushout-bench-sqlite.XXXX)
        start_srv hub "$tag.log" --store sqlite --data "$data"
    else
        start_srv hub "$tag.log" --store memory
    fi
    bench "$tag" --no-progress "$@"
    stop_srv
    [ -n "$data" ] && rm -rf "$data"
    return 0
}

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
has() { case ",$SERVERS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# scenario SCN BENCH-ARGS...: RUNS runs on each server, alternating hub and peer
scenario() {
    local scn=$1
    shift
    local r k
    for r in $(seq "$RUNS"); do
        for k in hub peer; do
            has $k && run_one "$scn" $k memory "$r" "$@"
        done
    done
    return 0
}

T=(--warmup "$WARMUP" --duration "$DURATION" --check-every 16)
START=$(date +%s)
echo "run.sh: $( [ "$QUICK" = 1 ] && echo quick || echo full ): $RUNS run(s) per scenario, ${DURATION}s windows; server on CPU $SRV_CPU, flushout-bench on CPU $BENCH_CPU; load average $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT" >&2
if want a || want f; then
    echo "== a: 100 connections, 10 models, K=1" >&2
    scenario a "${T[@]}" --connections 100 --models 10 --commands 1
fi
if want b; then
    echo "== b: 100 connections, 10 models, K=10" >&2
    scenario b "${T[@]}" --connections 100 --models 10 --commands 10
fi
if want c; then
    echo "== c: 1000 connections, 1000 models, K=1" >&2
    scenario c "${T[@]}" --connections 1000 --models 1000 --commands 1
fi
if want d; then
    echo "== d: fan-out, 1 writer + 1000 subscribers on one model" >&2
    scenario d "${T[@]}" --models 1 --writers 1 --subscribers 1000 --commands 1
fi
if want d2; then
    echo "== d2: fan-out, open loop 800 flushes/s pipelined" >&2
    scenario d2 "${T[@]}" --models 1 --writers 1 --subscribers 1000 --commands 1 --rate 800 --pipeline
fi
if want e; then
    echo "== e: 10k idle connections (hello only)" >&2
    scenario e --idle --connections 10000 --duration "$IDLE_WAIT"
fi
if want f && has hub; then
    echo "== f: hub, sqlite store (fsync) vs memory store (a)" >&2
    for r in $(seq "$RUNS"); do
        run_one f hub sqlite "$r" "${T[@]}" --connections 100 --models 10 --commands 1
    done
fi
if want g && has hub; then
    echo "== g: cold start of $COLD_N models on disk (sqlite)" >&2
    COLD_DIR=$(mktemp -d /tmp/flushout-bench-cold.XXXX)
    G=$OUT/runs/g-hub-sqlite
    # create: every model gets a few flushes of 5 commands
    start_srv hub "$G-create.log" --store sqlite --data "$COLD_DIR"
    bench "$G-create" --connections "$COLD_N" --models "$COLD_N" --model-prefix cold- \
        --commands 5 --warmup 0 --duration 1 --check-every 16
    sleep 1 # let the hub finish closing those connections
    # warm: the same models, already in the hub's memory
    bench "$G-warm" --connections "$COLD_N" --models "$COLD_N" --model-prefix cold- \
        --commands 1 --warmup 0 --duration 0.5 --check-every 16
    stop_srv
    # cold: a fresh hub on the same data dir
    start_srv hub "$G-cold.log" --store sqlite --data "$COLD_DIR"
    bench "$G-cold" --connections "$COLD_N" --models "$COLD_N" --model-prefix cold- \
        --commands 1 --warmup 0 --duration 0.5 --check-every 16
    stop_srv
    rm -rf "$COLD_DIR"
    COLD_DIR=
fi

python3 - "$OUT" "$QUICK" "$RUNS" "$DURATION" "$COLD_N" "$(( $(date +%s) - START ))" <<'EOF'
import glob, json, os, re, statistics, sys, time

out, quick, runs, duration, cold_n, elapsed = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def runs_of(scn, kind, store="memory"):
    return [j for j in (load(p) for p in sorted(glob.glob(f"{out}/runs/{scn}-{kind}-{store}-*.json"))) if j]

FIELDS = ["flushes_per_sec", "commands_per_sec", "pushes_per_sec", "ack_p50_ms", "ack_p99_ms",
          "push_p99_ms", "frames_in_per_sec", "frames_out_per_sec", "errors", "hub_cpu_pct",
          "bench_cpu_pct", "hub_rss_kb", "hub_rss_per_conn_bytes"]

def med(js):
    if not js:
        return None
    m = {"runs": len(js)}
    for f in FIELDS:
        v = [j[f] for j in js if isinstance(j.get(f), (int, float))]
        if v:
            m[f] = statistics.median_low(sorted(v)) if len(v) % 2 == 0 else statistics.median(v)
    return m

def ratio(a, b):
    return round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

desc = {
    "a": "100 conns, 10 models, K=1",
    "b": "100 conns, 10 models, K=10",
    "c": "1000 conns, 1000 models, K=1",
    "d": "fan-out 1 writer + 1000 subs",
    "d2": "d, open loop 800/s pipelined",
    "e": "10k idle connections",
}
res = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick,
       "runs_per_scenario": runs, "duration_s": float(duration), "elapsed_s": elapsed,
       "loadavg": open("/proc/loadavg").read().split()[:3], "nproc": os.cpu_count(),
       "scenarios": {}}
for s in ["a", "b", "c", "d", "d2", "e"]:
    hub, peer = med(runs_of(s, "hub")), med(runs_of(s, "peer"))
    if not hub and not peer:
        continue
    r = {"desc": desc[s], "hub": hub, "peer": peer}
    if hub and peer:
        if s == "e":
            r["rss_per_conn_ratio_hub_over_peer"] = ratio(hub.get("hub_rss_per_conn_bytes"), peer.get("hub_rss_per_conn_bytes"))
        else:
            r["flushes_ratio_hub_over_peer"] = ratio(hub.get("flushes_per_sec"), peer.get("flushes_per_sec"))
            r["pushes_ratio_hub_over_peer"] = ratio(hub.get("pushes_per_sec"), peer.get("pushes_per_sec"))
            r["ack_p99_ratio_hub_over_peer"] = ratio(hub.get("ack_p99_ms"), peer.get("ack_p99_ms"))
    res["scenarios"][s] = r
mem, sql = med(runs_of("a", "hub")), med(runs_of("f", "hub", "sqlite"))
if sql:
    res["scenarios"]["f"] = {"desc": "hub: sqlite (fsync) vs memory, shape of a", "memory": mem, "sqlite": sql,
                             "flushes_ratio_sqlite_over_memory": ratio(sql.get("flushes_per_sec"), (mem or {}).get("flushes_per_sec")),
                             "ack_p99_ratio_sqlite_over_memory": ratio(sql.get("ack_p99_ms"), (mem or {}).get("ack_p99_ms"))}

def ready_s(tag):
    try:
        txt = open(f"{out}/runs/{tag}.err").read()
    except OSError:
        return None
    m = re.findall(r"(\d+) of (\d+) connections ready \((\d+) failed\) in ([0-9.]+) s", txt)
    return (int(m[-1][0]), float(m[-1][3])) if m else None

g = {}
for phase in ("create", "warm", "cold"):
    j = load(f"{out}/runs/g-hub-sqlite-{phase}.json")
    rd = ready_s(f"g-hub-sqlite-{phase}")
    if not j or not rd:
        continue
    ready, secs = rd
    first_ack = (j.get("ack_max_ms") or 0) / 1000.0
    total = secs + first_ack
    g[phase] = {"models": cold_n, "connections_ready": ready, "connect_sub_s": round(secs, 3),
                "slowest_first_ack_s": round(first_ack, 4), "total_s": round(total, 3),
                "models_per_sec": round(ready / total, 1) if total else None,
                "errors": j.get("errors"), "flushes_per_sec": j.get("flushes_per_sec")}
if g:
    if "cold" in g and "warm" in g:
        extra = g["cold"]["total_s"] - g["warm"]["total_s"]
        g["cold_minus_warm_s"] = round(extra, 3)
        g["load_models_per_sec"] = round(cold_n / extra, 1) if extra > 0 else None
    g["desc"] = f"cold start: first flush acked on each of {cold_n} models on disk"
    res["scenarios"]["g"] = g

with open(f"{out}/results.json", "w") as f:
    json.dump(res, f, indent=1)

def n(v, fmt="{:,.0f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "-"
def x(v):
    return f"{v:.2f}x" if isinstance(v, (int, float)) else "-"

L = []
L.append(f"flushout bench ({'quick' if quick else 'full'}: {runs} run(s), {duration}s windows, medians; load avg {' '.join(res['loadavg'])}; {elapsed}s)")
L.append("")
L.append(f"{'':2} {'scenario':30} {'hub fl/s':>10} {'peer fl/s':>10} {'hub/peer':>9} {'hub push/s':>11} {'peer push/s':>11} {'hub p99':>8} {'peer p99':>8} {'p99 h/p':>8} {'err h/p':>8}")
for s in ["a", "b", "c", "d", "d2"]:
    r = res["scenarios"].get(s)
    if not r:
        continue
    h, p = r["hub"] or {}, r["peer"] or {}
    L.append(f"{s:2} {r['desc']:30} {n(h.get('flushes_per_sec')):>10} {n(p.get('flushes_per_sec')):>10} "
             f"{x(r.get('flushes_ratio_hub_over_peer')):>9} {n(h.get('pushes_per_sec')):>11} {n(p.get('pushes_per_sec')):>11} "
             f"{n(h.get('ack_p99_ms'), '{:.2f}'):>8} {n(p.get('ack_p99_ms'), '{:.2f}'):>8} {x(r.get('ack_p99_ratio_hub_over_peer')):>8} "
             f"{n(h.get('errors'), '{:.0f}')}/{n(p.get('errors'), '{:.0f}')}")
r = res["scenarios"].get("e")
if r:
    h, p = r["hub"] or {}, r["peer"] or {}
    L.append("")
    L.append(f"e  10k idle connections: RSS per connection hub {n(h.get('hub_rss_per_conn_bytes'))} B, "
             f"peer {n(p.get('hub_rss_per_conn_bytes'))} B, hub/peer {x(r.get('rss_per_conn_ratio_hub_over_peer'))}")
r = res["scenarios"].get("f")
if r:
    m, q = r["memory"] or {}, r["sqlite"] or {}
    L.append(f"f  hub sqlite+fsync {n(q.get('flushes_per_sec'))} fl/s (p99 {n(q.get('ack_p99_ms'), '{:.2f}')} ms) vs memory "
             f"{n(m.get('flushes_per_sec'))} fl/s (p99 {n(m.get('ack_p99_ms'), '{:.2f}')} ms): sqlite/memory {x(r.get('flushes_ratio_sqlite_over_memory'))}")
r = res["scenarios"].get("g")
if r:
    for ph in ("warm", "cold"):
        if ph in r:
            v = r[ph]
            L.append(f"g  {ph:4} start, {cold_n} models: {v['total_s']:.3f} s to the first ack on each "
                     f"(connect+sub {v['connect_sub_s']:.3f} s + slowest first ack {v['slowest_first_ack_s']:.3f} s), "
                     f"{n(v['models_per_sec'])} models/s")
    if r.get("cold_minus_warm_s") is not None:
        if r["cold_minus_warm_s"] > 0:
            L.append(f"g  loading from disk: +{r['cold_minus_warm_s']:.3f} s ({n(r.get('load_models_per_sec'))} models/s)")
        else:
            L.append(f"g  cold - warm: {r['cold_minus_warm_s']:.3f} s: loading is within the noise of the {cold_n} handshakes")
L.append("")
L.append(f"JSON: {out}/results.json (medians, ratios), {out}/runs/ (every run)")
txt = "\n".join(L) + "\n"
open(f"{out}/summary.txt", "w").write(txt)
sys.stdout.write(txt)
EOF
