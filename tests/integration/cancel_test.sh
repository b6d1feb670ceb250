#!/bin/bash
# cancel-run during a run: state CANCELLED, no message, no process left.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

n=$(unique_seconds)
# Children in the background and a grandchild that ignores SIGTERM.
start_run -q --build-name cancel-1 --runner-command "sleep $n & sh -c 'trap \"\" TERM; sleep $((n+1))' & echo started; sleep $((n+2)); wait"
wait_for -m "command running" pgrep -f "sleep $((n+2))"
wait_for -m "all children running" pgrep -f "sleep $((n+1))"
out=$(cancel_run --build-name cancel-1 --reason "testing cancel")
assert_contains "$out" "cancelled cancel-1" "cancel-run output"
assert_eq "$(run_status cancel-1)" CANCELLED "state"
assert_eq "$(run_field cancel-1 reason)" "testing cancel" "reason recorded"
test -e "$RUNWARDEN_STATE_DIR/runs/cancel-1/cancelled.marker" || fail "cancelled.marker"
wait_for -t 20 -m "no process of the run left" no_process_matching "sleep $n"
no_process_matching "sleep $((n+1))" || fail "SIGTERM-ignoring child still running"
no_process_matching "sleep $((n+2))" || fail "command still running"
wait_watcher_done cancel-1
assert_eq "$(unit_state runner@cancel-1.service)" inactive "runner stopped"
sleep 2
assert_eq "$(receiver_count)" 0 "no message for a cancelled run"

# Idempotent: a second cancel changes nothing and succeeds.
out=$(cancel_run --build-name cancel-1)
assert_contains "$out" "already ended: CANCELLED" "second cancel"
# Unknown build: clear error, exit 4.
rc=0; msg=$(cancel_run --build-name no-such-run 2>&1) || rc=$?
assert_eq "$rc" 4 "exit code for an unknown build"
assert_contains "$msg" "no run named no-such-run" "message for an unknown build"
pass
