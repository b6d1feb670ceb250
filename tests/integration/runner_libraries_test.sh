#!/bin/bash
# runwarden (the runner of every run, and every admin command) loads neither
# libvirt, libssh2, libcrypto nor libmicrohttpd when it starts: libvirt, with
# the 45 libraries it brings, is loaded on the first libvirt call (testbed
# runs and commands), libssh2 and libcrypto on the first SSH connection or
# testbed host key (ssh_failures_test: without libssh2), and `runwarden
# serve` runs runwarden-web. A run without a testbed or SSH never maps them;
# a testbed command loads libvirt when it needs it, and says clearly when it
# cannot.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

needed=$(readelf -d "$RW_BIN" | awk '/NEEDED/{print $NF}' | tr -d '[]' | tr '\n' ' ')
assert_contains "$needed" "libsystemd" "runwarden's NEEDED libraries are readable"
for lib in libvirt libmicrohttpd libssh2 libcrypto; do
  if grep -q "$lib" <<<"$needed"; then fail "runwarden's NEEDED libraries include $lib: $needed"; fi
done

start_run -q --build-name libs-1 --workdir "$IT_DIR/work" --runner-command 'while [ ! -e go ]; do sleep 0.1; done'
wait_status libs-1 RUNNING
pid=$(unit_pid runner@libs-1.service)
[[ -n $pid && $pid != 0 ]] || fail "no runner"
maps=$(cat "/proc/$pid/maps")
assert_contains "$maps" "libsystemd" "the runner's maps are readable"
if grep -q "libvirt\|libxml2\|libglib\|libmicrohttpd\|libgnutls\|libssh2\|libcrypto" <<<"$maps"; then
  fail "the runner of a run without a testbed or SSH maps: $(grep -o '/[^ ]*lib\(virt\|xml2\|glib\|microhttpd\|gnutls\|ssh2\|crypto\)[^ ]*' <<<"$maps" | sort -u | tr '\n' ' ')"
fi
touch "$IT_DIR/work/go"
wait_status libs-1 COMPLETED

# A testbed command loads libvirt when it connects (the test driver runs
# in-process: no libvirtd needed).
out=$("$RW_BIN" testbed ls --connect test:///default 2>&1) || fail "testbed ls on test:///default: $out"
assert_contains "$out" "nothing made by runwarden on test:///default" "libvirt loaded on demand answers"

# Without a loadable libvirt: a clear error, exit 1, and the rest still works.
libvirt=$(readlink -f "$(ldconfig -p | awk '/libvirt\.so\.0 /{print $NF; exit}')")
[[ -f $libvirt ]] || fail "libvirt.so.0 not found by ldconfig"
out=$(unshare -m sh -c 'mount --bind /dev/null "$1" && exec "$2" testbed ls --connect test:///default' _ \
  "$libvirt" "$RW_BIN" 2>&1) && fail "testbed ls succeeded without libvirt: $out"
assert_contains "$out" "connect to libvirt at test:///default: cannot load libvirt.so.0 (install libvirt0)" \
  "the error names what is missing and the package that has it"
out=$(unshare -m sh -c 'mount --bind /dev/null "$1" && exec "$2" status --json libs-1' _ "$libvirt" "$RW_BIN" 2>&1) ||
  fail "status without libvirt: $out"
assert_contains "$out" "COMPLETED" "commands that need no libvirt work without it"
pass
