#!/bin/bash
# The .deb: scripts/package.sh builds it (lintian clean), dpkg installs it on
# this machine, a run completes from the installed files under the test's
# service manager and posts once; remove keeps the configuration and the
# run history, purge removes the configuration and keeps the history.
# (It installs into the machine's /usr, /lib and /etc: it refuses to run
# where a runwarden package is already installed, and purges it at the end.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"

if dpkg-query -W -f='${Status}' runwarden 2>/dev/null | grep -q "installed"; then
  fail "a runwarden package is installed on this machine; this test installs and purges its own"
fi
history_probe=/var/lib/runwarden/.package-test-$$
# A configuration directory of this machine (scripts/demo.sh makes one) is
# set aside while the package owns /etc/runwarden, and put back afterwards.
etc_aside=""
if [[ -e /etc/runwarden ]]; then
  etc_aside=/etc/runwarden.package-test-$$
  mv /etc/runwarden "$etc_aside"
fi
cleanup_package() {
  dpkg --purge runwarden >/dev/null 2>&1 || true
  rm -f "$history_probe"
  rmdir /var/lib/runwarden 2>/dev/null || true
  if [[ -n $etc_aside && -e $etc_aside ]]; then
    rm -rf /etc/runwarden
    mv "$etc_aside" /etc/runwarden
  fi
}
IT_EXTRA_TEARDOWN+=(cleanup_package)
# Until it_setup installs the harness's own EXIT trap (which runs the above).
trap 'cleanup_package; rm -rf "${dist:-/nonexistent}"' EXIT

# 1. Build (and lintian) from this tree.
dist=$RW_IT_ROOT/package-test-dist-$$
mkdir -p "$dist"
IT_EXTRA_TEARDOWN+=("rm -rf '$dist'")
if [[ -n "${RW_DEB:-}" ]]; then
  cp "$RW_DEB" "$dist/"
else
  "$RW_SRC/scripts/package.sh" "$dist" >"$dist/package.out" 2>&1 ||
    { cat "$dist/package.out" >&2; fail "scripts/package.sh failed"; }
  lint=$(lintian "$dist"/runwarden_*.deb 2>&1 | grep -v '^running with root' || true)
  assert_eq "$lint" "" "lintian has nothing to say beyond the overridden tags"
fi
deb=$(ls "$dist"/runwarden_*_*.deb)
version=$(sed -n 's/^project(runwarden VERSION \([0-9.]*\).*/\1/p' "$RW_SRC/CMakeLists.txt")
assert_eq "$(basename "$deb")" "runwarden_${version}_$(dpkg --print-architecture).deb" "the package's file name"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libsystemd0 libvirt0 libssh2-1 libssl3 libyaml-cpp libcurl4; do
  assert_contains "$depends" "$lib" "Depends names $lib"
done

# 2. Install.
dpkg -i "$deb" >"$dist/dpkg-i.out" 2>&1 || { cat "$dist/dpkg-i.out" >&2; fail "dpkg -i"; }
for f in /usr/bin/runwarden /usr/bin/start-run /usr/bin/cancel-run /usr/bin/runwarden-watcher \
  /usr/bin/runwarden-web /lib/systemd/system/runwarden-web.socket /lib/systemd/system/runwarden-web.service \
  /usr/share/man/man8/runwarden-web.8.gz \
  /lib/systemd/system/runner@.service /lib/systemd/system/watcher@.service \
  /usr/lib/sysctl.d/60-runwarden.conf /usr/share/bash-completion/completions/cancel-run \
  /usr/share/man/man1/start-run.1.gz /usr/share/man/man5/runwarden-plan.5.gz \
  /usr/share/man/man8/runwarden-watcher.8.gz /usr/share/doc/runwarden/copyright \
  /etc/runwarden/watcher.env.example; do
  [[ -e $f ]] || fail "the package did not install $f"
done
assert_eq "$(stat -c %a /etc/runwarden)" 750 "/etc/runwarden is root's only"
assert_contains "$(cat /var/lib/dpkg/info/runwarden.conffiles)" /etc/runwarden/runwarden.conf.example "examples are conffiles"
assert_contains "$(grep ^ExecStart= /lib/systemd/system/runner@.service)" /usr/bin/runwarden "the unit runs the installed binary"
assert_eq "$(/usr/bin/runwarden --version | grep -o "$version")" "$version" "the installed binary's version"

# 3. A run from the installed units and binaries, under the test's manager.
mkdir -p "$dist/dropins/runner@.service.d" "$dist/dropins/watcher@.service.d"
printf '[Service]\nEnvironment=RUNWARDEN_STATE_DIR=%s/state\nReadWritePaths=%s\n' "$RW_IT_ROOT/pkg-$$" "$RW_IT_ROOT" \
  >"$dist/dropins/runner@.service.d/test.conf"
printf '[Service]\nEnvironment=RUNWARDEN_STATE_DIR=%s/state\nEnvironment=RUNWARDEN_WEBHOOK_ENV=%s\nLoadCredential=\nReadWritePaths=%s\n' \
  "$RW_IT_ROOT/pkg-$$" "$RW_IT_ROOT/pkg-$$/watcher.env" "$RW_IT_ROOT" >"$dist/dropins/watcher@.service.d/test.conf"
it_setup --no-project-units /lib/systemd/system/runner@.service /lib/systemd/system/watcher@.service \
  "$dist/dropins/runner@.service.d" "$dist/dropins/watcher@.service.d"
mkdir -p "$RW_IT_ROOT/pkg-$$/state"
IT_EXTRA_TEARDOWN+=("rm -rf '$RW_IT_ROOT/pkg-$$'")
(umask 077; printf 'MATTERMOST_WEBHOOK_URL=%s\n' "$WEBHOOK_URL" >"$RW_IT_ROOT/pkg-$$/watcher.env")
export RUNWARDEN_STATE_DIR=$RW_IT_ROOT/pkg-$$/state RUNWARDEN_WEBHOOK_ENV=$RW_IT_ROOT/pkg-$$/watcher.env
/usr/bin/start-run -q --build-name pkg-1 --runner-command 'echo installed'
wait_status pkg-1 COMPLETED
wait_watcher_done pkg-1
wait_for -m "one post" count_is 1
assert_contains "$(ctl show -p ExecStart --value watcher@pkg-1.service)" /usr/bin/runwarden-watcher "the installed watcher ran"
assert_contains "$(/usr/bin/runwarden status pkg-1)" COMPLETED "the installed CLI reads the run"

# 4. Remove: the programs go; the configuration (conffiles and what the
# admin wrote) and the run history stay.
mkdir -p /var/lib/runwarden
: >"$history_probe"
(umask 077; echo 'MATTERMOST_WEBHOOK_URL=https://chat.example.org/hooks/x' >/etc/runwarden/watcher.env)
dpkg -r runwarden >"$dist/dpkg-r.out" 2>&1 || { cat "$dist/dpkg-r.out" >&2; fail "dpkg -r"; }
for f in /usr/bin/runwarden /usr/bin/runwarden-watcher /lib/systemd/system/runner@.service; do
  [[ ! -e $f ]] || fail "dpkg -r left $f"
done
[[ -e /etc/runwarden/runwarden.conf.example && -e /etc/runwarden/watcher.env ]] || fail "remove kept no configuration"
[[ -e $history_probe ]] || fail "remove touched /var/lib/runwarden"

# 5. Purge: the configuration goes, the run history stays.
dpkg --purge runwarden >"$dist/dpkg-p.out" 2>&1 || { cat "$dist/dpkg-p.out" >&2; fail "dpkg --purge"; }
[[ ! -e /etc/runwarden ]] || fail "purge left /etc/runwarden: $(ls -la /etc/runwarden)"
[[ -e $history_probe ]] || fail "purge removed the run history"
dpkg-query -W -f='${Status}' runwarden 2>/dev/null | grep -q "installed" && fail "still installed after purge"
pass
