#!/usr/bin/env bash
# cluster.sh - the hub on NATS JetStream (--cluster) with one, two and three hubs on one
# nats-server, side by side in one run, and the stores against each other:
#
#   bench/cluster.sh [--out DIR] [--runs N] [--duration S] [--only a,c,x,s,l]
#                    [--build build/release] [--hub-cpus 0] [--other-cpus 1]
#                    [--load-flushes 5000]
#
#   a  100 connections, 10 models, K=1 (closed loop), spread over 1, 2 and 3 hubs
#   c  1000 connections over 1000 models, K=1, spread over 1, 2 and 3 hubs
#   x  contention (the seed's case): one model, 30 writers, through 1 hub, through 3 hubs
#      forwarding to the model's owner, and through 3 hubs with --optimistic (every hub
#      appends: JetStream takes one append per position, the other hubs' flushes are
#      refused, `overloaded` with retryAfterMs, and counted as errors: the conflicts)
#   s  one hub, scenario a: on JetStream, on SQLite (fsync per commit), on memory
#   l  cold loads: one model written by 10 writers (--load-flushes each), then the hub
#      restarted --runs times, each time timing its first `get` (flushout CLI): with the
#      default retention (a snapshot every 1000 commands, 1000 of history: the subject is
#      purged below its base snapshot) against --snapshot-every past the log (no snapshot,
#      nothing purged: the load reads the whole subject). Not in the default set.
#
# Hubs are pinned to --hub-cpus, nats-server and flushout-bench to --other-cpus (a 2-core
# machine has one core for all hubs: what grows with hubs here is the work per hub, not the
# capacity). Every run starts a fresh nats-server (file storage in a temporary folder) and
# fresh hubs, and stops them by their pids. Output: DIR/runs/*.json (flushout-bench JSON),
# DIR/summary.txt (medians of the runs). DIR defaults to build/bench-cluster.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build/release
OUT=$ROOT/build/bench-cluster
RUNS=3
DURATION=5
WARMUP=1
ONLY=a,c,x,s
HUB_CPUS=0
OTHER_CPUS=1
LOAD_FLUSHES=5000
while [ $# -gt 0 ]; do
    case $1 in
    --out) OUT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --hub-cpus) HUB_CPUS=$2; shift 2 ;;
    --other-cpus) OTHER_CPUS=$2; shift 2 ;;
    --load-flushes) LOAD_FLUSHES=$2; shift 2 ;;
    *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
HUB=$BUILD/hub/flushout-hub
BENCH=$BUILD/bench/flushout-bench
for b in "$HUB" "$BENCH"; do
    [ -x "$b" ] || { echo "cluster.sh: $b not built (cmake --build build/release)" >&2; exit 2; }
done
command -v nats-server >/dev/null || { echo "cluster.sh: needs nats-server (scripts/install-deps.sh test)" >&2; exit 2; }
mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/runs/*

PIDS=()
TMP=$(mktemp -d /tmp/flushout-bench-cluster.XXXX)
stop_all() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
    rm -rf "${TMP:?}"/*
}
trap 'stop_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits for a TCP port to accept.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "cluster.sh: nothing listens on $1" >&2
    return 1
}

NATS_URL=
start_nats() {
    local port
    port=$(free_port)
    taskset -c "$OTHER_CPUS" nats-server -js -a 127.0.0.1 -p "$port" -sd "$TMP/js" >"$TMP/nats.log" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
    NATS_URL=nats://127.0.0.1:$port
}

# start_hubs N TAG STORE-ARGS...: N hubs; URLS gets their WebSocket URLs, comma-separated.
URLS=
start_hubs() {
    local n=$1 tag=$2 i port
    shift 2
    URLS=
    for ((i = 0; i < n; i++)); do
        port=$(free_port)
        mkdir -p "$TMP/hub$i"
        bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$HUB_CPUS" "$HUB" \
            --listen "127.0.0.1:$port" --data "$TMP/hub$i" --conn-rate 0 --flush-rate 0 \
            --bytes-rate 0 --overload-lag-ms 0 --max-connections 19000 "$@" \
            2>"$tag-hub$i.log" &
        PIDS+=($!)
        wait_port "$port"
        URLS+="${URLS:+,}ws://127.0.0.1:$port/v1/ws"
    done
}

bench() {
    local tag=$1
    shift
    bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$OTHER_CPUS" "$BENCH" --url "$URLS" \
        --json --no-progress --print-errors 5 --warmup "$WARMUP" --duration "$DURATION" \
        --check-every 16 "$@" >"$tag.json" 2>"$tag.err" ||
        echo "  ($(basename "$tag"): failures, see $tag.err)" >&2
}

# run SCN VARIANT HUBS STORE BENCH-ARGS...: STORE nats, nats-opt (--optimistic), sqlite
# or memory
run() {
    local scn=$1 variant=$2 hubs=$3 store=$4 r
    shift 4
    for r in $(seq "$RUNS"); do
        local tag=$OUT/runs/$scn-$variant-$r
        case $store in
        nats) start_nats; start_hubs "$hubs" "$tag" --cluster "$NATS_URL"; sleep 1 ;;
        nats-opt) start_nats; start_hubs "$hubs" "$tag" --cluster "$NATS_URL" --optimistic ;;
        sqlite) start_hubs "$hubs" "$tag" --store sqlite ;;
        memory) start_hubs "$hubs" "$tag" --store memory ;;
        esac
        bench "$tag" "$@"
        stop_all
    done
}

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
A=(--connections 100 --models 10 --commands 1)
C=(--connections 1000 --models 1000 --commands 1)
X=(--connections 30 --models 1 --writers 30 --subscribers 0 --commands 1)
if want a; then for h in 1 2 3; do echo "a: $h hub(s) on one nats-server" >&2; run a "${h}hub" "$h" nats "${A[@]}"; done; fi
if want c; then for h in 1 2 3; do echo "c: $h hub(s) on one nats-server" >&2; run c "${h}hub" "$h" nats "${C[@]}"; done; fi
if want x; then
    echo "x: one model, 30 writers, 1 hub" >&2; run x 1hub 1 nats "${X[@]}"
    echo "x: one model, 30 writers, 3 hubs forwarding to the owner" >&2; run x 3hub 3 nats "${X[@]}"
    echo "x: one model, 30 writers, 3 hubs, --optimistic" >&2; run x 3hub-opt 3 nats-opt "${X[@]}"
fi
if want s; then for s in nats sqlite memory; do echo "s: one hub on $s" >&2; run s "$s" 1 "$s" "${A[@]}"; done; fi

# cold LABEL HUB-ARGS...: scenario l for one setting; appends a line to $OUT/coldload.txt.
cold() {
    local label=$1 r t0 t1 hub count ms=()
    shift
    start_nats
    start_hubs 1 "$OUT/runs/l-$label" --cluster "$NATS_URL" "$@"
    bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$OTHER_CPUS" "$BENCH" --url "$URLS" \
        --no-progress --print-errors 5 --warmup 0 --duration 600 --connections 10 --models 1 \
        --writers 10 --subscribers 0 --flushes "$LOAD_FLUSHES" >"$OUT/runs/l-$label-write.txt" 2>&1 ||
        echo "  (l-$label: the writes failed, see $OUT/runs/l-$label-write.txt)" >&2
    for r in $(seq "$RUNS"); do
        hub=${PIDS[${#PIDS[@]} - 1]}
        kill -TERM "$hub"
        wait "$hub" 2>/dev/null || true
        unset 'PIDS[${#PIDS[@]}-1]'
        start_hubs 1 "$OUT/runs/l-$label-$r" --cluster "$NATS_URL" "$@"
        t0=$(date +%s%N)
        "$CLI" --url "$URLS" --timeout 60 get bench-0 >"$TMP/get.json"
        t1=$(date +%s%N)
        ms+=($(((t1 - t0) / 1000000)))
    done
    count=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["commandCount"])' "$TMP/get.json")
    python3 - "$label" "$count" "${ms[@]}" >>"$OUT/coldload.txt" <<'PY'
import statistics, sys
label, count, ms = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:]]
print(f"l  {label:<10} {count:>7} commands  first get after a restart: median {statistics.median(ms)} ms  (runs: {' '.join(map(str, ms))})")
PY
    stop_all
}
if want l; then
    CLI=$BUILD/clients/flushout
    [ -x "$CLI" ] || { echo "cluster.sh: $CLI not built" >&2; exit 2; }
    rm -f "$OUT/coldload.txt"
    echo "l: cold loads, default retention" >&2; cold retained
    echo "l: cold loads, nothing purged (--snapshot-every 1000000000)" >&2
    cold whole --snapshot-every 1000000000
fi

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import glob, json, os, statistics, sys
out = sys.argv[1]
rows = {}
for p in sorted(glob.glob(f"{out}/runs/*.json")):
    name = os.path.basename(p)[:-5]
    key = name.rsplit("-", 1)[0]
    try:
        j = json.load(open(p))
    except Exception:
        continue
    rows.setdefault(key, []).append(j)
def med(js, f):
    v = [j.get(f) for j in js if isinstance(j.get(f), (int, float))]
    return statistics.median(v) if v else None
print(f"{'run':<14} {'n':>2} {'flushes/s':>10} {'pushes/s':>10} {'ack p50':>8} {'ack p99':>8} {'errors':>7}  (medians)")
for key, js in rows.items():
    def fmt(f, d=0):
        v = med(js, f)
        return "-" if v is None else f"{v:.{d}f}"
    print(f"{key:<14} {len(js):>2} {fmt('flushes_per_sec'):>10} {fmt('pushes_per_sec'):>10} "
          f"{fmt('ack_p50_ms', 2):>8} {fmt('ack_p99_ms', 2):>8} {fmt('errors'):>7}")
if os.path.exists(f"{out}/coldload.txt"):
    print(open(f"{out}/coldload.txt").read(), end="")
EOF
