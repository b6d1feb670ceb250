#!/bin/bash
# start-run ends what it began: a template command that times out, is
# cancelled with cancel-run or interrupted with Ctrl-C has its whole process
# group killed (CANCELLED / FAILED_TO_START, no units, no message); a unit
# start that times out stops what was started; a terminal state someone else
# wrote is never overwritten.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

n=$(unique_seconds)
tmpl="sh -c 'sleep $n & sleep $((n + 1))'"   # a child and a grandchild

# 1. Timeout: FAILED_TO_START, exit 5, nothing left.
rc=0; out=$(start_run -q --build-name tt-1 --template-timeout 1s --template-command "$tmpl" --runner-command true 2>&1) || rc=$?
assert_eq "$rc" 5 "a template timeout is a template failure: $out"
assert_contains "$out" "timed out" "says it timed out"
assert_eq "$(run_status tt-1)" FAILED_TO_START "state after a template timeout"
wait_for -t 15 -m "template processes killed" no_process_matching "^sleep $n$"
wait_for -t 15 -m "template processes killed" no_process_matching "^sleep $((n + 1))$"
assert_eq "$(unit_state runner@tt-1.service)" inactive "no runner started"

# 2. cancel-run during the template: CANCELLED, exit 1, processes gone.
start_run -q --build-name tt-2 --template-command "$tmpl" --runner-command true >"$IT_DIR/tt2.out" 2>&1 &
sr=$!
wait_for -m "template running" pgrep -f "^sleep $((n + 1))$"
cancel_run --build-name tt-2 >/dev/null
rc=0; wait "$sr" || rc=$?
assert_eq "$rc" 1 "start-run reports the cancel: $(cat "$IT_DIR/tt2.out")"
assert_eq "$(run_status tt-2)" CANCELLED "state after cancel-run"
wait_for -t 15 -m "template processes killed" no_process_matching "^sleep $((n + 1))$"
assert_eq "$(unit_state runner@tt-2.service)" inactive "no runner started"

# 3. Ctrl-C (SIGINT to start-run itself, so not through start_run, whose
# subshell would be the one signalled): CANCELLED, processes gone.
"$RW_BUILD/start-run" -q --build-name tt-3 --template-command "$tmpl" --runner-command true >"$IT_DIR/tt3.out" 2>&1 &
sr=$!
wait_for -m "template running" pgrep -f "^sleep $((n + 1))$"
kill -INT "$sr"
rc=0; wait "$sr" || rc=$?
assert_eq "$rc" 130 "start-run exits 130 on SIGINT: $(cat "$IT_DIR/tt3.out")"
assert_eq "$(run_status tt-3)" CANCELLED "state after Ctrl-C"
assert_eq "$(run_field tt-3 decided_by)" start-run "decided by start-run"
wait_for -t 15 -m "template processes killed" no_process_matching "^sleep $((n + 1))$"

# 4. A runner start that times out: both units stopped, FAILED_TO_START.
mkdir -p "$IT_DIR/slow/runner@slow-1.service.d"
cat >"$IT_DIR/slow/runner@slow-1.service.d/slow.conf" <<UNIT
[Service]
ExecStartPre=/bin/sleep $((n + 2))
UNIT
add_units "$IT_DIR/slow/runner@slow-1.service.d"
rc=0; out=$(RUNWARDEN_START_TIMEOUT=2s start_run -q --build-name slow-1 --runner-command true 2>&1) || rc=$?
assert_eq "$rc" 6 "a unit start timeout is a service manager error: $out"
assert_eq "$(run_status slow-1)" FAILED_TO_START "state after a start timeout"
wait_for -t 20 -m "runner@slow-1 stopped" unit_gone runner@slow-1.service
wait_for -t 20 -m "watcher@slow-1 stopped" unit_gone watcher@slow-1.service
wait_for -t 15 -m "the slow start's process is gone" no_process_matching "sleep $((n + 2))"
test ! -e "$RUNWARDEN_STATE_DIR/runs/slow-1/runner.log" || fail "the runner never ran"

sleep 1
assert_eq "$(receiver_count)" 0 "no message for runs that did not start"
pass
