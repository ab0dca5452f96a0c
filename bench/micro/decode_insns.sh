#!/usr/bin/env bash
# decode_insns.sh - instructions per decode, counted by callgrind (exact and independent of
# machine load, unlike ns/op): runs `fo-microbench --only decode --reps 1` under callgrind
# with one profile dump per case and prints the inclusive instructions of fo_wire_decode /
# fo_wire_decode_batch divided by their call count.
#
# Usage: bench/micro/decode_insns.sh [build dir, default build/release]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/build/release}/bench/fo-microbench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

valgrind --tool=callgrind --callgrind-out-file="$out/cg" --dump-after=bench_decode_one \
    --collect-atstart=yes "$bin" --only decode --reps 1 --items 1000 --rep-ms 0 \
    >/dev/null 2>"$out/log"
names=("flush request K=1" "flush request K=10" "stored batch K=10")
fns=(fo_wire_decode fo_wire_decode fo_wire_decode_batch)
i=0
for f in $(ls "$out"/cg.* | sort -t. -k2 -n); do
    [ $i -lt 3 ] || break
    fn=${fns[$i]}
    # The caller's line "=> file:fn (N x)" holds the inclusive count and the calls.
    read -r ir calls < <(callgrind_annotate --inclusive=yes "$f" 2>/dev/null |
        sed -n "s/^ *\([0-9,]*\) ([^)]*) *=> .*:$fn (\([0-9,]*\)x)$/\1 \2/p" | tr -d , |
        awk '{ir += $1; n += $2} END {print ir + 0, n + 0}')
    if [ "$calls" -gt 0 ]; then
        printf '%-22s %8.0f instructions/op (%s calls)\n' "${names[$i]}" \
            "$(echo "$ir / $calls" | bc -l)" "$calls"
    else
        printf '%-22s ? (no calls found)\n' "${names[$i]}"
    fi
    i=$((i + 1))
done
