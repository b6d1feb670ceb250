#!/bin/bash
# Task output goes to runner.log and the task's log, not line by line to the
# journal (which gets summaries and whose rate limit would drop lines), and
# runner.log rotates at $RUNWARDEN_RUNNER_LOG_MAX, which `status` says.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
mkdir -p "$IT_DIR/cap/runner@.service.d"
printf '[Service]\nEnvironment=RUNWARDEN_RUNNER_LOG_MAX=20000\n' >"$IT_DIR/cap/runner@.service.d/60-log-cap.conf"
add_units "$IT_DIR/cap/runner@.service.d"

start_run -q --build-name rl-1 --runner-command 'i=0; while [ $i -lt 3000 ]; do echo "output line $i"; i=$((i+1)); done'
wait_status rl-1 COMPLETED
run=$RUNWARDEN_STATE_DIR/runs/rl-1
assert_eq "$(cat "$run"/tasks/*/* | grep -c '^output line')" 3000 "the task's log has every line"
[[ -f $run/runner.log.1 ]] || fail "runner.log was not rotated"
size=$(stat -c %s "$run/runner.log")
((size <= 20000 + 200)) || fail "runner.log is $size bytes, over its cap"
assert_contains "$("$RW_BIN" status rl-1)" "runner.log was rotated" "status says so"
lines=$(journal -u runner@rl-1.service | grep -c 'output line' || true)
((lines == 0)) || fail "$lines output lines went to the journal"
assert_contains "$(journal -u runner@rl-1.service)" "task command@controller completed" "the journal has the summary"
pass
