#!/bin/bash
# The watcher mirrors the run's status in its own STATUS= (systemctl status
# watcher@X), and sends it only when it changed: it wakes for every write to
# the run's files, and each notification costs the service manager a
# message, a lookup of the sender's unit and a property change to signal.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# The manager logs every notification it gets at debug level.
ctl log-level debug
start_run -q --build-name st-1 --runner-command 'for i in 1 2 3; do echo step $i; sleep 0.5; done'
wait_status st-1 COMPLETED
wait_watcher_done st-1
wait_for -m "st-1 posted" count_is 1

# STATUS= texts watcher@st-1 sent, in order.
statuses=$(journal --no-pager -o cat 2>/dev/null |
  sed -n 's/^watcher@st-1\.service: Got notification message from PID [0-9]* (.*\(STATUS=.*\))$/\1/p' || true)
n=$(grep -c . <<<"$statuses" || true)
((n >= 3)) || fail "expected several STATUS= from watcher@st-1 (READY, the run's states, STOPPING), got: $statuses"
assert_contains "$statuses" "STATUS=RUNNING" "the watcher mirrored the running run"
assert_contains "$statuses" "STATUS=run COMPLETED" "the watcher's last status"
dups=$(uniq -d <<<"$statuses")
assert_eq "$dups" "" "no STATUS= sent twice in a row by watcher@st-1 (all: $statuses)"
pass
