#!/bin/bash
# runner@ and watcher@ start side by side (Wants= without After=), so a run
# may end before its watcher first looks. The watcher reconciles from the
# run's files and the runner's unit whenever it starts: a run that already
# ended COMPLETED or FAILED posts exactly once; one that was cancelled, or
# whose runner died for good, posts nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# posts_for BUILD: how many recorded messages name BUILD.
posts_for() { receiver_bodies | grep -c -w -- "$1" || true; }
posts_are() { [[ "$(posts_for "$1")" == "$2" ]]; }

# 1. Commands that end at once, one run after the other: every run posts
# exactly once, with its status, whichever unit was ready first.
for i in 1 2 3 4 5 6; do
  cmd=true
  ((i % 3 == 0)) && cmd=false
  start_run -q --build-name "fast-$i" --runner-command "$cmd"
done
for i in 1 2 3 4 5 6; do
  want=COMPLETED
  ((i % 3 == 0)) && want=FAILED
  wait_status "fast-$i" "$want"
  wait_watcher_done "fast-$i"
  wait_for -m "fast-$i posted" posts_are "fast-$i" 1
done

# Watchers of the late-* runs wait before their first look (a slow start,
# a busy manager): by then their runner has ended or died.
for b in late-ok late-killed late-cancel; do
  mkdir -p "$IT_DIR/extra/watcher@$b.service.d"
done
printf '[Service]\nExecStartPre=/bin/sleep 2\n' >"$IT_DIR/extra/watcher@late-ok.service.d/50-late.conf"
printf '[Service]\nExecStartPre=/bin/sleep 6\n' >"$IT_DIR/extra/watcher@late-killed.service.d/50-late.conf"
printf '[Service]\nExecStartPre=/bin/sleep 3\n' >"$IT_DIR/extra/watcher@late-cancel.service.d/50-late.conf"
add_units "$IT_DIR/extra/watcher@late-ok.service.d" "$IT_DIR/extra/watcher@late-killed.service.d" \
  "$IT_DIR/extra/watcher@late-cancel.service.d"

# journal_order UNIT_A TEXT_A UNIT_B TEXT_B: TEXT_A (UNIT_A) was logged
# before TEXT_B (UNIT_B).
journal_order() {
  local log a b
  log=$(journal -u "$1" -u "$3" --no-pager -o cat || true)
  a=$(grep -n -- "$2" <<<"$log" | head -1 | cut -d: -f1)
  b=$(grep -n -- "$4" <<<"$log" | head -1 | cut -d: -f1)
  [[ -n "$a" && -n "$b" ]] || fail "journal lacks '$2' or '$4': $log"
  ((a < b)) || fail "'$2' was not logged before '$4': $log"
}

# 2. The run is over before its watcher looks: one message all the same.
# (start-run returns once both units are up: the watcher's start is what
# it waited for here.)
start_run -q --build-name late-ok --runner-command 'echo quick'
assert_eq "$(run_status late-ok)" COMPLETED "the run ended while start-run waited for the watcher"
wait_watcher_done late-ok
wait_for -m "late-ok posted" posts_are late-ok 1
journal_order runner@late-ok.service "run COMPLETED" watcher@late-ok.service "watching run late-ok"

# 3. The runner is killed and cannot resume (no retries) before its watcher
# looks: TERMINATED, recorded by the watcher, and no message.
start_run -q --build-name late-killed --runner-command 'kill -KILL $PPID; sleep 60'
wait_status late-killed TERMINATED 30
assert_eq "$(run_field late-killed decided_by)" watcher "TERMINATED decided by the watcher"
wait_watcher_done late-killed
journal_order runner@late-killed.service "the run cannot resume" watcher@late-killed.service "watching run late-killed"

# 4. cancel-run before the watcher looks: CANCELLED, no message, and the
# watcher exits by itself.
start_run -q --build-name late-cancel --runner-command 'sleep 600' &
starter=$!
wait_status late-cancel RUNNING
cancel_run --build-name late-cancel >/dev/null
wait "$starter" || true
assert_eq "$(run_status late-cancel)" CANCELLED "cancelled"
wait_watcher_done late-cancel
assert_contains "$(journal -u watcher@late-cancel.service --no-pager -o cat || true)" "cancelled: no message" \
  "the watcher saw the cancel when it first looked"

# 5. In a burst of starts, each run's watcher is forked before its runner
# and runs ahead of it (Nice=-5: the manager dispatches the jobs of a
# transaction by CPU weight, then nice, then name, and "runner@" sorts before
# "watcher@"), so a run that ends at once does not wait for its watcher
# behind the other runs' runners. The tasks keep the default nice.
ctl log-level debug
pids=()
for i in 1 2 3; do
  start_run -q --build-name "burst-$i" --runner-command 'echo "nice=$(cut -d" " -f19 /proc/self/stat)"' &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
ctl log-level info
for i in 1 2 3; do
  wait_status "burst-$i" COMPLETED
  wait_watcher_done "burst-$i"
  journal_order watcher@burst-$i.service "Forked .*runwarden-watcher as" runner@burst-$i.service "Forked .*runwarden as"
  assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/burst-$i/runner.log")" "nice=0" \
    "the run's command runs at the default nice"
done

sleep 1
assert_eq "$(posts_for late-killed)" 0 "no message for TERMINATED"
assert_eq "$(posts_for late-cancel)" 0 "no message for CANCELLED"
assert_eq "$(receiver_count)" 10 "one message per run that ended COMPLETED or FAILED, none other"
pass
