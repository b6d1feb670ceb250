#!/bin/bash
# Two start-run of one build name at the same moment: exactly one run.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

pids=()
for i in 1 2; do
  (rc=0; start_run -q --build-name twin --runner-command 'sleep 2' >"$IT_DIR/start$i.out" 2>&1 || rc=$?
   echo $rc >"$IT_DIR/start$i.rc") &
  pids+=($!)
done
wait "${pids[@]}"
rcs=$(cat "$IT_DIR/start1.rc" "$IT_DIR/start2.rc" | sort | tr '\n' ' ')
assert_eq "$rcs" "0 3 " "one start-run wins, the other gets exit 3"
assert_contains "$(cat "$IT_DIR"/start*.out)" "twin" "the loser says why"
test ! -e "$RUNWARDEN_STATE_DIR/history/twin" || fail "the loser archived nothing"
wait_status twin COMPLETED
wait_watcher_done twin
assert_eq "$(receiver_count)" 1 "one run, one message"
pass
