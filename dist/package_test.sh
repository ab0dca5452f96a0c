#!/usr/bin/env bash
# package_test.sh BUILD_DIR - the .deb as a clean Debian 12 would get it, without touching
# this machine's system: cpack builds it from BUILD_DIR into a temporary folder, dpkg-deb
# inspects it (fields, files, maintainer scripts, conffiles, ldconfig trigger), every
# Depends must resolve in apt's lists at a version that satisfies it, dpkg -x unpacks it into
# a temporary root where the programs must find their libraries without LD_LIBRARY_PATH,
# the hub must start, answer /healthz, serve the installed CLI and reload on SIGHUP, and
# systemd-analyze must verify the packaged unit and rate its sandbox. About 20-40 s.
set -euo pipefail

build=$(cd "${1:?usage: dist/package_test.sh BUILD_DIR}" && pwd)
tmp=$(mktemp -d /tmp/fo-package.XXXXXX)
hub_pid=
cleanup() {
    [ -n "$hub_pid" ] && kill -KILL "$hub_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
for tool in cpack dpkg-deb dpkg apt-cache readelf ldd curl systemd-analyze; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh test)"
done
unset LD_LIBRARY_PATH

# ---- build ---------------------------------------------------------------------------------
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out") >"$tmp/cpack.log" 2>&1 ||
    { tail -30 "$tmp/cpack.log"; fail "cpack"; }
deb=$(ls "$tmp"/out/*.deb)
echo "ok   built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

# ---- fields and Depends ----------------------------------------------------------------------
info=$(dpkg-deb -I "$deb")
[ "$(dpkg-deb -f "$deb" Package)" = flushout ] || fail "Package is not flushout"
depends=$(dpkg-deb -f "$deb" Depends)
[ -n "$depends" ] || fail "no Depends: $info"
for lib in libuv1 libwebsockets17 libwebsockets-evlib-uv libsqlite3-0 libluajit-5.1-2 libjwt0 \
           libjansson4 libssl3; do
    grep -Eq "(^|, )$lib( |,|$)" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
# Each Depends (its first alternative) must be in apt's lists at a version that satisfies it
# (one apt-cache call: each one reads the whole cache).
IFS=',' read -ra deps <<<"$depends"
names=()
for d in "${deps[@]}"; do names+=("$(awk '{print $1}' <<<"${d%%|*}")"); done
apt-cache policy "${names[@]}" |
    awk '/^[^ ].*:$/ {n=substr($1, 1, length($1)-1)} /Candidate:/ {print n, $2}' >"$tmp/candidates"
for d in "${deps[@]}"; do
    d=${d%%|*}
    name=$(awk '{print $1}' <<<"$d")
    op=$(sed -n 's/.*(\([<>=]*\) *\([^)]*\)).*/\1/p' <<<"$d")
    want=$(sed -n 's/.*(\([<>=]*\) *\([^)]*\)).*/\2/p' <<<"$d")
    cand=$(awk -v n="$name" '$1 == n {print $2}' "$tmp/candidates")
    [ -n "$cand" ] && [ "$cand" != "(none)" ] || fail "Depends $name: not in apt's lists"
    if [ -n "$op" ]; then
        case $op in
        '>=') o=ge ;; '<=') o=le ;; '>>') o=gt ;; '<<') o=lt ;; '=') o=eq ;; *) fail "op $op" ;;
        esac
        dpkg --compare-versions "$cand" "$o" "$want" || fail "Depends $d: apt has $cand"
    fi
done
echo "ok   ${#deps[@]} Depends resolve in apt's lists: $depends"

# ---- files and maintainer scripts ------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' >"$tmp/files"
for f in ./usr/bin/flushout-hub ./usr/bin/flushout ./usr/bin/flushout-bench \
         ./lib/systemd/system/flushout-hub.service ./usr/lib/sysusers.d/flushout-hub.conf \
         ./etc/default/flushout-hub ./usr/include/flushout/client.h \
         ./usr/include/flushout/proto/wire.h ./usr/share/man/man1/flushout-hub.1.gz \
         ./usr/share/man/man1/flushout.1.gz ./usr/share/man/man1/flushout-bench.1.gz; do
    grep -qx "$f" "$tmp/files" || fail "the package lacks $f"
done
grep -Eq '^\./usr/lib/.*libflushout-client\.so\.0$' "$tmp/files" || fail "no libflushout-client.so.0"
grep -Eq '^\./usr/lib/.*pkgconfig/flushout-client\.pc$' "$tmp/files" || fail "no flushout-client.pc"
dpkg-deb -e "$deb" "$tmp/control"
grep -qx /etc/default/flushout-hub "$tmp/control/conffiles" || fail "/etc/default not a conffile"
grep -q 'ldconfig' "$tmp/control/triggers" || fail "no ldconfig trigger"
grep -q 'libflushout-client 0' "$tmp/control/shlibs" || fail "no shlibs entry"
for s in postinst prerm postrm; do
    [ -x "$tmp/control/$s" ] && sh -n "$tmp/control/$s" || fail "$s missing or not sh"
done
echo "ok   $(wc -l <"$tmp/files") paths; conffiles, shlibs, ldconfig trigger, maintainer scripts"

# ---- unpacked: libraries found without LD_LIBRARY_PATH ----------------------------------------
root=$tmp/root
dpkg -x "$deb" "$root"
for b in flushout-hub flushout flushout-bench; do
    ! ldd "$root/usr/bin/$b" | grep -q 'not found' || { ldd "$root/usr/bin/$b"; fail "$b: a library is not found"; }
done
readelf -d "$root/usr/bin/flushout" | grep -Eq 'RUNPATH.*\$ORIGIN/\.\./lib' ||
    fail "flushout has no \$ORIGIN rpath"
lib=$(ldd "$root/usr/bin/flushout" | sed -n 's/.*libflushout-client\.so\.0 => \([^ ]*\) .*/\1/p')
[ -n "$lib" ] && [[ "$(realpath "$lib")" == "$root"/usr/lib/* ]] ||
    fail "flushout does not load the packaged libflushout-client: $(ldd "$root/usr/bin/flushout")"
for b in flushout-hub flushout flushout-bench; do
    [ "$("$root/usr/bin/$b" --version)" = "$b $(dpkg-deb -f "$deb" Version)" ] ||
        fail "$b --version does not match the package's version"
done
zcat "$root/usr/share/man/man1/flushout-hub.1.gz" | grep -q '^\.SH SIGNALS' || fail "man page lacks SIGNALS"
echo "ok   binaries load their libraries (flushout through \$ORIGIN), --version, man pages"

# ---- the installed hub runs ------------------------------------------------------------------
log=$tmp/hub.log
"$root/usr/bin/flushout-hub" --listen 127.0.0.1:0 --data "$tmp/data" 2>"$log" &
hub_pid=$!
port=
for _ in $(seq 1 100); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$log"; fail "the installed hub did not start"; }
health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[ "$health" = 200 ] || fail "/healthz answered $health"
url=ws://127.0.0.1:$port/v1/ws
"$root/usr/bin/flushout" --url "$url" --timeout 20 apply pkg '{"action":"update","props":{"a":1}}' >/dev/null
[ "$("$root/usr/bin/flushout" --url "$url" --timeout 20 get pkg)" = '{"commandCount":1,"document":{"a":1}}' ] ||
    fail "the installed CLI did not read back what it applied"
kill -HUP "$hub_pid"
for _ in $(seq 1 100); do grep -q 'SIGHUP: reload done' "$log" && break; sleep 0.1; done
grep -q 'SIGHUP: reload done' "$log" || fail "no reload on SIGHUP"
kill -TERM "$hub_pid"
rc=0
wait "$hub_pid" || rc=$?
hub_pid=
[ $rc -eq 0 ] || { tail -20 "$log"; fail "the hub exited $rc on SIGTERM"; }
[ -f "$tmp/data/flushout.db" ] || fail "no SQLite file in the data directory"
echo "ok   installed hub on port $port: /healthz 200, CLI apply/get, SIGHUP reload, SIGTERM exit 0"

# ---- the unit --------------------------------------------------------------------------------
# verify needs the binaries it names: the packaged unit, pointed at the unpacked root.
unit=$tmp/flushout-hub.service
sed "s#/usr/bin/#$root/usr/bin/#g; s#/etc/default/#$root/etc/default/#g" \
    "$root/lib/systemd/system/flushout-hub.service" >"$unit"
MANPATH=$root/usr/share/man systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1 ||
    { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
# The sandbox, as systemd rates it: each of these must count as set.
systemd-analyze security --offline=yes --json=short "$unit" 2>/dev/null |
    grep -o '{[^{}]*}' | grep '"set":true' | grep -o '"name":"[^"]*"' >"$tmp/set"
for d in User=/DynamicUser= NoNewPrivileges= ProtectSystem= ProtectHome= PrivateTmp= \
         PrivateDevices= MemoryDenyWriteExecute= 'SystemCallFilter=~@privileged' \
         'RestrictAddressFamilies=~AF_PACKET' 'RestrictAddressFamilies=~AF_NETLINK' \
         'CapabilityBoundingSet=~CAP_SYS_ADMIN' 'RestrictNamespaces=~user' ProtectKernelModules= \
         ProtectKernelTunables= ProtectControlGroups= RestrictSUIDSGID= LockPersonality=; do
    grep -qxF "\"name\":\"$d\"" "$tmp/set" || fail "the unit's sandbox lacks $d"
done
# What makes it a service: its user, state, reload, restart and descriptors.
for l in User=flushout StateDirectory=flushout Restart=on-failure 'ExecReload=/bin/kill -HUP $MAINPID' \
         LimitNOFILE=524288 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
         SystemCallFilter=@system-service WantedBy=multi-user.target; do
    grep -qxF "$l" "$unit" || fail "the unit lacks $l"
done
exposure=$(systemd-analyze security --offline=yes "$unit" 2>&1 |
           sed -n 's/.*Overall exposure level for flushout-hub.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 1.5) }' ||
    fail "the unit's exposure level is $exposure (more than 1.5: a sandboxing directive went)"
echo "ok   systemd-analyze verify passes; exposure level $exposure"
# The service's user, as systemd-sysusers makes it from the packaged entry (in a scratch root).
mkdir -p "$tmp/sysroot/etc"
systemd-sysusers --root="$tmp/sysroot" "$root/usr/lib/sysusers.d/flushout-hub.conf" \
    >"$tmp/sysusers.log" 2>&1 || { cat "$tmp/sysusers.log"; fail "systemd-sysusers"; }
grep -Eq '^flushout:x:[0-9]+:[0-9]+:[^:]*:/var/lib/flushout:/usr/sbin/nologin$' \
    "$tmp/sysroot/etc/passwd" || fail "sysusers.d made no flushout user: $(cat "$tmp/sysroot/etc/passwd")"
grep -q '^flushout:' "$tmp/sysroot/etc/group" || fail "sysusers.d made no flushout group"
echo "ok   sysusers.d creates the system user flushout"
echo "package: all checks passed"
