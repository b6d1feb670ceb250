#!/bin/bash
# A runner SIGKILLed in the middle of stage 2 is restarted by systemd and
# resumes: stage 1 is not re-run, the run completes, one message. A cancel
# in the middle of long remote commands leaves no process on any host.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
hosts_up 2
D=$IT_DIR/remote
mkdir -p "$D"

plan_file resume <<EOF
stages:
  - name: one
    tasks: [{name: first, on: [h1, h2, g1], run: 'echo ran >> $D/first.\$RUNWARDEN_TARGET'}]
  - name: two
    retries: 1
    tasks:
      - {name: slow, on: h1, run: 'echo attempt >> $D/slow.runs; [ \$(wc -l < $D/slow.runs) -ge 2 ] && exit 0; touch $D/slow.started; sleep 600'}
  - name: three
    tasks: [{name: last, on: h2, run: 'echo done > $D/last'}]
EOF
start_run -q --build-name resume --plan "$IT_DIR/work/resume.yaml"
wait_for -t 60 -m "stage 2 running" test -e "$D/slow.started"
pid=$(unit_pid runner@resume.service)
kill -KILL "$pid"
wait_status resume COMPLETED 90
wait_watcher_done resume
for f in "$D"/first.*; do
  assert_eq "$(wc -l <"$f")" 1 "stage 1 task $(basename "$f") ran once"
done
assert_eq "$(ls "$D"/first.* | wc -l)" 3 "stage 1 ran on three targets"
assert_eq "$(wc -l <"$D/slow.runs")" 2 "the interrupted task counted as an attempt and ran again"
test -e "$D/last" || fail "stage 3 ran"
assert_eq "$(run_field resume runner_starts)" 2 "one restart"
assert_eq "$(receiver_count)" 1 "exactly one message"
wait_for -t 30 -m "the killed runner's remote command is gone" no_process_matching "sleep 600"

n=$(unique_seconds)
plan_file cancel <<EOF
stages:
  - name: long
    tasks:
      - {name: hold, on: [h1, h2, g1], run: 'sleep $n & sh -c "trap \"\" TERM; sleep $((n+1))" & touch $D/hold.\$RUNWARDEN_TARGET; wait'}
EOF
start_run -q --build-name cancel-remote --plan "$IT_DIR/work/cancel.yaml"
all_holding() { [[ -e $D/hold.h1 && -e $D/hold.h2 && -e $D/hold.g1 ]]; }
wait_for -t 60 -m "commands running on all targets" all_holding
wait_for -m "remote processes" pgrep -f "sleep $((n+1))"
cancel_run --build-name cancel-remote >/dev/null
assert_eq "$(run_status cancel-remote)" CANCELLED "state"
wait_for -t 30 -m "no remote process left" no_process_matching "sleep $n"
wait_for -t 30 -m "no SIGTERM-ignoring remote process left" no_process_matching "sleep $((n+1))"
wait_watcher_done cancel-remote
sleep 1
assert_eq "$(receiver_count)" 1 "no message for the cancelled run"
pass
