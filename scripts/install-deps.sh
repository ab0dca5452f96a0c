#!/usr/bin/env bash
# Installs what the project needs from Debian's packages, only what is missing.
# Usage: scripts/install-deps.sh [build|test|bench]   (test and bench add their tools)
set -euo pipefail

want=(build-essential cmake pkg-config libuv1-dev libwebsockets-dev libwebsockets-evlib-uv
      libmsgpack-dev libxxhash-dev libjansson-dev libjwt-dev libsqlite3-dev sqlite3 libssl-dev
      libluajit-5.1-dev libinih-dev libnats-dev liburing-dev nodejs npm help2man file)
if [ "${1:-build}" = bench ]; then
    want+=(gnuplot-nox python3)
fi
if [ "${1:-build}" = test ]; then
    want+=(libcriterion-dev clang libclang-rt-14-dev valgrind chromium curl openssl nats-server systemd man-db
           python3)
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node may come from elsewhere than Debian (the machine image ships its own).
if printf '%s\n' "${missing[@]}" | grep -qx nodejs && command -v node >/dev/null; then
    missing=("${missing[@]/nodejs}")
fi
if printf '%s\n' "${missing[@]}" | grep -qx npm && command -v npm >/dev/null; then
    missing=("${missing[@]/npm}")
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -v '^$' || true)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
