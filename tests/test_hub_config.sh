#!/usr/bin/env bash
# test_hub_config.sh HUB - the real flushout-hub's configuration: --config FILE, FLUSHOUT_*
# variables, flags, their precedence as --print-config shows it, --print-config saved and read
# back, and the errors (exit 2, one line naming the file and line, the variable or the flag).
# Starts no hub (--print-config exits). Ends with `N passed, M failed`; exit 1 on a failure.
set -u
HUB=${1:?usage: test_hub_config.sh HUB}
DIR=$(mktemp -d /tmp/fo-test-hub-config-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
passed=0
failed=0
# Only the variables set here reach the hub.
for v in $(env | sed -n 's/^\(FLUSHOUT_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; shift; printf '  %s\n' "$@"; }

# run NAME RC STDERR [ENV=V...] -- ARGS...: exit code and stderr compared exactly; stdout in
# $DIR/out.
run() {
    local name=$1 rc=$2 err=$3 envs=() got_rc got_err
    shift 3
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" "$HUB" "$@" >"$DIR/out" 2>"$DIR/err"
    got_rc=$?
    got_err=$(cat "$DIR/err")
    if [ "$got_rc" = "$rc" ] && [ "$got_err" = "$err" ]; then
        ok "$name"
    else
        fail "$name" "exit: got $got_rc, want $rc" "stderr: got  $got_err" "        want $err"
    fi
}

# has NAME LINE...: each LINE is a whole line of $DIR/out.
has() {
    local name=$1 l
    shift
    for l in "$@"; do
        grep -qxF -- "$l" "$DIR/out" || { fail "$name" "missing line: $l" "in: $(cat "$DIR/out")"; return; }
    done
    ok "$name"
}

cat >"$DIR/hub.ini" <<'INI'
# the hub's settings
history = 10
snapshot-every = 11
max-frame = 12K
store = memory
allowed-origins = https://app.example.com,
    https://admin.example.com:8443
INI

# Precedence: flags > environment > file > defaults, and where each value came from.
run "print-config: file, environment, flags" 0 '' FLUSHOUT_HISTORY=20 FLUSHOUT_SNAPSHOT_EVERY=21 \
    FLUSHOUT_LOG_FORMAT=json -- --config "$DIR/hub.ini" --history 30 --sequential-ids --print-config
has "print-config: values and sources" \
    "# from the command line: --history" "history = 30" \
    "# from the environment: FLUSHOUT_SNAPSHOT_EVERY" "snapshot-every = 21" \
    "# from $DIR/hub.ini" "max-frame = 12K" "store = memory" \
    "allowed-origins = https://app.example.com,https://admin.example.com:8443" \
    "# from the environment: FLUSHOUT_LOG_FORMAT" "log-format = json" \
    "# from the command line: --sequential-ids" "sequential-ids = true" \
    "memory-budget = 512M" "listen = 127.0.0.1:7420" "data = ./data" "static =" "log-level = info"
keys=$(grep -v '^#' "$DIR/out" | sed 's/ =.*//' | tr '\n' ' ')
want="listen data store history snapshot-every memory-budget max-frame max-queue static console-dir auth jwt-secret-file jwt-public-key interceptors rule-instructions rule-time-ms rule-memory allowed-origins sequential-ids log-level log-format "
case "$keys" in
"$want"*) ok "print-config: every key" ;;
*) fail "print-config: every key" "got  $keys" "want $want..." ;;
esac

# Saved and read back: the same settings.
cp "$DIR/out" "$DIR/saved.ini"
grep -v '^#' "$DIR/saved.ini" >"$DIR/saved.values"
run "print-config read back" 0 '' -- --config "$DIR/saved.ini" --print-config
if grep -v '^#' "$DIR/out" | cmp -s - "$DIR/saved.values"; then ok "read back: same values"; else
    fail "read back: same values" "$(grep -v '^#' "$DIR/out" | diff "$DIR/saved.values" -)"
fi
FLUSHOUT_CONFIG="$DIR/saved.ini" "$HUB" --print-config >"$DIR/out2" 2>&1
if grep -v '^#' "$DIR/out2" | cmp -s - "$DIR/saved.values"; then ok "FLUSHOUT_CONFIG"; else
    fail "FLUSHOUT_CONFIG" "$(cat "$DIR/out2")"
fi

# Errors: exit 2, one clear line.
printf 'history = 5\nmax-frame = huge\n' >"$DIR/bad.ini"
run "file: bad value, with its line" 2 \
    "flushout-hub: $DIR/bad.ini:2: bad value for max-frame: 'huge' (see --help)" -- --config "$DIR/bad.ini"
printf '\nmemory_budget = 1G\n' >"$DIR/bad.ini"
run "file: unknown key" 2 \
    "flushout-hub: $DIR/bad.ini:2: unknown setting 'memory_budget' (see --help)" -- --config "$DIR/bad.ini"
run "file: unreadable" 2 \
    "flushout-hub: cannot read the config file $DIR/none.ini: No such file or directory" -- --config "$DIR/none.ini"
run "environment: bad value" 2 \
    "flushout-hub: bad value for FLUSHOUT_MEMORY_BUDGET: 'lots' (see --help)" FLUSHOUT_MEMORY_BUDGET=lots -- --print-config
run "flag: bad value" 2 "flushout-hub: bad value for --history: 'x' (see --help)" -- --history x
run "flag: unknown" 2 "flushout-hub: unknown or incomplete option '--bogus' (see --help)" -- --bogus
run "config: no file" 2 "flushout-hub: unknown or incomplete option '--config' (see --help)" -- --config
# Every source is checked, even one that a flag overrides.
run "environment checked under a flag" 2 \
    "flushout-hub: bad value for FLUSHOUT_HISTORY: 'x' (see --help)" FLUSHOUT_HISTORY=x -- --history 5

# --help documents every key of --print-config.
"$HUB" --help >"$DIR/help"
missing=""
for k in $keys config print-config help version; do
    grep -q -- "^  --$k[ ]" "$DIR/help" || missing="$missing $k"
done
if [ -z "$missing" ]; then ok "--help documents every setting"; else fail "--help" "missing:$missing"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
