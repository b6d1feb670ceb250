#!/bin/bash
# A host without a system bus: start-run, cancel-run, the watcher and the
# runner talk to the manager's private socket. A run completes and posts
# once; a SIGKILLed runner that cannot resume is TERMINATED; cancel works.
export RUNWARDEN_SANDBOX_DBUS=0
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
test ! -e "$IT_SANDBOX/system-bus-address" || fail "the sandbox has a system bus"
test -z "${DBUS_SYSTEM_BUS_ADDRESS:-}" || fail "the harness pointed at a system bus"

start_run -q --build-name pb-1 --runner-command 'echo hello'
wait_status pb-1 COMPLETED
wait_watcher_done pb-1
wait_for -m "one post" count_is 1
assert_contains "$(journal -u watcher@pb-1.service -o cat)" "service manager: unix:path=/run/systemd/private" \
  "the watcher fell back to the private socket"

n=$(unique_seconds)
start_run -q --build-name pb-2 --runner-command "sleep $n"
wait_for -m "command running" pgrep -f "sleep $n"
kill -KILL "$(unit_pid runner@pb-2.service)"
wait_status pb-2 TERMINATED
wait_watcher_done pb-2

start_run -q --build-name pb-3 --runner-command "sleep $((n + 1))"
wait_for -m "command running" pgrep -f "sleep $((n + 1))"
cancel_run --build-name pb-3 >/dev/null
assert_eq "$(run_status pb-3)" CANCELLED "cancelled"
wait_watcher_done pb-3
wait_for -t 20 -m "the cancelled command is gone" no_process_matching "sleep $((n + 1))"
sleep 1
assert_eq "$(receiver_count)" 1 "only the completed run posted"
pass
