#!/bin/bash
# An idle watcher has not loaded libcurl (nor the TLS, Kerberos and LDAP
# libraries it pulls in): it maps it only when a message is due for an
# https:// webhook, and a plain http:// one (this test's receiver) is posted
# without it. Nor libsystemd (nor libgcrypt, libzstd, liblzma,
# liblz4 that it pulls in): loaded while the watcher reads the runner's unit
# over the bus, let go before it sleeps (its readiness, status and journal
# records it sends itself).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# Linked against libc alone: any libsystemd call not routed through the
# lazy shim (src/systemd/lazy) would make it a NEEDED library, mapped for good.
needed=$(readelf -d "$RW_BUILD/runwarden-watcher" | awk '/NEEDED/{print $NF}' | tr -d '[]' | sort | tr '\n' ' ')
assert_eq "$needed" "ld-linux-x86-64.so.2 libc.so.6 " "runwarden-watcher's NEEDED libraries"

start_run -q --build-name lazy-1 --workdir "$IT_DIR/work" --runner-command 'while [ ! -e go ]; do sleep 0.1; done'
wait_status lazy-1 RUNNING
pid=$(unit_pid watcher@lazy-1.service)
[[ -n $pid && $pid != 0 ]] || fail "no watcher"
# Idle: blocked in its main loop's poll() (syscall 7; sd-bus waits in ppoll).
# The watcher starts alongside the runner, so the run's first writes may
# still be waking it here: the maps are read while it sleeps.
idle_maps() {
  local sc
  sc=$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null) || return 1
  [[ $sc == 7 ]] || return 1
  maps=$(cat "/proc/$pid/maps")
  [[ $(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null) == 7 ]]
}
maps=""
wait_for -t 10 -m "the watcher idle in poll()" idle_maps
assert_contains "$maps" "runwarden-watcher" "the watcher's maps are readable"
if grep -q "libcurl" <<<"$maps"; then fail "the idle watcher has libcurl mapped"; fi
if grep -q "libgnutls\|libkrb5\|libldap" <<<"$maps"; then fail "the idle watcher maps what libcurl pulls in"; fi
if grep -q "libsystemd\|libgcrypt\|libzstd" <<<"$maps"; then
  fail "the idle watcher has libsystemd or its libraries mapped: $(grep -o '/[^ ]*lib\(systemd\|gcrypt\|zstd\)[^ ]*' <<<"$maps" | sort -u | tr '\n' ' ')"
fi
# It went through systemd: ready, and its journal lines are there.
assert_eq "$(ctl show -p ActiveState --value watcher@lazy-1.service)" active "the watcher said it was ready"
# A structured record (RUNWARDEN_BUILD= field), sent through libsystemd.
watcher_logged() { journal RUNWARDEN_BUILD=lazy-1 _COMM=runwarden-watch --no-pager -o cat 2>/dev/null | grep -q "watching run lazy-1"; }
wait_for -m "the watcher's structured journal record" watcher_logged
# From here to its end (the run's last writes, the post, its last status)
# the watcher has no use for libsystemd: what it opens is traced.
strace -f -e trace=open,openat -o "$IT_DIR/watcher.strace" -p "$pid" 2>"$IT_DIR/strace.err" &
strace_pid=$!
traced() { grep -q "^TracerPid:[[:space:]]*[1-9]" "/proc/$pid/status"; }
wait_for -t 10 -m "strace attached to the watcher" traced
# The receiver holds its answer for 3 s: the watcher's maps are read while
# it waits for it, its request already sent.
receiver_script '["slow:3"]'
touch "$IT_DIR/work/go"
wait_for -m "the post has arrived" count_is 1
posting_maps=$(cat "/proc/$pid/maps") || fail "the watcher ended before the receiver answered"
if grep -q "libcurl\|libgnutls" <<<"$posting_maps"; then fail "libcurl loaded for a plain http:// webhook"; fi
wait_status lazy-1 COMPLETED
recorded_sent() { grep -q '"status": *"sent"' "$RUNWARDEN_STATE_DIR/runs/lazy-1/notification.json"; }
wait_for -m "the post recorded as sent" recorded_sent
assert_eq "$(receiver_count)" 1 "one post"
assert_contains "$(receiver_bodies)" "COMPLETED" "the message, posted without libcurl"
wait_for -m "the watcher's exit" eval '! kill -0 '"$strace_pid"' 2>/dev/null'
opened=$(cat "$IT_DIR/watcher.strace")
assert_contains "$opened" "watcher.env" "the trace covers the post"
if grep -q "libsystemd\|libcurl" <<<"$opened"; then
  fail "the watcher loaded a library between its idle wait and its end: $(grep -o '"[^"]*lib\(systemd\|curl\)[^"]*"' <<<"$opened" | sort -u | tr '\n' ' ')"
fi
pass
