#!/bin/bash
# HUNG stops the run the way cancel does (its command is killed, the state
# stays HUNG, no message, the name is free at once), and output without a
# newline (progress bars, dots) is progress: such a task is not HUNG.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

n=$(unique_seconds)
start_run -q --build-name hung-1 --hung-after 2s --runner-command "echo quiet now; sleep $n"
wait_for -m "command running" pgrep -f "sleep $n"
wait_status hung-1 HUNG 20
wait_for -t 20 -m "runner@hung-1 stopped" unit_gone runner@hung-1.service
wait_for -t 20 -m "the hung command is killed" no_process_matching "sleep $n"
wait_watcher_done hung-1
sleep 1
assert_eq "$(run_status hung-1)" HUNG "the state stays HUNG after the stop"
assert_eq "$(run_field hung-1 decided_by)" watcher "decided by the watcher"
# The name is free again.
start_run -q --build-name hung-1 --runner-command true
wait_status hung-1 COMPLETED
wait_watcher_done hung-1
assert_eq "$(receiver_count)" 1 "only the second run posted"

# Dots every 0.3s for 5s, no newline, with hung_after 2s: progress, not HUNG.
receiver_reset
start_run -q --build-name dots-1 --hung-after 2s \
  --runner-command 'i=0; while [ $i -lt 16 ]; do printf .; sleep 0.3; i=$((i+1)); done'
wait_status dots-1 COMPLETED 30
wait_watcher_done dots-1
assert_eq "$(receiver_count)" 1 "the dotted run completed and posted"
start_run -q --build-name bar-1 --hung-after 2s \
  --runner-command 'for p in 10 20 30 40 50 60 70 80 90 100; do printf "\r%s%%" $p; sleep 0.5; done; echo'
wait_status bar-1 COMPLETED 30
wait_watcher_done bar-1
assert_eq "$(receiver_count)" 2 "the progress-bar run completed and posted"
pass
