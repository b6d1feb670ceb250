#!/bin/bash
# Retries: a task failing twice then succeeding with retries: 2 completes;
# with retries: 1 the run FAILED and the message names stage, task, target.
# retry: stage aborts and restarts the siblings; restart_from re-runs from
# the named stage.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
hosts_up 2
D=$IT_DIR/remote
mkdir -p "$D"
# flaky NAME: fails on its first two attempts, then succeeds.
flaky="n=\$(cat $D/\$RUNWARDEN_TASK.count 2>/dev/null || echo 0); n=\$((n+1)); echo \$n > $D/\$RUNWARDEN_TASK.count; echo attempt \$n; [ \$n -ge 3 ] || { echo flaky failure >&2; exit 4; }"

plan_file retries2 <<EOF
stages:
  - name: setup
    tasks: [{name: ok, on: h1, run: 'true'}]
  - name: test
    retries: 2
    retry_delay: 200ms
    tasks: [{name: flaky-a, on: h2, run: '$flaky'}]
EOF
start_run -q --build-name retry-ok --plan "$IT_DIR/work/retries2.yaml"
wait_status retry-ok COMPLETED 60
wait_watcher_done retry-ok
assert_eq "$(cat "$D/flaky-a.count")" 3 "three attempts"
assert_contains "$("$RW_BIN" status retry-ok)" "attempts 3" "attempts shown"
assert_eq "$(receiver_count)" 1 "one message"
assert_contains "$(receiver_bodies)" "COMPLETED" "completed"

plan_file retries1 <<EOF
stages:
  - name: setup
    tasks: [{name: ok, on: h1, run: 'true'}]
  - name: test
    retries: 1
    tasks: [{name: flaky-b, on: h2, run: '$flaky'}]
EOF
start_run -q --build-name retry-fail --plan "$IT_DIR/work/retries1.yaml"
wait_status retry-fail FAILED 60
wait_watcher_done retry-fail
assert_eq "$(cat "$D/flaky-b.count")" 2 "two attempts"
assert_eq "$(receiver_count)" 2 "one more message"
body=$(receiver_bodies | tail -n 1)
assert_contains "$body" "FAILED" "failed"
assert_contains "$body" "test / flaky-b @ h2" "names stage, task and target"
assert_contains "$body" "flaky failure" "log tail"

# retry: stage. bad fails on its first attempt while sib is still in its
# slow first attempt: sib is aborted (never finishes) and the stage runs again.
count="n=\$(cat $D/\$RUNWARDEN_TASK.count 2>/dev/null || echo 0); n=\$((n+1)); echo \$n > $D/\$RUNWARDEN_TASK.count"
plan_file stage-retry <<EOF
stages:
  - name: both
    retry: stage
    retries: 1
    tasks:
      - {name: sib, on: h1, run: '$count; [ \$n -ge 2 ] && exit 0; sleep 30; echo finished >> $D/sib.log'}
      - {name: bad, on: h2, run: '$count; [ \$n -ge 2 ] && exit 0; sleep 0.5; exit 1'}
EOF
start_run -q --build-name stage-retry --plan "$IT_DIR/work/stage-retry.yaml"
wait_status stage-retry COMPLETED 60
assert_eq "$(cat "$D/sib.count")" 2 "the sibling ran again with the stage"
assert_eq "$(cat "$D/bad.count")" 2 "the failed task ran again"
test ! -e "$D/sib.log" || fail "the sibling's first attempt was waited for instead of aborted"
wait_for -t 20 -m "the aborted sibling's processes gone from h1" no_process_matching "sleep 30; echo finished"

# restart_from: verify fails once, which re-runs from deploy.
plan_file restart <<EOF
stages:
  - name: deploy
    tasks: [{name: install, on: h1, run: 'echo x >> $D/deploy.runs'}]
  - name: verify
    restart_from: deploy
    tasks: [{name: check, on: h2, run: '[ \$(wc -l < $D/deploy.runs) -ge 2 ]'}]
EOF
start_run -q --build-name restart --plan "$IT_DIR/work/restart.yaml"
wait_status restart COMPLETED 60
assert_eq "$(wc -l <"$D/deploy.runs")" 2 "deploy ran again after verify failed"
pass
