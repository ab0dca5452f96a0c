#!/usr/bin/env bash
# A Flushout cluster on this machine's loopback: three nats-server nodes forming one
# JetStream cluster, and hubs on it (--cluster), each its own process.
#
#   scripts/cluster.sh up [HUBS]   start (HUBS hubs, default 3); prints their URLs
#   scripts/cluster.sh status      what runs
#   scripts/cluster.sh down        stop what `up` started (by the pids it wrote), keep data
#   scripts/cluster.sh clean       down, then remove the data
#
# Ports: NATS clients 4222-4224, routes 6222-6224, monitoring 8222-8224; hubs 7421, 7422, ...
# Data and logs: $FO_CLUSTER_DIR (default /tmp/flushout-cluster). The hub binary:
# $FO_HUB_BIN, else build/release/hub/flushout-hub (built if missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${FO_CLUSTER_DIR:-/tmp/flushout-cluster}
hub=${FO_HUB_BIN:-$root/build/release/hub/flushout-hub}
nats_urls="nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits up to $2 seconds for "$1" (a command) to succeed.
wait_for() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if eval "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

start_nats() {
    local i routes="nats://127.0.0.1:6222,nats://127.0.0.1:6223,nats://127.0.0.1:6224"
    command -v nats-server >/dev/null || { echo "no nats-server: scripts/install-deps.sh test" >&2; exit 1; }
    for i in 0 1 2; do
        alive "$dir/n$i.pid" && continue
        mkdir -p "$dir/n$i"
        nats-server -n "n$i" -a 127.0.0.1 -p $((4222 + i)) -m $((8222 + i)) -js -sd "$dir/n$i" \
            --cluster_name flushout --cluster "nats://127.0.0.1:$((6222 + i))" --routes "$routes" \
            >>"$dir/n$i.log" 2>&1 &
        echo $! >"$dir/n$i.pid"
    done
    # JetStream answers once the nodes have elected a meta leader.
    if ! wait_for "curl -sf 'http://127.0.0.1:8222/jsz' | grep -q '\"meta_cluster\"' && \
                   curl -sf 'http://127.0.0.1:8222/jsz' | grep -q '\"leader\"'" 20; then
        echo "the NATS cluster did not elect a JetStream leader within 20 s (logs: $dir/n*.log)" >&2
        exit 1
    fi
}

start_hubs() {
    local n=$1 i port
    if [ ! -x "$hub" ]; then
        (cd "$root" && cmake --preset release >/dev/null && cmake --build build/release -j2 --target flushout-hub >/dev/null)
    fi
    for ((i = 0; i < n; i++)); do
        port=$((7421 + i))
        alive "$dir/hub$i.pid" && continue
        mkdir -p "$dir/hub$i"
        # The stream is created by the first hub; a node still joining may refuse at first.
        "$hub" --listen "127.0.0.1:$port" --data "$dir/hub$i" --cluster "$nats_urls" \
            >>"$dir/hub$i.log" 2>&1 &
        echo $! >"$dir/hub$i.pid"
        if ! wait_for "curl -sf http://127.0.0.1:$port/healthz" 20; then
            echo "hub $i did not start (log: $dir/hub$i.log):" >&2
            tail -5 "$dir/hub$i.log" >&2
            exit 1
        fi
        echo "hub $i: ws://127.0.0.1:$port/v1/ws (pid $(cat "$dir/hub$i.pid"), log $dir/hub$i.log)"
    done
}

stop_all() {
    local f pid
    for f in "$dir"/hub*.pid "$dir"/n*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            wait_for "! kill -0 $pid" 15 || kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}

case "${1:-}" in
up)
    mkdir -p "$dir"
    start_nats
    start_hubs "${2:-3}"
    echo "NATS: $nats_urls (JetStream cluster 'flushout', data in $dir)"
    ;;
status)
    for f in "$dir"/n*.pid "$dir"/hub*.pid; do
        [ -f "$f" ] || continue
        if alive "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "$(basename "$f" .pid): stopped"; fi
    done
    ;;
down) stop_all ;;
clean)
    stop_all
    rm -rf "$dir"
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
