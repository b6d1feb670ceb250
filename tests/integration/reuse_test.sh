#!/bin/bash
# A build name used again starts clean; the old run is kept in history.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

start_run -q --build-name again --runner-command 'echo first'
wait_status again COMPLETED
wait_watcher_done again
assert_eq "$(receiver_count)" 1 "first run posted"

start_run -q --build-name again --runner-command 'echo second; exit 1'
hist=$(ls "$RUNWARDEN_STATE_DIR/history/again")
assert_eq "$(wc -l <<<"$hist")" 1 "one archived run"
test -e "$RUNWARDEN_STATE_DIR/history/again/$hist/posted.marker" || fail "old marker kept in history"
wait_status again FAILED
wait_watcher_done again
assert_eq "$(receiver_count)" 2 "the new run posted its own message"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/again/runner.log")" "second" "new log"
assert_not_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/again/runner.log")" "first" "no stale log"

# A name whose previous runner@ ended failed (SIGKILLed, not resumable): the
# new run's watcher must not take that old failure for this run's end.
n=$(unique_seconds)
for i in 1 2 3; do
  start_run -q --build-name reborn --runner-command "sleep $n"
  wait_for -m "command running" pgrep -f "^sleep $n$"
  kill -KILL "$(unit_pid runner@reborn.service)"
  wait_status reborn TERMINATED
  wait_watcher_done reborn
  assert_eq "$(unit_state runner@reborn.service)" failed "the old runner@ is left failed"
  before=$(receiver_count)
  start_run -q --build-name reborn --runner-command 'sleep 1; echo reborn'
  wait_status reborn COMPLETED
  wait_watcher_done reborn
  assert_eq "$(receiver_count)" $((before + 1)) "round $i: the new run completed and posted"
done
pass
