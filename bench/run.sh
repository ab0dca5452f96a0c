#!/usr/bin/env bash
# run.sh - the issue-5/8 scenarios against flushout-hub AND the Node peer (bench/peer) in the
# same run, beside the fan-out floor: server pinned to one core, flushout-bench to the other,
# one fresh server per run, medians of N runs; prints a ratio table with every scenario's
# frames/s as a fraction of the floor, and the issue-8 targets with pass/fail.
#
#   bench/run.sh [--quick] [--out DIR] [--runs N] [--duration S] [--warmup S]
#                [--only floor,a,b,c,d,d2,strace,e,f,g] [--servers hub,peer]
#                [--cold-models N] [--d2-steps N] [--build build/release]
#                [--server-cpu 0] [--bench-cpu 1]
#
#   FO_BENCH_INTERCEPTORS=bench/rules/stamp.lua bench/run.sh --only a --servers hub
#      runs the hub with that rules file (server-side rules: a stamping rule that rewrites
#      every command); compare its flushes/s with a run without it.
#
#   floor  fo-floor (bench/floor): one thread pinned to the server's CPU sends a 60-byte frame
#      to each of 1000 loopback TCP sockets in turn, one non-blocking send each (TCP_NODELAY),
#      another pinned to the generator's CPU drains them (epoll); 1 frame per send, then 10
#      (packed). Run at the start and at the end; the floor is the median of all its runs.
#      Scenario d's rounds each run beside a 1-frame floor run of their own (floord-R.json:
#      d is judged against those) and one with --io-uring (flooru-R.json: the same sends,
#      one io_uring submission per round, as the hub writes; shown beside).
#      No closed-loop fan-out to 1000 subscribers beats the 1-frame figure.
#   a  100 connections, 10 models, K=1 (closed loop, every connection writes)
#   b  the same with K=10
#   c  1000 connections over 1000 models, K=1 (no fan-out)
#   d  fan-out: 1 writer + 1000 subscribers on one model (closed loop: one flush in flight,
#      so latency-bound)
#   d2 the same, open loop with --pipeline (several pushes pending per subscriber at once):
#      the highest push rate each server sustains. A bounded search per server: from its
#      closed-loop d rate (or 200/s), double the offered flushes/s until a step fails, then
#      bisect; a step sustains when acked flushes/s and pushes/s are >= 95% of offered,
#      with no errors, no dropped pushes, ack p99 <= 1 s, and a backlog that does not grow:
#      the mean per-second ack p50 of the window's later half <= 1.5x its earlier half's
#      + 10 ms. (An absolute latency cap would judge the machine's noise, not the server.)
#      --d2-steps caps the steps per server (quick 4, full 8); time, at 15 s per step.
#   strace d again on a fresh hub (and peer) for a few seconds with `strace -f -p`
#      attached: epoll_ctl per frame sent and socket writes (sendto+write+writev+sendmsg)
#      per connection per loop turn (flushout_write_turns_total from /metrics; without it,
#      writes per frame). strace slows the server: counts only, never rates.
#   e  10k idle connections (upgrade + hello): server RSS per connection
#   f  hub only: memory store vs SQLite store (WAL, synchronous=FULL: fsync per commit),
#      shape of a, the two stores' runs alternating; ratio sqlite/memory
#   g  hub only, cold start: N models (10k; --quick 1k) get 5 commands per flush against a
#      sqlite hub; the same N connections then connect again to that (warm) hub, then to a
#      fresh hub on the same data dir (cold: every model is on disk, none in memory). Time
#      = connect + hello + sub (loads the model) of all N, plus the slowest ack of the
#      first flush on each model; cold - warm is the loading cost.
#
# --quick: 1 run per scenario, 2 s windows, 1k cold models (about 2 minutes on a quiet
# machine). Default: 3 runs, 8 s windows (about 13 minutes). Output: DIR/runs/*.json (one
# flushout-bench JSON per run, server logs beside; floor-*.json, d2-*-search.json,
# strace-*.json), DIR/results.json (medians, ratios, targets), DIR/summary.txt (the table
# and the targets; bench/sweep.sh and bench/memory.sh add theirs when they run after). DIR
# defaults to build/bench. Needs python3 and taskset; node for the peer; strace for strace.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=$ROOT/build/bench
QUICK=0
RUNS=
DURATION=
WARMUP=
ONLY=floor,a,b,c,d,d2,strace,e,f,g
D2_STEPS=
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
    --d2-steps) D2_STEPS=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --server-cpu) SRV_CPU=$2; shift 2 ;;
    --bench-cpu) BENCH_CPU=$2; shift 2 ;;
    -h|--help) sed -n '2,48p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    : "${RUNS:=1}" "${DURATION:=2}" "${WARMUP:=1}" "${COLD_N:=1000}" "${D2_STEPS:=4}"
    IDLE_WAIT=1 FLOOR_REPEAT=1 FLOOR_DUR=1 D2_WARMUP=0.5 D2_DUR=2 STRACE_S=2
else
    : "${RUNS:=3}" "${DURATION:=8}" "${WARMUP:=2}" "${COLD_N:=10000}" "${D2_STEPS:=8}"
    IDLE_WAIT=3 FLOOR_REPEAT=3 FLOOR_DUR=2 D2_WARMUP=1 D2_DUR=4 STRACE_S=3
fi
FO_BENCH_NAME=run.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
fo_bench_check_tools
[ -x "$FLOOR" ] || { echo "run.sh: $FLOOR not built (make build)" >&2; exit 2; }
mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/runs/*.json "$OUT"/runs/*.log "$OUT"/runs/*.err "$OUT"/runs/*.txt "$OUT"/runs/*.prom

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
FAN=(--models 1 --writers 1 --subscribers 1000 --commands 1)

# d2_step KIND RATE: one open-loop pipelined fan-out run at RATE flushes/s on a fresh
# server; prints "1 why" when the server sustained it, "0 why" otherwise.
d2_step() {
    local kind=$1 rate=$2 tag=$OUT/runs/d2-$1-rate-$2
    if [ "$kind" = peer ]; then start_srv peer "$tag.log"; else start_srv hub "$tag.log" --store memory; fi
    bench "$tag" --no-progress --warmup "$D2_WARMUP" --duration "$D2_DUR" --drain 2 \
        --check-every 16 "${FAN[@]}" --rate "$rate" --pipeline
    stop_srv
    python3 - "$tag.json" "$rate" <<'PY'
import json, sys
rate = float(sys.argv[2])
try:
    j = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("0 no result"); sys.exit()
subs = j.get("subscribers_per_model", 1000) * j.get("models", 1)
why = []
if j.get("errors"): why.append(f"{j['errors']:.0f} errors")
if j["flushes_per_sec"] < 0.95 * rate: why.append(f"acked {j['flushes_per_sec']:.0f}/s < 95%")
if j["pushes_per_sec"] < 0.95 * rate * subs: why.append(f"pushes {j['pushes_per_sec']:.0f}/s < 95% of {rate*subs:.0f}")
if j.get("hub_dropped_pushes"): why.append(f"{j['hub_dropped_pushes']:.0f} pushes dropped")
if j["ack_p99_ms"] > 1000: why.append(f"ack p99 {j['ack_p99_ms']:.0f} ms > 1 s")
# A backlog that grows shows as an ack latency that climbs through the window: compare the
# per-second ack p50 of its later half with its earlier half.
s = j.get("ack_p50_by_sec_ms") or []
if len(s) >= 2:
    a, b = s[:len(s) // 2], s[(len(s) + 1) // 2:]
    ea, eb = sum(a) / len(a), sum(b) / len(b)
    if eb > 1.5 * ea + 10: why.append(f"ack p50 grew {ea:.1f} -> {eb:.1f} ms")
print("0 " + "; ".join(why) if why else
      f"1 {j['pushes_per_sec']:,.0f} pushes/s, ack p99 {j['ack_p99_ms']:.2f} ms, bench CPU {j.get('bench_cpu_pct', 0):.0f}%")
PY
}

# d2_search KIND: the highest rate KIND sustains (see d2 above); writes
# runs/d2-KIND-search.json {best_rate, steps: [...], best_json}.
d2_search() {
    local kind=$1 rate best=0 fail=0 step verdict ok t0=$SECONDS steps=()
    # Start at the server's closed-loop d rate (at least 50/s).
    rate=$(python3 -c 'import glob,json,statistics,sys
v = []
for p in glob.glob(sys.argv[1]+"/runs/d-"+sys.argv[2]+"-memory-*.json"):
    try: v.append(json.load(open(p))["flushes_per_sec"])
    except Exception: pass
print(max(50, int(statistics.median(v))) if v else 200)' "$OUT" "$kind")
    for step in $(seq "$D2_STEPS"); do
        verdict=$(d2_step "$kind" "$rate")
        ok=${verdict%% *}
        echo "  $kind step $step: $rate flushes/s offered: $([ "$ok" = 1 ] && echo sustained || echo "NOT sustained") (${verdict#* })" >&2
        steps+=("$rate:$ok")
        if [ "$ok" = 1 ]; then best=$rate; else fail=$rate; fi
        if [ "$fail" = 0 ]; then
            rate=$((rate * 2))
        elif [ "$best" = 0 ]; then
            rate=$((rate / 2))
            [ "$rate" -ge 10 ] || break
        else
            [ $((fail * 10)) -le $((best * 11)) ] && break # bracketed within 10%
            rate=$(((best + fail) / 2))
        fi
        [ $((SECONDS - t0)) -lt $((D2_STEPS * 15)) ] || break # bounded in time too
    done
    python3 - "$OUT" "$kind" "$best" "${steps[@]}" <<'PY'
import json, sys
out, kind, best = sys.argv[1], sys.argv[2], int(sys.argv[3])
steps = [{"rate": int(a), "sustained": b == "1"} for a, b in (x.split(":") for x in sys.argv[4:])]
res = {"server": kind, "best_rate": best or None, "steps": steps}
if best:
    try:
        res["best_json"] = json.load(open(f"{out}/runs/d2-{kind}-rate-{best}.json"))
    except (OSError, ValueError):
        pass
json.dump(res, open(f"{out}/runs/d2-{kind}-search.json", "w"), indent=1)
PY
}

# strace_d KIND: scenario d on a fresh server with `strace -f` attached for about STRACE_S
# seconds while /metrics is scraped twice; writes runs/strace-KIND.json. The syscalls are
# counted from the trace between the two /metrics responses (found in it by their
# "HTTP/1.1 200" bytes), i.e. exactly over the stretch of work the counter deltas cover:
# a traced server is slow to answer, so timing the window from outside would miscount.
strace_d() {
    local kind=$1 tag=$OUT/runs/strace-$1 spid bpid
    if [ "$kind" = peer ]; then start_srv peer "$tag.log"; else start_srv hub "$tag.log" --store memory; fi
    # The generator runs until strace has detached, then gets SIGINT (it ends its window
    # and closes): the close handshakes stay out of the trace.
    bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$BENCH_CPU" "$BENCH" \
        --url "ws://127.0.0.1:$PORT/v1/ws" --hub-pid "$SRV_PID" --json --no-progress \
        --check-every 16 --warmup 1 --duration 120 "${FAN[@]}" >"$tag-bench.json" 2>"$tag-bench.err" &
    bpid=$!
    # Attach once all 1001 connections are up and the generator's own window has begun (its
    # warm-up is 1 s), so that its start-of-window /metrics scrape stays out of the trace.
    for _ in $(seq 600); do
        scrape_metrics "$PORT" "$tag-0.prom"
        [ "$(sed -n 's/^flushout_connections \([0-9]*\).*/\1/p' "$tag-0.prom")" = 1001 ] && break
        sleep 0.1
    done
    sleep 1.5
    strace -f -qq -s 16 -e signal=none -p "$SRV_PID" -o "$tag.trace" 2>"$tag.strace.err" &
    spid=$!
    for _ in $(seq 300); do [ -s "$tag.trace" ] && break; sleep 0.01; done
    scrape_metrics "$PORT" "$tag-0.prom"
    sleep "$STRACE_S"
    scrape_metrics "$PORT" "$tag-1.prom"
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    kill -INT "$bpid" 2>/dev/null || true
    wait "$bpid" 2>/dev/null || true
    stop_srv
    python3 - "$tag" "$kind" <<'PY'
import collections, json, os, re, sys
tag, kind = sys.argv[1], sys.argv[2]
def prom(p):
    d = {}
    try:
        for line in open(p):
            m = re.match(r"^(flushout_[a-z_]+) ([0-9.e+]+)$", line.strip())
            if m:
                d[m.group(1)] = float(m.group(2))
    except OSError:
        pass
    return d
m0, m1 = prom(f"{tag}-0.prom"), prom(f"{tag}-1.prom")
def delta(n):
    return m1[n] - m0[n] if n in m0 and n in m1 else None
# Count syscalls, and bytes written to sockets, strictly between the last two /metrics
# responses in the trace (ours: the generator's own scrapes are before and after it).
WR = ("sendto", "write", "writev", "sendmsg")
nmarks = 0
try:
    with open(f"{tag}.trace", errors="replace") as f:
        nmarks = sum('"HTTP/1.1 200' in line for line in f)
except OSError:
    pass
first = max(nmarks - 1, 1)  # the ordinal of the window's opening response
calls, inside, marks, lines, wbytes, mfd = collections.Counter(), False, 0, 0, 0, None
call = re.compile(r"^\d+\s+([a-z_0-9]+)\(")
resumed = re.compile(r"^\d+\s+<\.\.\. ([a-z_0-9]+) resumed>")
ret = re.compile(r"\) += (\d+)\s*$")
try:
    with open(f"{tag}.trace", errors="replace") as f:
        for line in f:
            lines += 1
            m = call.match(line) or resumed.match(line)
            if not m:
                continue
            if '"HTTP/1.1 200' in line:
                marks += 1
                inside = marks == first
                mfd = re.search(r"\((\d+),", line)  # the /metrics connection: its body
                mfd = mfd and mfd.group(1)          # is not a frame
                if marks == first + 1:
                    break
                continue
            if not inside:
                continue
            if m.re is call:
                calls[m.group(1)] += 1
            if m.group(1) in WR and (r := ret.search(line)) and not (m.re is call and line.split("(", 1)[1].split(",", 1)[0] == mfd):
                wbytes += int(r.group(1))
except OSError:
    pass
# Frames sent in the window: the bytes written there over the mean size of a frame on the
# wire, which the generator measured over its whole run (bytes and frames received). The
# counters' frames_out delta is not used for it: a traced server's writes lag its counters
# (lws may hold a written buffer and send it later), so the two windows do not match.
queued, qbytes = delta("flushout_frames_out_total"), delta("flushout_bytes_out_total")
mean = None
try:
    b = json.load(open(f"{tag}-bench.json"))
    if b.get("frames_in_per_sec"):
        mean = b["bytes_in_per_sec"] / b["frames_in_per_sec"]
except (OSError, ValueError):
    pass
frames = round(wbytes / mean) if mean and wbytes else queued
wturns = delta("flushout_write_turns_total")
lturns = delta("flushout_loop_turns_total")
writes = sum(calls.get(k, 0) for k in WR)
# The hub hands a pass's socket writes to the kernel in one io_uring_enter (--io-uring):
# strace sees the submissions, not the writes in them. Its own counters count those writes
# and their frames, in the same window (a frame is counted in the pass that writes it).
uring = calls.get("io_uring_enter", 0)
if uring:
    frames = queued
    writes = delta("flushout_socket_writes_total") or 0
found = nmarks >= 2 and marks == first + 1
r = {"server": kind, "trace_lines": lines, "window_found": found, "metrics_responses": nmarks, "syscalls": dict(calls.most_common()),
     "io_uring_enter": uring, "writes_from": "/metrics (io_uring)" if uring else "strace",
     "epoll_ctl": calls.get("epoll_ctl", 0), "socket_write_syscalls": writes, "bytes_written": wbytes,
     "frames_queued": queued, "frame_bytes_mean": mean,
     "frames_out": frames, "write_turns": wturns, "loop_turns": lturns}
if found and frames:
    r["epoll_ctl_per_frame"] = calls.get("epoll_ctl", 0) / frames
    r["writes_per_frame"] = writes / frames
    r["syscalls_per_frame"] = sum(calls.values()) / frames
if found and wturns:
    r["writes_per_conn_turn"] = writes / wturns
json.dump(r, open(f"{tag}.json", "w"), indent=1)
if found:
    os.remove(f"{tag}.trace")  # large; the counts are in the JSON
def f(v, fmt="{:.3f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "n/a"
print(f"  {kind} under strace: {r['epoll_ctl']:,} epoll_ctl, {writes:,.0f} socket writes"
      f"{f' (in {uring:,} io_uring_enter)' if uring else ''}, {f(frames, '{:,.0f}')} frames out, "
      f"{f(r.get('syscalls_per_frame'))} syscalls/frame"
      f"{'' if found else ' (the /metrics responses were not found in the trace)'}: "
      f"epoll_ctl/frame {f(r.get('epoll_ctl_per_frame'))}, writes/frame {f(r.get('writes_per_frame'))}, "
      f"writes/(conn x loop turn) {f(r.get('writes_per_conn_turn'))}", file=sys.stderr)
PY
}

START=$(date +%s)
echo "run.sh: $( [ "$QUICK" = 1 ] && echo quick || echo full ): $RUNS run(s) per scenario, ${DURATION}s windows; server on CPU $SRV_CPU, flushout-bench on CPU $BENCH_CPU; load average $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT" >&2
if want floor; then
    echo "== floor: 1 and 10 frames of 60 B per send to 1000 loopback sockets (start)" >&2
    run_floor "$OUT/runs/floor-start.json" "$FLOOR_REPEAT" "$FLOOR_DUR"
fi
if want a; then
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
    # Each round beside a floor run of its own (one send() per frame, then the same sends
    # in one io_uring submission per round): d is judged against the floor of its moment.
    echo "== d: fan-out, 1 writer + 1000 subscribers on one model, each round beside the floor" >&2
    for r in $(seq "$RUNS"); do
        if want floor; then
            run_floor "$OUT/runs/floord-$r.json" 1 "$FLOOR_DUR" --modes 1
            run_floor "$OUT/runs/flooru-$r.json" 1 "$FLOOR_DUR" --modes 1 --io-uring
        fi
        for k in hub peer; do has $k && run_one d $k memory "$r" "${T[@]}" "${FAN[@]}"; done
    done
fi
if want d2; then
    echo "== d2: fan-out, open loop pipelined: the highest sustained rate (<= $D2_STEPS steps per server)" >&2
    for k in hub peer; do has $k && d2_search $k; done
fi
if want strace; then
    if command -v strace >/dev/null; then
        echo "== strace: d with strace -f attached for ${STRACE_S}s (counts only)" >&2
        for k in hub peer; do has $k && strace_d $k; done
    else
        echo "== strace: not installed (apt-get install strace): epoll_ctl per frame n/a" >&2
    fi
fi
if want e; then
    echo "== e: 10k idle connections (hello only)" >&2
    scenario e --idle --connections 10000 --duration "$IDLE_WAIT"
fi
if want f && has hub; then
    # Its own memory-store runs, alternating with the SQLite ones: on a host whose speed
    # drifts, a ratio of runs taken minutes apart measures the drift.
    echo "== f: hub, sqlite store (fsync) vs memory store (shape of a), alternating" >&2
    for r in $(seq "$RUNS"); do
        run_one f hub memory "$r" "${T[@]}" --connections 100 --models 10 --commands 1
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
if want floor; then
    echo "== floor (end)" >&2
    run_floor "$OUT/runs/floor-end.json" "$FLOOR_REPEAT" "$FLOOR_DUR"
fi

python3 -c 'import json, sys
o, q, r, d, c, e = sys.argv[1:7]
json.dump({"quick": q == "1", "runs_per_scenario": int(r), "duration_s": float(d),
           "cold_models": int(c), "elapsed_s": int(e)}, open(o + "/run-meta.json", "w"))' \
    "$OUT" "$QUICK" "$RUNS" "$DURATION" "$COLD_N" "$(($(date +%s) - START))"
python3 "$ROOT/bench/summarize.py" "$OUT"
