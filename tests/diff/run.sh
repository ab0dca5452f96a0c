#!/usr/bin/env bash
# run.sh - the differential test: the reference implementation (npm `flushout`, pinned in
# package.json) against the C core, on seeded random workloads.
#
#   tests/diff/run.sh [--long] [--self-check] [--keep] PATH/TO/diff_replay
#
#   (default)     12 runs covering every history and interceptor mode, 3,000+ flushes in all
#   --long        200 more runs of 1,000 flushes each (seeds 1001..1200)
#   --self-check  proves the harness can fail: corrupts single expected outputs of a good
#                 trace and requires diff_replay to reject each of them
#   --keep        keep every trace, not only failing ones
#
# Traces go to $FO_DIFF_OUT (default tests/diff/out/, git-ignored); a failing run's trace is
# kept there for `diff_replay TRACE` to be run again by hand. Exit status 0 only when every
# run passed. The last line is `diff: N passed, N failed` (N = replayed steps).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
long=0
self_check=0
keep=0
replay=""
for arg in "$@"; do
    case "$arg" in
    --long) long=1 ;;
    --self-check) self_check=1 ;;
    --keep) keep=1 ;;
    -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
    *) replay="$arg" ;;
    esac
done
if [[ -z "$replay" || ! -x "$replay" ]]; then
    echo "usage: run.sh [--long] [--self-check] [--keep] PATH/TO/diff_replay" >&2
    exit 2
fi

for tool in node npm; do
    if ! command -v "$tool" > /dev/null; then
        echo "run.sh: $tool not found (Debian: apt-get install nodejs npm)" >&2
        exit 2
    fi
done

# The reference, installed from the lock file. Offline-safe: an existing install is used.
if [[ ! -f "$here/node_modules/flushout/package.json" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
ver="$(node -p "require('$here/node_modules/flushout/package.json').version")"
if [[ "$ver" != "1.1.1" ]]; then
    echo "run.sh: expected flushout 1.1.1 in $here/node_modules, found $ver" >&2
    exit 2
fi

out="${FO_DIFF_OUT:-$here/out}"
mkdir -p "$out"

total_passed=0
total_failed=0
failed_runs=()

# run NAME GEN-ARGS...: generates a trace, replays it, keeps the trace when it fails.
run() {
    local name="$1"; shift
    local trace="$out/$name.jsonl" log="$out/$name.log"
    local rc=0 summary passed failed
    if ! node "$here/gen.mjs" "$@" > "$trace"; then
        echo "run.sh: $name: gen.mjs failed ($*)" >&2
        failed_runs+=("$name")
        total_failed=$((total_failed + 1))
        return
    fi
    "$replay" "$trace" > "$log" 2>&1 || rc=$?
    summary="$(grep -E '^diff: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)"
    passed="$(sed -E 's/^diff: ([0-9]+) passed.*/\1/' <<<"${summary:-diff: 0 passed}")"
    failed="$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"${summary:-x 1 failed}")"
    total_passed=$((total_passed + passed))
    if [[ $rc -ne 0 || "$failed" != "0" ]]; then
        total_failed=$((total_failed + (failed > 0 ? failed : 1)))
        failed_runs+=("$name")
        echo "FAIL $name (gen.mjs $*): trace kept in $trace" >&2
        cat "$log" >&2
    else
        echo "ok   $name (gen.mjs $*): $passed steps"
        [[ $keep -eq 1 ]] || rm -f "$trace"
        rm -f "$log"
    fi
}

if [[ $self_check -eq 1 ]]; then
    trace="$out/self-check.jsonl"
    node "$here/gen.mjs" --seed 7 --flushes 60 --proxies 3 --history on --intercept both > "$trace"
    if ! "$replay" "$trace" > "$out/self-check.log" 2>&1; then
        echo "self-check: the unmodified trace does not pass" >&2
        cat "$out/self-check.log" >&2
        exit 1
    fi
    # Each corruption changes one expected output; the replay must report a mismatch.
    # (Leak checking is off for these: the replay exits from where it found the mismatch.)
    bad=0
    for kind in master-from master-doc created-id proxy-doc ids-changed begin-batch \
        error-message queue-len mapped-paths truncated; do
        if ! node "$here/corrupt.mjs" "$kind" < "$trace" > "$out/self-check-$kind.jsonl"; then
            echo "FAIL self-check $kind: could not corrupt the trace" >&2
            bad=1
            continue
        fi
        rc=0
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            "$replay" "$out/self-check-$kind.jsonl" > "$out/self-check-$kind.log" 2>&1 || rc=$?
        if [[ $rc -eq 1 ]] && grep -qE '^diff: [0-9]+ passed, 1 failed$' "$out/self-check-$kind.log"; then
            echo "ok   self-check $kind: rejected ($(grep -m1 -E '^MISMATCH|ended without' "$out/self-check-$kind.log" | cut -c1-100))"
            rm -f "$out/self-check-$kind.jsonl" "$out/self-check-$kind.log"
        else
            echo "FAIL self-check $kind: diff_replay exited $rc on a corrupted trace" >&2
            cat "$out/self-check-$kind.log" >&2
            bad=1
        fi
    done
    rm -f "$trace" "$out/self-check.log"
    [[ $bad -eq 0 ]] && echo "self-check: passed" || { echo "self-check: FAILED" >&2; exit 1; }
    exit 0
fi

# Every mode at least once, then seeds that draw their own modes.
run s1-on-none        --seed 1 --flushes 300 --history on --intercept none
run s2-off-master     --seed 2 --flushes 300 --history off --intercept master
run s3-ret-both       --seed 3 --flushes 300 --history retention --intercept both
run s4-trunc-proxy    --seed 4 --flushes 300 --history truncate --intercept proxy
run s5-on-master-doc  --seed 5 --flushes 300 --history on --intercept master --initial doc
run s6-many-proxies   --seed 6 --flushes 300 --proxies 8
run s7-one-proxy      --seed 7 --flushes 200 --proxies 1
for s in 8 9 10 11 12; do
    run "s$s" --seed "$s" --flushes 300
done
if [[ $long -eq 1 ]]; then
    for s in $(seq 1001 1200); do
        run "s$s" --seed "$s" --flushes 1000
    done
fi

if [[ ${#failed_runs[@]} -gt 0 ]]; then
    echo "failing runs: ${failed_runs[*]}" >&2
fi
echo "diff: $total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
