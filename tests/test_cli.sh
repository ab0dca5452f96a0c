#!/usr/bin/env bash
# test_cli.sh FLUSHOUT HUB - scripted round trips of the `flushout` CLI against a real
# flushout-hub started here (memory store, sequential IDs, a free loopback port), with
# exact expected output and exit codes. Only the hubs this script started are signalled.
# Ends with the plain line `N passed, M failed`; exits 1 when something failed.
set -u
F=${1:?usage: test_cli.sh FLUSHOUT HUB}
HUB=${2:?usage: test_cli.sh FLUSHOUT HUB}
DIR=$(mktemp -d /tmp/fo-test-cli-XXXXXX)
HUB_PIDS=()
passed=0
failed=0

cleanup() {
    for pid in "${HUB_PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${HUB_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    rm -rf "$DIR"
}
trap cleanup EXIT

# start_hub NAME [OPTIONS...]: sets PORT and PID. Overload shedding is off (the exact
# stderr checked here would show the CLI's "(retrying)" when a slow turn of an ASan hub on a
# loaded machine sheds a flush); tests/test_hub_limits.c covers it.
start_hub() {
    local name=$1 i
    shift
    "$HUB" --listen 127.0.0.1:0 --store memory --sequential-ids --overload-lag-ms 0 "$@" \
        >"$DIR/$name.log" 2>&1 &
    PID=$!
    HUB_PIDS+=("$PID")
    for i in $(seq 1 500); do
        grep -q 'listening on' "$DIR/$name.log" && break
        sleep 0.02
    done
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DIR/$name.log" | head -n1)
    if [ -z "$PORT" ]; then
        echo "FAIL: the hub did not start:"
        cat "$DIR/$name.log"
        exit 1
    fi
}

# check NAME RC STDOUT STDERR [ARGS...]: runs flushout ARGS (stdin from $IN, if set) and
# compares exit code, stdout and stderr exactly.
check() {
    local name=$1 rc=$2 out=$3 err=$4 got_rc got_out got_err
    shift 4
    got_out=$(printf '%s' "${IN-}" | timeout 30 "$F" "$@" 2>"$DIR/err")
    got_rc=$?
    got_err=$(cat "$DIR/err")
    if [ "$got_rc" = "$rc" ] && [ "$got_out" = "$out" ] && [ "$got_err" = "$err" ]; then
        passed=$((passed + 1))
        echo "ok: $name"
    else
        failed=$((failed + 1))
        echo "FAIL: $name"
        echo "  exit:   got $got_rc, want $rc"
        [ "$got_out" = "$out" ] || printf '  stdout: got  %s\n          want %s\n' "$got_out" "$out"
        [ "$got_err" = "$err" ] || printf '  stderr: got  %s\n          want %s\n' "$got_err" "$err"
    fi
}

start_hub main
MAIN_PID=$PID
export FLUSHOUT_URL=ws://127.0.0.1:$PORT/v1/ws
unset FLUSHOUT_TOKEN

C1='{"action":"create","path":["items"],"parentDefault":{},"props":{"title":"a"}}'
R1='{"applied":{"from":0,"completions":[{"command":{"action":"create","path":["items"],"props":{"title":"a"},"parentDefault":{}},"createdId":"1"}]}}'
C2='{"action":"create","path":["items"],"props":{"title":"b"}}'
C3='{"action":"update","path":["items","1"],"props":{"done":true}}'
R23='{"applied":{"from":1,"completions":[{"command":{"action":"create","path":["items"],"props":{"title":"b"}},"createdId":"2"},{"command":{"action":"update","path":["items","1"],"props":{"done":true}}}]}}'
DOC='{"commandCount":3,"document":{"items":{"1":{"title":"a","done":true},"2":{"title":"b"}}}}'

check "get of a new model" 0 '{"commandCount":0,"document":{}}' '' get todo
check "apply from arguments" 0 "$R1" '' --sequential-ids apply todo "$C1"
IN=$(printf '%s\n\n  \n%s\n' "$C2" "$C3") \
    check "apply JSON lines from stdin" 0 "$R23" '' apply todo --sequential-ids
check "get after apply" 0 "$DOC" '' get todo
check "get --at" 0 '{"commandCount":1,"document":{"items":{"1":{"title":"a"}}}}' '' get todo --at 1
check "get --pretty" 0 '{
  "commandCount": 1,
  "document": {
    "items": {
      "1": {
        "title": "a"
      }
    }
  }
}' '' get todo --at=1 --pretty
check "history --from" 0 \
    '{"from":0,"completions":[{"command":{"action":"create","path":["items"],"props":{"title":"a"},"parentDefault":{}},"createdId":"1"},{"command":{"action":"create","path":["items"],"props":{"title":"b"}},"createdId":"2"},{"command":{"action":"update","path":["items","1"],"props":{"done":true}}}]}' \
    '' history todo --from 0
check "history --from --to" 0 \
    '{"from":1,"completions":[{"command":{"action":"create","path":["items"],"props":{"title":"b"}},"createdId":"2"}]}' \
    '' history todo --from 1 --to 2
check "history beyond the count" 1 '' \
    'flushout: the hub answered bad_request: from: range [9, 3) is outside [0, 3]' \
    history todo --from 9
check "get --at beyond the count" 1 '' \
    'flushout: the hub answered bad_request: at: 7 is beyond the model'"'"'s count 3' \
    get todo --at 7
check "a command that does not apply" 1 '{"applied":{"from":3,"completions":[]}}' \
    'flushout: the command on argument 1 does not apply: No object at document path nope' \
    apply todo '{"action":"update","path":["nope"],"props":{}}'
check "delete, then get" 0 \
    '{"applied":{"from":3,"completions":[{"command":{"action":"delete","path":["items","2"]}}]}}' \
    '' apply todo '{"action":"detete","path":["items","2"]}'
check "get after delete" 0 '{"commandCount":4,"document":{"items":{"1":{"title":"a","done":true}}}}' \
    '' get todo

# Bad input: exit 2, nothing sent.
check "bad JSON in an argument" 2 '' \
    "flushout: bad JSON on argument 2, column 19: string or '}' expected near end of file" \
    apply todo "$C2" '{"action":"create",'
IN=$(printf '%s\n{"action":"create" "x"}\n' "$C2") \
    check "bad JSON on stdin" 2 '' \
    "flushout: bad JSON on line 2, column 22: '}' expected near '\"x\"'" apply todo
IN='{"action":"crate"}' check "bad command shape" 2 '' \
    'flushout: bad command on line 1: action: expected "create", "update" or "delete"' apply todo
IN='' check "no commands" 2 '' \
    'flushout: no commands: give them as arguments or as JSON lines on stdin (see flushout apply --help)' \
    apply todo
check "bad model name" 2 '' \
    "flushout: bad model name 'to do': use 1-200 characters of A-Z a-z 0-9 . _ : -" get 'to do'
check "bad presence" 2 '' 'flushout: bad presence: a JSON object expected' presence todo '[1]'
check "unknown command" 2 '' 'flushout: unknown command '"'"'fetch'"'"' (see flushout --help)' fetch todo
check "history without --from" 2 '' \
    'flushout: usage: history needs --from N (see flushout history --help)' history todo
check "bad --url" 2 '' \
    "flushout: bad --url 'http://x': url: http:// is the hub's HTTP address; its WebSocket URL is ws://HOST:PORT/v1/ws" --url http://x get todo
check "get --help" 0 "$("$F" get --help)" '' --help get
got=$("$F" --help)
case $got in
*"exit codes:"*"3    the hub cannot be reached"*) passed=$((passed + 1)); echo "ok: --help documents exit codes" ;;
*) failed=$((failed + 1)); echo "FAIL: --help does not document the exit codes" ;;
esac

# The hub unreachable: exit 3; unresponsive: exit 4.
check "unreachable hub" 3 '' \
    'flushout: cannot reach the hub at ws://127.0.0.1:1/v1/ws: cannot connect to 127.0.0.1:1: connection refused' \
    --url ws://127.0.0.1:1/v1/ws get todo
kill -STOP "$MAIN_PID"
check "unresponsive hub" 4 '' \
    "flushout: timed out after 0.5 s waiting for the hub at $FLUSHOUT_URL" --timeout 0.5 get todo
kill -CONT "$MAIN_PID"

# watch: presence set and cleared by another session, then a push.
"$F" watch todo --count 3 --timeout 20 >"$DIR/watch.out" 2>"$DIR/watch.err" &
WATCH=$!
for i in $(seq 1 500); do
    grep -q 'watching' "$DIR/watch.err" && break
    sleep 0.02
done
check "presence --hold 0" 0 '' '' presence todo '{"cursor":3}' --hold 0
check "apply while watched" 0 \
    '{"applied":{"from":4,"completions":[{"command":{"action":"update","props":{"seen":1}}}]}}' \
    '' apply todo '{"action":"update","props":{"seen":1}}'
wait "$WATCH"
watch_rc=$?
want_watch='{"t":"presence","model":"todo","session":"S","state":{"cursor":3}}
{"t":"presence","model":"todo","session":"S","state":null}
{"t":"push","model":"todo","diff":{"from":4,"completions":[{"command":{"action":"update","props":{"seen":1}}}]}}'
got_watch=$(sed 's/"session":"[^"]*"/"session":"S"/' "$DIR/watch.out")
if [ "$watch_rc" = 0 ] && [ "$got_watch" = "$want_watch" ] &&
    [ "$(cat "$DIR/watch.err")" = 'flushout: watching todo at commandCount 4' ]; then
    passed=$((passed + 1))
    echo "ok: watch prints presence and pushes"
else
    failed=$((failed + 1))
    echo "FAIL: watch (exit $watch_rc)"
    cat "$DIR/watch.out" "$DIR/watch.err"
fi
check "watch --count times out" 4 '' \
    'flushout: watching todo at commandCount 5
flushout: timed out after 0.3 s: 0 of 1 events' watch todo --count 1 --timeout 0.3
check "watch --timeout without --count" 0 '' 'flushout: watching todo at commandCount 5' \
    watch todo --timeout 0.2

# Tokens: a hub that requires one.
printf 'sekret todo* rw\nreader * r\n' >"$DIR/auth"
start_hub auth --auth "$DIR/auth"
AUTH_URL=ws://127.0.0.1:$PORT/v1/ws
check "no token" 1 '' \
    "flushout: the hub at $AUTH_URL refused the connection: HTTP 401 Unauthorized: missing token (a token is missing or not valid: --token)" \
    --url "$AUTH_URL" get todo
check "bad token" 1 '' \
    "flushout: the hub at $AUTH_URL refused the connection: HTTP 401 Unauthorized: unknown token (a token is missing or not valid: --token)" \
    --url "$AUTH_URL" --token wrong get todo
check "with --token" 0 '{"commandCount":0,"document":{}}' '' --url "$AUTH_URL" --token sekret get todo
FLUSHOUT_TOKEN=reader check "read-only token cannot apply" 1 '' \
    'flushout: the hub refused the flush: forbidden: model: no write rights on todo' \
    --url "$AUTH_URL" apply todo '{"action":"update","props":{"x":1}}'

# Signed tokens: `flushout token` mints them for a hub with --jwt-secret-file / -public-key.
printf 'cli-test-secret-0123456789abcdef-0123456789\n' >"$DIR/secret"
printf 'another-secret-0123456789abcdef-0123456789\n' >"$DIR/other"
printf 'short\n' >"$DIR/short"
start_hub jwt --jwt-secret-file "$DIR/secret"
JWT_URL=ws://127.0.0.1:$PORT/v1/ws
check "token: bad rights" 2 '' \
    "flushout token: bad --models entry 'todos=x': PATTERN=r or PATTERN=rw expected (see flushout token --help)" \
    token --secret-file "$DIR/secret" --sub ann --models 'todos=x'
check "token: no sub" 2 '' \
    "flushout token: --sub NAME is needed (1-256 bytes) (see flushout token --help)" \
    token --secret-file "$DIR/secret" --models 'todos=rw'
check "token: short secret" 2 '' \
    "flushout token: $DIR/short: the secret needs at least 32 bytes (see flushout token --help)" \
    token --secret-file "$DIR/short" --sub ann --models 'todos=rw'
check "token: HS alg with a PEM key" 2 '' \
    "flushout token: --alg HS256 does not go with this key: HS* take --secret-file, RS*/ES* --key-file (see flushout token --help)" \
    token --key-file "$DIR/secret" --alg HS256 --sub ann --models 'todos=rw'
T=$("$F" token --secret-file "$DIR/secret" --sub ann --models 'todos:*=rw,ro=r' --ttl 1h)
check "JWT: apply" 0 '{"applied":{"from":0,"completions":[{"command":{"action":"update","props":{"x":1}}}]}}' '' \
    --url "$JWT_URL" --token "$T" apply todos:a '{"action":"update","props":{"x":1}}'
FLUSHOUT_TOKEN=$T check "JWT: a write with r" 1 '' \
    'flushout: the hub refused the flush: forbidden: model: no write rights on ro' \
    --url "$JWT_URL" apply ro '{"action":"update","props":{"x":1}}'
check "JWT: a model outside the claims" 1 '' \
    'flushout: the hub answered forbidden: model: no read rights on other' \
    --url "$JWT_URL" --token "$T" get other
T2=$("$F" token --secret-file "$DIR/other" --sub ann --models 'todos:*=rw')
check "JWT: another secret" 1 '' \
    "flushout: the hub at $JWT_URL refused the connection: HTTP 401 Unauthorized: token signature does not verify (a token is missing or not valid: --token)" \
    --url "$JWT_URL" --token "$T2" get todos:a
T3=$("$F" token --secret-file "$DIR/secret" --sub ann --models 'todos:*=rw' --not-before 1h)
check "JWT: not valid yet" 1 '' \
    "flushout: the hub at $JWT_URL refused the connection: HTTP 401 Unauthorized: token not valid yet (nbf) (a token is missing or not valid: --token)" \
    --url "$JWT_URL" --token "$T3" get todos:a
# ES256 with a key made by the openssl CLI.
openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/ec.pem" 2>/dev/null
openssl ec -in "$DIR/ec.pem" -pubout -out "$DIR/ec.pub" 2>/dev/null
start_hub jwt-ec --jwt-public-key "$DIR/ec.pub"
T4=$("$F" token --key-file "$DIR/ec.pem" --sub bob --models '*=r')
check "JWT: ES256" 0 '{"commandCount":0,"document":{}}' '' --url "ws://127.0.0.1:$PORT/v1/ws" --token "$T4" get m
check "JWT: HS256 on an EC hub" 1 '' \
    "flushout: the hub at ws://127.0.0.1:$PORT/v1/ws refused the connection: HTTP 401 Unauthorized: token algorithm HS256 is not accepted by this hub (it takes ES256) (a token is missing or not valid: --token)" \
    --url "ws://127.0.0.1:$PORT/v1/ws" --token "$T" get m

# The hubs must not have logged errors or sanitizer reports.
if grep -E ' ERROR |Sanitizer|runtime error' "$DIR"/*.log; then
    failed=$((failed + 1))
    echo "FAIL: the hub logged errors"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
