#!/bin/bash
# The watcher's own verdicts: TERMINATED (runner SIGKILLed, cannot resume),
# HUNG (no progress), UNKNOWN (unreadable state). None of them posts.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

n=$(unique_seconds)
start_run -q --build-name term-1 --runner-command "echo working; sleep $n"
wait_for -m "command running" pgrep -f "sleep $n"
pid=$(unit_pid runner@term-1.service)
assert_ne "$pid" 0 "runner has a main pid"
kill -KILL "$pid"
wait_status term-1 TERMINATED
assert_eq "$(run_field term-1 decided_by)" watcher "TERMINATED decided by the watcher"
wait_watcher_done term-1
wait_for -t 20 -m "the killed runner's command is gone" no_process_matching "sleep $n"

start_run -q --build-name hung-1 --hung-after 2s --runner-command "echo quiet now; sleep $((n+1))"
wait_status hung-1 HUNG 20
wait_watcher_done hung-1

start_run -q --build-name unknown-1 --runner-command "sleep $((n+2))"
wait_for -m "command running" pgrep -f "sleep $((n+2))"
printf '{"schema":1,"status":"RUNN' >"$RUNWARDEN_STATE_DIR/runs/unknown-1/state.json"
wait_watcher_done unknown-1
assert_contains "$(journal -u watcher@unknown-1.service --no-pager -o cat)" "UNKNOWN" "watcher says UNKNOWN"
assert_contains "$("$RW_BIN" status unknown-1)" "UNKNOWN" "status shows UNKNOWN"

# A status the watcher does not know is UNKNOWN too, never a post.
start_run -q --build-name unknown-2 --runner-command "sleep $((n+3))"
wait_for -m "command running" pgrep -f "sleep $((n+3))"
sed -i 's/"status": "RUNNING"/"status": "Completed"/' "$RUNWARDEN_STATE_DIR/runs/unknown-2/state.json"
wait_watcher_done unknown-2

sleep 1
assert_eq "$(receiver_count)" 0 "no message for TERMINATED, HUNG or UNKNOWN"
pass
