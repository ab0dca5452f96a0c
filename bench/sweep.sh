#!/usr/bin/env bash
# sweep.sh - open-loop latency vs throughput for flushout-hub and the Node peer: the shape of
# scenario a (100 connections, 10 models, K=1) at a series of target rates (--rate R: latency
# from each flush's intended send time, no coordinated omission) up to past saturation; a
# fresh server per point, server pinned to one core and flushout-bench to the other. Then
# draws bench/plot.gp into DIR/latency.svg when gnuplot is installed (Debian: gnuplot-nox).
#
#   bench/sweep.sh [--quick] [--out DIR] [--duration S] [--servers hub,peer]
#                  [--hub-rates "5000 10000 ..."] [--peer-rates "1000 2000 ..."]
#                  [--build build/release] [--server-cpu 0] [--bench-cpu 1]
#
# Output: DIR/sweep/SERVER-RATE.json (one flushout-bench JSON per point, server logs beside;
# the hub's point at half the peer's highest rate: the median of three runs by ack p99, the
# three in DIR/sweep/half/),
# DIR/sweep-SERVER.dat (one line per point: target rate, achieved flushes/s, ack p50, p90,
# p99, p99.9 ms, errors, server CPU %), DIR/sweep.json (all points), DIR/latency.svg.
# DIR defaults to build/bench; bench/summarize.py then rewrites DIR/summary.txt with the
# sweep's target (hub ack p99 <= 1 ms at half the peer's highest achieved rate).
# --quick: 5 points per server, 2 s each (about 1 minute);
# default: 11-13 points per server, 5 s each (about 3.5 minutes). Rates up to 86400
# (flushout-bench's limit).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=$ROOT/build/bench
QUICK=0
DURATION=
SERVERS=hub,peer
HUB_RATES=
PEER_RATES=
SRV_CPU=0
BENCH_CPU=1
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --hub-rates) HUB_RATES=$2; shift 2 ;;
    --peer-rates) PEER_RATES=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --server-cpu) SRV_CPU=$2; shift 2 ;;
    --bench-cpu) BENCH_CPU=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "sweep.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    : "${DURATION:=2}" "${HUB_RATES:=5000 20000 40000 60000 80000}"
    : "${PEER_RATES:=2000 8000 16000 24000 32000}"
    WARMUP=1.5 # node's JIT: with 0.5 s the peer's first points are much slower
else
    : "${DURATION:=5}" "${HUB_RATES:=1000 2500 5000 10000 20000 30000 40000 50000 60000 65000 70000 80000}"
    : "${PEER_RATES:=1000 2000 4000 8000 12000 16000 20000 24000 28000 32000 40000}"
    WARMUP=2
fi
FO_BENCH_NAME=sweep.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
fo_bench_check_tools
mkdir -p "$OUT/sweep"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/sweep/*.json "$OUT"/sweep/*.log "$OUT"/sweep/*.err
rm -rf "$OUT"/sweep/half

trap stop_srv EXIT
trap 'exit 130' INT TERM

echo "sweep.sh: ${DURATION}s per point; server on CPU $SRV_CPU, flushout-bench on CPU $BENCH_CPU; load average $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT" >&2
# The peer first: the hub then also runs at half the peer's highest achieved rate (the
# issue's target: hub ack p99 <= 1 ms there).
HALF=
for kind in peer hub; do
    case ",$SERVERS," in *",$kind,"*) ;; *) continue ;; esac
    if [ $kind = hub ]; then
        rates=$HUB_RATES
        HALF=$(python3 -c 'import glob,json,sys
m=0
for p in glob.glob(sys.argv[1]+"/sweep/peer-*.json"):
    try: m=max(m,json.load(open(p))["flushes_per_sec"])
    except Exception: pass
print(int(round(m/2)) if m else "")' "$OUT")
        # shellcheck disable=SC2086 # $rates is a list of numbers
        [ -n "$HALF" ] && rates=$(printf '%s\n' $rates "$HALF" | sort -n | uniq | tr '\n' ' ')
    else
        rates=$PEER_RATES
    fi
    for rate in $rates; do
        tag=$OUT/sweep/$kind-$rate
        # The target's point (the hub at half the peer's highest rate) is run three times
        # and the run with the median p99 kept, as every scenario of run.sh takes the
        # median of its runs: one 5 s window is at the mercy of a hiccup of the host.
        reps=1
        [ "$kind" = hub ] && [ "$rate" = "$HALF" ] && reps=3
        for ((r = 1; r <= reps; r++)); do
            run=$tag
            [ "$reps" -gt 1 ] && mkdir -p "$OUT/sweep/half" && run=$OUT/sweep/half/$kind-$rate-$r
            if [ "$kind" = hub ]; then start_srv hub "$run.log" --store memory; else start_srv peer "$run.log"; fi
            bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$BENCH_CPU" "$BENCH" \
                --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$SRV_PID" --json --no-progress \
                --check-every 16 --connections 100 --models 10 --commands 1 --rate "$rate" \
                --warmup "$WARMUP" --duration "$DURATION" --drain 3 >"$run.json" 2>"$run.err" || true
            stop_srv
            python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("  %s %6d/s: %8.0f flushes/s, ack p50 %8.3f p99 %8.3f ms, server CPU %3.0f%%, errors %d%s" % (sys.argv[2], int(sys.argv[3]), j["flushes_per_sec"], j["ack_p50_ms"], j["ack_p99_ms"], j.get("hub_cpu_pct") or 0, j["errors"], sys.argv[4]))' \
                "$run.json" $kind "$rate" "$([ "$reps" -gt 1 ] && echo " (run $r of $reps)")" >&2 2>/dev/null ||
                echo "  $kind $rate/s: no result (see $run.err)" >&2
        done
        if [ "$reps" -gt 1 ]; then
            # The run with the median p99 (a run without a result counts as the worst).
            med=$(python3 -c 'import json,sys
runs=[]
for p in sys.argv[1:]:
    try: runs.append((json.load(open(p))["ack_p99_ms"], p))
    except Exception: runs.append((float("inf"), p))
runs.sort(key=lambda x: x[0])
print(runs[len(runs)//2][1])' "$OUT"/sweep/half/$kind-$rate-[0-9].json)
            for ext in json err log; do cp "${med%.json}.$ext" "$tag.$ext" 2>/dev/null || true; done
            echo "  $kind $rate/s: the median run by p99 is kept ($(basename "$med"))" >&2
        fi
    done
done

python3 - "$OUT" "$HALF" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
half = int(sys.argv[2]) if sys.argv[2] else None
pts = []
for p in glob.glob(f"{out}/sweep/*.json"):
    kind, rate = os.path.basename(p)[:-5].rsplit("-", 1)
    try:
        j = json.load(open(p))
    except (OSError, ValueError):
        continue
    pts.append({"server": kind, "target_rate": int(rate), "flushes_per_sec": j.get("flushes_per_sec"),
                "ack_p50_ms": j.get("ack_p50_ms"), "ack_p90_ms": j.get("ack_p90_ms"),
                "ack_p99_ms": j.get("ack_p99_ms"), "ack_p999_ms": j.get("ack_p999_ms"),
                "errors": j.get("errors"), "server_cpu_pct": j.get("hub_cpu_pct"),
                "backlog_at_end": j.get("backlog_at_end")})
pts.sort(key=lambda p: (p["server"], p["target_rate"]))
json.dump({"scenario": "100 connections, 10 models, K=1, open loop", "points": pts},
          open(f"{out}/sweep.json", "w"), indent=1)
for kind in ("hub", "peer"):
    rows = [p for p in pts if p["server"] == kind]
    with open(f"{out}/sweep-{kind}.dat", "w") as f:
        f.write("# target_rate achieved_flushes_per_sec ack_p50_ms ack_p90_ms ack_p99_ms ack_p999_ms errors server_cpu_pct\n")
        for p in rows:
            f.write(" ".join(str(p[k] if p[k] is not None else "NaN") for k in
                    ("target_rate", "flushes_per_sec", "ack_p50_ms", "ack_p90_ms", "ack_p99_ms",
                     "ack_p999_ms", "errors", "server_cpu_pct")) + "\n")
peer = [p for p in pts if p["server"] == "peer" and p["flushes_per_sec"]]
if peer and half:
    pmax = max(peer, key=lambda p: p["flushes_per_sec"])
    h = [p for p in pts if p["server"] == "hub" and p["target_rate"] == half]
    if h:
        print(f"peer's highest achieved rate {pmax['flushes_per_sec']:,.0f} flushes/s (target {pmax['target_rate']:,}); "
              f"hub at half of it ({half:,}/s): ack p50 {h[0]['ack_p50_ms']:.3f} ms, p99 {h[0]['ack_p99_ms']:.3f} ms, "
              f"p99.9 {h[0]['ack_p999_ms']:.3f} ms", file=sys.stderr)
        reps = []
        for p in sorted(glob.glob(f"{out}/sweep/half/hub-{half}-*.json")):
            try:
                reps.append(json.load(open(p)).get("ack_p99_ms"))
            except (OSError, ValueError):
                reps.append(None)
        json.dump({"scenario": "100 connections, 10 models, K=1, open loop", "points": pts,
                   "peer_max_flushes_per_sec": pmax["flushes_per_sec"], "hub_at_half_peer_max": h[0],
                   "hub_at_half_runs_p99_ms": reps},
                  open(f"{out}/sweep.json", "w"), indent=1)
print(f"points: {out}/sweep.json, {out}/sweep-hub.dat, {out}/sweep-peer.dat", file=sys.stderr)
EOF

# The sweep's target (hub ack p99 at half the peer's highest rate) into DIR/summary.txt.
python3 "$ROOT/bench/summarize.py" "$OUT" >/dev/null

if command -v gnuplot >/dev/null; then
    gnuplot -e "dir='$OUT'" "$ROOT/bench/plot.gp" && echo "plot: $OUT/latency.svg" >&2
else
    echo "sweep.sh: gnuplot not installed (apt-get install gnuplot-nox); no plot" >&2
fi
