#!/bin/sh
# The data directory's faults at start, against the real binary: a clear message and the
# documented exit code (README: 3 the data directory cannot be used, 4 another hub holds it).
#   tests/test_faults.sh HUB_BINARY
# The read-only cases need a read-only file system: as root, a tmpfs mounted read-only (and a
# read-only bind mount of the database) in a private mount namespace (unshare -m); as another
# user, chmod. Where neither works the script runs the rest and exits 77 (ctest: skipped).
set -u
HUB=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fo-faults.XXXXXX")
fails=0
skipped=""
pids=""

cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    chmod -R u+w "$TMP" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# run NAME WANT_EXIT NEEDLE [PREFIX...] -- ARGS...: runs the hub (PREFIX: a wrapper such as
# `unshare -m sh -c ...`) and checks its exit code and that its log has NEEDLE.
expect_exit() {
    name=$1 want=$2 needle=$3
    shift 3
    log="$TMP/$name.log"
    timeout 20 "$@" >"$log" 2>&1
    got=$?
    if [ "$got" != "$want" ]; then
        fail "$name: exit $got, want $want"
        sed 's/^/    /' "$log" | tail -5
    elif ! grep -q -- "$needle" "$log"; then
        fail "$name: exit $got but the log does not say '$needle'"
        sed 's/^/    /' "$log" | tail -5
    else
        echo "ok: $name: exit $got: $(grep -m1 ERROR "$log" | sed 's/^[^ ]* //')"
    fi
}

# Starts a hub in the background on $1; sets HUB_PID once it listens. The log is emptied
# here first: the child's own `>` runs after the fork, and until then the grep below would
# read the previous hub's "listening on" (and a second hub could win the lock race).
start_hub() {
    : >"$TMP/bg.log"
    "$HUB" --listen 127.0.0.1:0 --store sqlite --data "$1" >"$TMP/bg.log" 2>&1 &
    HUB_PID=$!
    pids="$pids $HUB_PID"
    i=0
    while ! grep -q "listening on" "$TMP/bg.log"; do
        i=$((i + 1))
        if [ $i -gt 200 ] || ! kill -0 "$HUB_PID" 2>/dev/null; then
            fail "the hub on $1 did not start"
            cat "$TMP/bg.log"
            return 1
        fi
        sleep 0.05
    done
}

stop_hub() {
    kill -TERM "$HUB_PID"
    wait "$HUB_PID"
    st=$?
    [ "$st" = 0 ] || fail "SIGTERM: exit $st, want 0"
}

H="$HUB --listen 127.0.0.1:0 --store sqlite --data"

: >"$TMP/file"
expect_exit under_a_file 3 "cannot create the data dir" $H "$TMP/file/data"
expect_exit data_is_a_file 3 "not a directory" $H "$TMP/file"
mkdir "$TMP/junk" && printf 'this is not a database, only some text' >"$TMP/junk/flushout.db"
expect_exit not_a_database 3 "not a database" $H "$TMP/junk"

# A missing directory is created (with its parents), and says so.
if start_hub "$TMP/new/a/b"; then
    grep -q "created the data dir" "$TMP/bg.log" || fail "missing: no 'created the data dir' line"
    stop_hub
    [ -f "$TMP/new/a/b/flushout.db" ] || fail "missing: no database in the created directory"
    echo "ok: missing: created"
fi

# Another hub already runs on it.
mkdir "$TMP/locked"
if start_hub "$TMP/locked"; then
    expect_exit locked 4 "in use by another process" $H "$TMP/locked"
    stop_hub
fi

# Read-only: the directory, then the database file alone.
mkdir "$TMP/ro" "$TMP/rodb"
if start_hub "$TMP/rodb"; then stop_hub; fi
if [ "$(id -u)" = 0 ]; then
    if unshare -m true 2>/dev/null; then
        expect_exit ro_dir 3 "not writable" unshare -m sh -c \
            'mount --make-rprivate / && mount -t tmpfs -o ro,size=1m fo-faults "$1" && shift && exec "$@"' \
            sh "$TMP/ro" $H "$TMP/ro"
        expect_exit ro_database 3 "read-only" unshare -m sh -c \
            'mount --make-rprivate / && mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"' \
            sh "$TMP/rodb/flushout.db" $H "$TMP/rodb"
    else
        skipped="root without unshare -m (no CAP_SYS_ADMIN?): the read-only cases were NOT tested"
    fi
else
    chmod 0500 "$TMP/ro"
    expect_exit ro_dir 3 "not writable" $H "$TMP/ro"
    chmod 0444 "$TMP/rodb/flushout.db"
    expect_exit ro_database 3 "read-only" $H "$TMP/rodb"
fi

if [ $fails -gt 0 ]; then
    echo "$fails failed"
    exit 1
fi
if [ -n "$skipped" ]; then
    echo "SKIP: $skipped"
    exit 77
fi
echo "all passed"
