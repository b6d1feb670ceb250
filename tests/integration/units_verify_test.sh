#!/bin/bash
# The units as built pass systemd-analyze verify, and their hardening keeps
# the exposure scores INSTALL.md quotes.
set -euo pipefail
RW_SRC=${RW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
RW_BUILD=${RW_BUILD:-$RW_SRC/build}
dir=$(mktemp -d /var/lib/rw-units-verify.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for u in runner watcher; do
  # The built unit names the installed binary; point it at the build's.
  sed "s|^ExecStart=[^ ]*/runwarden\(-watcher\)\{0,1\} |ExecStart=$RW_BUILD/runwarden\1 |" "$RW_BUILD/units/$u@.service" >"$dir/$u@.service"
  grep -q '%i' "$dir/$u@.service" || { echo "FAIL units_verify: $u@ does not use %i"; exit 1; }
  if grep -q '%I' "$dir/$u@.service"; then echo "FAIL units_verify: $u@ uses %I"; exit 1; fi
done
# Instance-only templates: nothing to enable. The runner's watchdog is on
# (it pings from its main loop).
for u in runner watcher; do
  if grep -q '^\[Install\]' "$RW_BUILD/units/$u@.service"; then echo "FAIL units_verify: $u@ has [Install]"; exit 1; fi
done
grep -Eq '^WatchdogSec=[1-9]' "$RW_BUILD/units/runner@.service" ||
  { echo "FAIL units_verify: runner@ has no WatchdogSec"; exit 1; }
# The watcher runs its own small executable, which never loads libvirt or
# libssh2 (their start-up work would also meet the unit's syscall filter).
grep -q "^ExecStart=$RW_BUILD/runwarden-watcher " "$dir/watcher@.service" ||
  { echo "FAIL units_verify: watcher@ does not run runwarden-watcher"; exit 1; }
if ldd "$RW_BUILD/runwarden-watcher" | grep -q libvirt; then
  echo "FAIL units_verify: runwarden-watcher loads libvirt"; exit 1
fi
# libcurl is loaded when a message is due, not at start (watcher_lazy_curl_test).
if ldd "$RW_BUILD/runwarden-watcher" | grep -q libcurl; then
  echo "FAIL units_verify: runwarden-watcher links libcurl"; exit 1
fi
# The web server: its own small executable (no libvirt), socket-activated.
sed "s|^ExecStart=.*|ExecStart=$RW_BUILD/runwarden-web|" "$RW_BUILD/units/runwarden-web.service" >"$dir/runwarden-web.service"
cp "$RW_BUILD/units/runwarden-web.socket" "$dir/"
if ldd "$RW_BUILD/runwarden-web" | grep -Eq 'libvirt|libssh2|libcurl'; then
  echo "FAIL units_verify: runwarden-web loads libvirt, libssh2 or libcurl"; exit 1
fi
(cd "$dir" && systemd-analyze verify ./runner@.service ./watcher@.service ./runwarden-web.socket ./runwarden-web.service) ||
  { echo "FAIL units_verify: systemd-analyze verify"; exit 1; }
score() { systemd-analyze security --offline=yes "$dir/$1@.service" 2>/dev/null | sed -n 's/.*exposure level for [^:]*: \([0-9.]*\).*/\1/p'; }
runner=$(score runner) watcher=$(score watcher)
web=$(systemd-analyze security --offline=yes "$dir/runwarden-web.service" 2>/dev/null | sed -n 's/.*exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "exposure: runner@ $runner, watcher@ $watcher, runwarden-web $web"
awk -v w="$watcher" -v r="$runner" -v s="$web" 'BEGIN { exit !(w != "" && r != "" && s != "" && w <= 2.5 && r <= 6.0 && s <= 2.0) }' ||
  { echo "FAIL units_verify: exposure above 2.5 (watcher), 6.0 (runner) or 2.0 (runwarden-web)"; exit 1; }
echo "PASS units_verify_test"
