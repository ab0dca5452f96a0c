#!/usr/bin/env bash
# install_test.sh BUILD_DIR HUB CC [CFLAGS...] - `cmake --install` the build into a fresh
# prefix, compile clients/c/example.c against the installed header, library and
# flushout-client.pc only, and run it (and the installed `flushout`) against a hub
# started here. Ends with `N passed, M failed`.
set -u
BUILD=${1:?}
HUB=${2:?}
CC=${3:?}
shift 3
SRC=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d /tmp/fo-test-install-XXXXXX)
HUB_PID=
passed=0
failed=0
trap '[ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null && wait "$HUB_PID" 2>/dev/null; rm -rf "$DIR"' EXIT

result() {
    if [ "$1" = 0 ]; then passed=$((passed + 1)); echo "ok: $2"; else failed=$((failed + 1)); echo "FAIL: $2"; fi
}

cmake --install "$BUILD" --prefix "$DIR/prefix" >"$DIR/install.log" 2>&1
result $? "cmake --install"
for f in include/flushout/client.h include/flushout/proto/wire.h lib/libflushout-client.so \
    lib/pkgconfig/flushout-client.pc bin/flushout; do
    [ -e "$DIR/prefix/$f" ]
    result $? "installed $f"
done
export PKG_CONFIG_PATH="$DIR/prefix/lib/pkgconfig"
# shellcheck disable=SC2046 # pkg-config output is meant to be split
"$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror "$@" "$SRC/example.c" \
    $(pkg-config --cflags --libs flushout-client) -o "$DIR/example" 2>"$DIR/cc.log"
result $? "example.c builds with pkg-config --cflags --libs flushout-client"
cat "$DIR/cc.log"
# Found where it was installed, with no LD_LIBRARY_PATH (the .pc file's rpath).
unset LD_LIBRARY_PATH
ldd "$DIR/example" | grep -q "libflushout-client.so.0 => $DIR/prefix/lib/"
result $? "the example finds the installed library without LD_LIBRARY_PATH ($(ldd "$DIR/example" | grep flushout-client))"
out=$("$DIR/example" http://127.0.0.1:1/v1/ws demo 2>&1)
[ "$out" = "example: url: http:// is the hub's HTTP address; its WebSocket URL is ws://HOST:PORT/v1/ws" ]
result $? "a bad URL is explained (got: $out)"
"$DIR/prefix/bin/flushout" --version | grep -q '^flushout [0-9]'
result $? "installed flushout --version"

"$HUB" --listen 127.0.0.1:0 --store memory >"$DIR/hub.log" 2>&1 &
HUB_PID=$!
for _ in $(seq 1 500); do
    grep -q 'listening on' "$DIR/hub.log" && break
    sleep 0.02
done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DIR/hub.log" | head -n1)
URL=ws://127.0.0.1:$PORT/v1/ws
out=$(timeout 30 "$DIR/example" "$URL" demo)
[ $? = 0 ] && [ "$out" = '{"hello":"world"}' ]
result $? "example app round trip (got: $out)"
out=$(timeout 30 "$DIR/prefix/bin/flushout" --url "$URL" get demo)
[ "$out" = '{"commandCount":1,"document":{"hello":"world"}}' ]
result $? "installed flushout get (got: $out)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
