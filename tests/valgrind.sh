#!/usr/bin/env bash
# valgrind.sh - the core's unit tests and a hub session under valgrind (memcheck), on the
# dev preset (no sanitizers: valgrind and ASan do not mix). Part of `make test`.
#
#   tests/valgrind.sh BUILD_DIR      (e.g. build/dev)
# Prints one line per check and `valgrind: N passed, N failed` last; exit 0 only when all pass.
set -uo pipefail

build=${1:?usage: tests/valgrind.sh BUILD_DIR}
vg=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --trace-children=yes)
pass=0
fail=0
tmp=$(mktemp -d /tmp/fo-valgrind.XXXXXX)
hub_pid=
cleanup() {
    [ -n "$hub_pid" ] && kill -KILL "$hub_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

check() { # name, command...
    local name=$1
    shift
    if "$@" >"$tmp/$name.log" 2>&1; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name"
        tail -40 "$tmp/$name.log"
    fi
}

if ! command -v valgrind >/dev/null; then
    echo "valgrind: not installed (scripts/install-deps.sh test installs it)" >&2
    exit 1
fi

for t in value doc pathmap batch master proxy wire wire_decode splice json ws rules console origin config walbuf sendq; do
    check "test_$t" "${vg[@]}" "$build/tests/test_$t" --jobs 1
done

# start_hub LOG ARGS...: a memory-store hub under valgrind on a free loopback port; sets
# hub_pid and port (the caller's `local port`). stop_hub LOG: SIGTERM, and it must exit 0.
start_hub() {
    local log=$1
    shift
    "${vg[@]}" "$build/hub/flushout-hub" --listen 127.0.0.1:0 --store memory "$@" 2>"$log" &
    hub_pid=$!
    for _ in $(seq 1 200); do
        port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | cut -d: -f2)
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    cat "$log"
    return 1
}
stop_hub() {
    local rc
    kill -TERM "$hub_pid"
    wait "$hub_pid"
    rc=$?
    hub_pid=
    [ $rc -eq 0 ] || { tail -40 "$1"; return 1; }
}

# A hub session: start, apply, read back, SIGTERM; the hub must exit 0 with no error.
hub_session() {
    local log=$tmp/hub.log port
    start_hub "$log" --sequential-ids || return 1
    local url=ws://127.0.0.1:$port/v1/ws cli=$build/clients/flushout
    "$cli" --url "$url" --timeout 20 apply vg '{"action":"update","props":{"a":1}}' \
        '{"action":"update","props":{"b":[1,"x"],"c":{"d":null}}}' \
        '{"action":"delete","path":["a"]}' >/dev/null || return 1
    [ "$("$cli" --url "$url" --timeout 20 get vg)" = \
      '{"commandCount":3,"document":{"b":[1,"x"],"c":{"d":null}}}' ] || return 1
    # The console's model list and details (an open hub on loopback).
    curl -sf "http://127.0.0.1:$port/v1/console/models" | grep -q '"name":"vg"' || return 1
    curl -sf "http://127.0.0.1:$port/v1/console/models/vg" | grep -q '"count":3' || return 1
    stop_hub "$log"
}
check hub_session hub_session

# A hub that takes signed tokens: a good one, a forged one (refused at the upgrade), and a
# connection closed at its token's exp (the expiry timer and the session's own rights).
hub_jwt_session() {
    local log=$tmp/hub-jwt.log port secret=$tmp/secret cli=$build/clients/flushout
    printf 'valgrind-secret-0123456789abcdef-0123456789\n' >"$secret"
    start_hub "$log" --jwt-secret-file "$secret" || return 1
    local url=ws://127.0.0.1:$port/v1/ws tok short
    tok=$("$cli" token --secret-file "$secret" --sub vg --models 'vg*=rw' --ttl 1h) || return 1
    "$cli" --url "$url" --token "$tok" --timeout 20 apply vg '{"action":"update","props":{"a":1}}' \
        >/dev/null || return 1
    "$cli" --url "$url" --token "${tok%?}x" --timeout 20 get vg >/dev/null 2>&1 && return 1
    short=$("$cli" token --secret-file "$secret" --sub vg --models 'vg*=r' --ttl 2) || return 1
    # watch until the hub closes it at exp: "connection ... lost" (exit 3), not the timeout (4)
    "$cli" --url "$url" --token "$short" --timeout 15 watch vg >/dev/null 2>&1
    [ $? -eq 3 ] || return 1
    grep -q 'token of vg expired' "$log" || return 1
    # SIGHUP with a rotated secret (hub/reload.c): the new key signs, the old token is refused;
    # then a secret too short keeps the rotated one.
    printf 'valgrind-rotated-0123456789abcdef-0123456789\n' >"$secret"
    kill -HUP "$hub_pid"
    hup_wait() { for _ in $(seq 1 100); do grep -q "$1" "$log" && return 0; sleep 0.1; done; return 1; }
    hup_wait 'SIGHUP: tokens reloaded' || return 1
    "$cli" --url "$url" --token "$tok" --timeout 20 get vg >/dev/null 2>&1 && return 1
    tok=$("$cli" token --secret-file "$secret" --sub vg --models 'vg*=rw' --ttl 1h) || return 1
    "$cli" --url "$url" --token "$tok" --timeout 20 get vg >/dev/null || return 1
    printf 'short' >"$secret"
    kill -HUP "$hub_pid"
    hup_wait 'SIGHUP: tokens not reloaded' || return 1
    "$cli" --url "$url" --token "$tok" --timeout 20 get vg >/dev/null || return 1
    stop_hub "$log"
}
check hub_jwt_session hub_jwt_session

# Limits (hub/limits.h): the per-address table (refused at the third upgrade in a row, freed
# at exit), an idle connection pinged and closed, flushes through the token buckets.
hub_limits_session() {
    local log=$tmp/hub-limits.log port cli=$build/clients/flushout url code
    start_hub "$log" --conn-rate 1 --idle-timeout-ms 1000 --flush-rate 5 || return 1
    url=ws://127.0.0.1:$port/v1/ws
    "$cli" --url "$url" --timeout 20 apply vl '{"action":"update","props":{"a":1}}' \
        '{"action":"update","props":{"b":2}}' >/dev/null || return 1
    # Three upgrades at once: two pass (the burst of --conn-rate 1 is 2; the CLI's was
    # long enough ago to have refilled), stay silent and are closed idle; the third is 429.
    up() {
        curl -s -o /dev/null -w '%{http_code}' --max-time 6 -H 'Connection: Upgrade' \
            -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
            -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "http://127.0.0.1:$port/v1/ws"
    }
    sleep 2
    up >"$tmp/up1" &
    local p1=$!
    up >"$tmp/up2" &
    local p2=$!
    sleep 0.5
    code=$(up)
    wait "$p1" "$p2"
    [ "$code" = 429 ] || { echo "third upgrade at once: $code"; return 1; }
    [ "$(cat "$tmp/up1")$(cat "$tmp/up2")" = 101101 ] || { echo "upgrades: $(cat "$tmp"/up?)"; return 1; }
    grep -q 'idle for' "$log" || { echo "no idle close"; return 1; }
    stop_hub "$log"
}
check hub_limits_session hub_limits_session
# A hub with TLS (a certificate made here): wss through the CLI (apply, get, audit over
# https), https through the relay to lws (curl), a plain request refused, a garbage
# handshake; then SIGTERM.
hub_tls_session() {
    local log=$tmp/hub-tls.log port cli=$build/clients/flushout
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || return 1
    start_hub "$log" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" || return 1
    local url=wss://127.0.0.1:$port/v1/ws
    "$cli" --url "$url" --ca "$tmp/cert.pem" --timeout 20 apply vg \
        '{"action":"update","props":{"a":1}}' >/dev/null || return 1
    [ "$(FLUSHOUT_CA=$tmp/cert.pem "$cli" --url "$url" --timeout 20 get vg)" = \
      '{"commandCount":1,"document":{"a":1}}' ] || return 1
    "$cli" --url "$url" --ca "$tmp/cert.pem" --timeout 20 audit vg >/dev/null || return 1
    "$cli" --url "$url" --timeout 20 get vg >/dev/null 2>&1 && return 1 # not trusted
    curl -sf --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/healthz" | grep -q ok || return 1
    curl -sf --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/metrics" >/dev/null || return 1
    curl -s "http://127.0.0.1:$port/healthz" | grep -q 'speaks TLS' || return 1
    printf '\x16\x03\x01\x00\x05hello' | timeout 10 curl -s "telnet://127.0.0.1:$port" \
        >/dev/null 2>&1
    stop_hub "$log"
}
check hub_tls_session hub_tls_session
# The NATS JetStream store against a real nats-server (not run under valgrind itself: a Go
# binary); the 19 MiB large-commit test is left to the ASan run. nats.c's own threads are
# "possibly lost" at exit by design: only definite leaks count, as everywhere here.
if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
    check test_store_nats "${vg[@]}" --trace-children-skip='*nats-server*' \
        "$build/tests/test_store_nats" --jobs 1 --filter 'store_nats/[!l]*'
else
    echo "skip test_store_nats: no nats-server (scripts/install-deps.sh test installs it)"
fi

# Two hubs on one nats-server (--cluster: hub/follow.c, hub/peers.c), both under valgrind:
# writes through each (one of them forwarded to the model's owner), the other hub follows;
# both stop cleanly.
hub_cluster_session() {
    local nats=${FO_NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
    local np nats_pid logs=() pids=() ports=() port i cli=$build/clients/flushout url got
    np=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$nats" -js -a 127.0.0.1 -p "$np" -sd "$tmp/js" >"$tmp/nats.log" 2>&1 &
    nats_pid=$!
    for _ in $(seq 1 100); do grep -q "Server is ready" "$tmp/nats.log" && break; sleep 0.1; done
    for i in 0 1; do
        start_hub "$tmp/hub-cl$i.log" --sequential-ids --cluster "nats://127.0.0.1:$np" ||
            { kill "$nats_pid"; return 1; }
        pids[i]=$hub_pid
        ports[i]=$port
    done
    sleep 1.5 # the hubs hear each other (announcements every 500 ms)
    for i in 0 1; do
        url=ws://127.0.0.1:${ports[i]}/v1/ws
        "$cli" --url "$url" --timeout 30 apply vc "{\"action\":\"update\",\"props\":{\"h$i\":$i}}" \
            >/dev/null || { kill "$nats_pid"; return 1; }
    done
    for _ in $(seq 1 50); do
        got=$("$cli" --url "ws://127.0.0.1:${ports[0]}/v1/ws" --timeout 20 get vc)
        [ "$got" = '{"commandCount":2,"document":{"h0":0,"h1":1}}' ] && break
        sleep 0.2
    done
    [ "$got" = '{"commandCount":2,"document":{"h0":0,"h1":1}}' ] || { echo "got $got"; kill "$nats_pid"; return 1; }
    for i in 0 1; do
        hub_pid=${pids[i]}
        stop_hub "$tmp/hub-cl$i.log" || { kill "$nats_pid"; return 1; }
    done
    kill "$nats_pid"
    wait "$nats_pid" 2>/dev/null
    return 0
}
if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
    check hub_cluster_session hub_cluster_session
else
    echo "skip hub_cluster_session: no nats-server"
fi

echo "valgrind: $pass passed, $fail failed"
[ $fail -eq 0 ]
