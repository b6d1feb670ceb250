#!/bin/bash
# runner@ has a watchdog, and the runner pings it from its main loop at half
# the interval it is given: with WatchdogSec=2s a task of 6 s completes, and
# a runner whose loop stops (SIGSTOP) is killed by the manager and resumed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
mkdir -p "$IT_DIR/wd/runner@.service.d"
printf '[Service]\nWatchdogSec=2s\n' >"$IT_DIR/wd/runner@.service.d/60-watchdog.conf"
add_units "$IT_DIR/wd/runner@.service.d"

start_run -q --build-name wd-1 --runner-command 'sleep 6'
assert_eq "$(ctl show -p WatchdogUSec --value runner@wd-1.service)" 2s "the drop-in is in effect"
wait_status wd-1 COMPLETED 30
assert_eq "$(run_field wd-1 runner_starts)" 1 "never killed by its watchdog"
assert_not_contains "$(journal -u runner@wd-1.service)" "Watchdog timeout" "no watchdog timeout"

start_run -q --build-name wd-2 --runner-command 'sleep 4711'
wait_for -m "task running" pgrep -f "^sleep 4711$"
pid=$(unit_pid runner@wd-2.service)
kill -STOP "$pid"
wait_for -t 30 -m "the watchdog fires" eval 'journal -u runner@wd-2.service | grep -q "Watchdog timeout"'
kill -CONT "$pid" 2>/dev/null || true
cancel_run --build-name wd-2 >/dev/null
pass
