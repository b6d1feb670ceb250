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

# A plan of many short tasks: the runner writes a transition per task, and
# neither unit may turn each into a notification (the watcher looks at
# progress-only writes a second after the first; the runner sends STATUS=
# at most every 250 ms), nor the watcher into a read of the whole run.
n_tasks=400
{
  echo "version: 1"
  echo "stages:"
  echo "  - name: many"
  echo "    parallel: 1"
  echo "    tasks:"
  for ((i = 1; i <= n_tasks; i++)); do printf "      - {name: t%03d, run: 'true'}\n" "$i"; done
} >"$IT_DIR/many.yaml"
start_run -q --build-name st-2 --plan "$IT_DIR/many.yaml" --workdir "$IT_DIR"
wait_status st-2 COMPLETED
wait_watcher_done st-2
wait_for -m "st-2 posted" count_is 2
took_ms=$(run_field st-2 ended_at_ms)
took_ms=$((took_ms - $(run_field st-2 started_at_ms)))
sent_by() {
  journal --no-pager -o cat 2>/dev/null |
    grep -c "^$1@st-2\.service: Got notification message from PID [0-9]* (.*STATUS=" || true
}
watcher_n=$(sent_by watcher)
runner_n=$(sent_by runner)
echo "# $n_tasks tasks in ${took_ms} ms: STATUS= from watcher@st-2 $watcher_n, from runner@st-2 $runner_n"
# One a second (watcher), four a second (runner), plus those of start, end
# and the state's compactions (each written by rename, looked at at once).
((watcher_n <= took_ms / 1000 + 12)) || fail "watcher@st-2 sent $watcher_n STATUS= for a run of $n_tasks tasks in ${took_ms} ms"
((runner_n <= took_ms / 250 + 10)) || fail "runner@st-2 sent $runner_n STATUS= for a run of $n_tasks tasks in ${took_ms} ms"
assert_eq "$(run_status st-2)" COMPLETED "the run of many tasks"
pass
