# shellcheck shell=bash
# lib.sh - what bench/run.sh and bench/sweep.sh share: checking their tools and starting
# and stopping one pinned server (the hub or the Node peer) at a time. Sourced, not run.
# The caller sets ROOT, BUILD, SERVERS, SRV_CPU and FO_BENCH_NAME (for messages).

HUB=$BUILD/hub/flushout-hub
BENCH=$BUILD/bench/flushout-bench
FLOOR=$BUILD/bench/fo-floor
PEER=$ROOT/bench/peer/server.mjs
SRV_PID=
PORT=

fo_bench_check_tools() {
    local b
    for b in "$HUB" "$BENCH"; do
        [ -x "$b" ] || { echo "$FO_BENCH_NAME: $b not built (make build)" >&2; exit 2; }
    done
    command -v python3 >/dev/null || { echo "$FO_BENCH_NAME: needs python3" >&2; exit 2; }
    command -v taskset >/dev/null || { echo "$FO_BENCH_NAME: needs taskset (util-linux)" >&2; exit 2; }
    case ",$SERVERS," in *,peer,*)
        command -v node >/dev/null ||
            { echo "$FO_BENCH_NAME: needs node for the peer (or --servers hub)" >&2; exit 2; }
        [ -d "$ROOT/bench/peer/node_modules/ws" ] ||
            (cd "$ROOT/bench/peer" && npm ci --no-audit --no-fund --loglevel=error >&2) ;;
    esac
}

# Stops the running server: SIGTERM, then SIGKILL after 5 s (reported).
stop_srv() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SRV_PID" 2>/dev/null; then
            echo "$FO_BENCH_NAME: server $SRV_PID ignored SIGTERM; killing" >&2
            kill -KILL "$SRV_PID" 2>/dev/null || true
        fi
        wait "$SRV_PID" 2>/dev/null || true
    fi
    SRV_PID=
}

# start_srv KIND LOG [HUB-ARGS...]: KIND hub or peer; sets SRV_PID and PORT. The server
# gets `ulimit -n 20000` (10k idle connections) and is pinned to SRV_CPU.
start_srv() {
    local kind=$1 log=$2
    shift 2
    if [ "$kind" = peer ]; then
        bash -c 'ulimit -n 20000; exec taskset -c "$0" node "$@"' "$SRV_CPU" "$PEER" \
            --listen 127.0.0.1:0 2>"$log" &
    else
        # FO_BENCH_INTERCEPTORS=bench/rules/stamp.lua: every hub runs with that rules file
        # (the stamping rule on every command; compare with a run without it).
        # Thousands of connections from one address, flushes as fast as the hub takes them:
        # the per-address and per-connection rates and overload shedding are off (the
        # capacity is what is measured, as against the peer, which sheds nothing).
        bash -c 'ulimit -n 20000; exec taskset -c "$0" "$@"' "$SRV_CPU" "$HUB" \
            --listen 127.0.0.1:0 --conn-rate 0 --flush-rate 0 --bytes-rate 0 --overload-lag-ms 0 \
            --max-connections 19000 ${FO_BENCH_INTERCEPTORS:+--interceptors "$FO_BENCH_INTERCEPTORS"} \
            "$@" 2>"$log" &
    fi
    SRV_PID=$!
    PORT=
    for _ in $(seq 150); do
        PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" 2>/dev/null | head -1 | cut -d: -f2 || true)
        [ -n "$PORT" ] && return 0
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$FO_BENCH_NAME: $kind did not start; log:" >&2
    cat "$log" >&2
    exit 1
}

# scrape_metrics PORT FILE: GET /metrics of the running server into FILE (empty on failure).
scrape_metrics() {
    python3 - "$1" "$2" <<'PY' || : >"$2"
import sys, urllib.request
try:
    body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read()
except Exception:
    body = b""
open(sys.argv[2], "wb").write(body)
PY
}

# run_floor OUT.json REPEAT DURATION: fo-floor (1 and 10 frames per send to 1000 loopback
# sockets), sender pinned to SRV_CPU and drainer to BENCH_CPU, as the servers and the
# generator are.
# Extra arguments go to fo-floor (--modes 1 --io-uring: the floor of the hub's own path).
run_floor() {
    local out=$1 rep=$2 dur=$3
    shift 3
    bash -c 'ulimit -n 20000; exec "$0" "$@"' "$FLOOR" --json --sockets 1000 --modes 1,10 \
        --repeat "$rep" --duration "$dur" --sender-cpu "$SRV_CPU" --drainer-cpu "$BENCH_CPU" \
        "$@" >"$out" 2>"${out%.json}.err" ||
        echo "$FO_BENCH_NAME: fo-floor failed, see ${out%.json}.err" >&2
}
