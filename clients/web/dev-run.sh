#!/usr/bin/env bash
# dev-run.sh BUILD_DIR [DATA_DIR] - `make run`: starts the hub of BUILD_DIR on 127.0.0.1:7420
# with the demo (clients/web/dist) at /, its data in DATA_DIR (default ./data), and, when
# this hub has them:
#   --interceptors clients/web/rules.lua   the article's rules (stamps, quota, text length);
#   --jwt-secret-file DATA_DIR/dev-jwt.secret, and development tokens minted now with
#     `flushout token` (subjects ann, bob, cat, dan; rights todos:*=rw; 12 h) written to
#     dist/dev-tokens.json: each browser tab picks the next one (the page's devIdentity()).
# A hub without those flags runs open and without rules, as before; the script says which.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:?usage: dev-run.sh BUILD_DIR [DATA_DIR]}"
data="${2:-./data}"
hub="$build/hub/flushout-hub"
cli="$build/clients/flushout"
dist="$root/clients/web/dist"
listen="${FLUSHOUT_LISTEN:-127.0.0.1:7420}"
mkdir -p "$data"

args=(--listen "$listen" --data "$data" --static "$dist")
help="$("$hub" --help 2>&1 || true)"
notes=()

if grep -q -- "--interceptors" <<<"$help"; then
    "$hub" --check-interceptors "$root/clients/web/rules.lua"
    args+=(--interceptors "$root/clients/web/rules.lua")
    notes+=("rules: clients/web/rules.lua")
else
    notes+=("rules: none (this hub has no --interceptors)")
fi

echo "[]" > "$dist/dev-tokens.json"
if grep -q -- "--jwt-secret-file" <<<"$help" && "$cli" token --help >/dev/null 2>&1; then
    secret="$data/dev-jwt.secret"
    if [[ ! -s "$secret" ]]; then
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret")
    fi
    json="["
    for sub in ann bob cat dan; do
        tok="$("$cli" token --secret-file "$secret" --sub "$sub" --models 'todos:*=rw' --ttl 12h)"
        json+="$([[ "$json" == "[" ]] || echo ,){\"sub\":\"$sub\",\"token\":\"$tok\"}"
    done
    echo "$json]" > "$dist/dev-tokens.json"
    args+=(--jwt-secret-file "$secret")
    notes+=("identities: a development token per tab (ann, bob, cat, dan), minted now")
else
    notes+=("identities: none, the hub is open (this hub has no --jwt-secret-file)")
fi

if [[ -f "$root/clients/console/dist/index.html" ]]; then
    args+=(--console-dir "$root/clients/console/dist")
fi
echo "flushout-hub: the demo is at http://$listen/"
[[ -f "$root/clients/console/dist/index.html" ]] && echo "flushout-hub: the console is at http://$listen/console/"
echo "  (Ctrl-C stops the hub)"
for n in "${notes[@]}"; do echo "  $n"; done
exec "$hub" "${args[@]}"
