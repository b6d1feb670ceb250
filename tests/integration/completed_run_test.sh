#!/bin/bash
# A run that completes posts exactly one message with its build and status,
# and shows its progress in systemctl status while it runs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

start_run --build-name ok-1 --meta branch=main \
  --runner-command 'echo step one; touch "$RUNWARDEN_RUN_DIR/go.wait"; while [ ! -e "$RUNWARDEN_RUN_DIR/go" ]; do sleep 0.1; done; echo done' >/dev/null
wait_for -m "runner running" test -e "$RUNWARDEN_STATE_DIR/runs/ok-1/go.wait"
assert_eq "$(run_status ok-1)" RUNNING "state while running"
st=$(ctl status runner@ok-1.service --no-pager || true)
assert_contains "$st" "Status: \"stage 1/1 run: 0/1 done, 1 running\"" "systemctl status shows progress"
assert_eq "$(unit_state watcher@ok-1.service)" active "watcher runs alongside"
assert_eq "$(receiver_count)" 0 "no message while running"
touch "$RUNWARDEN_STATE_DIR/runs/ok-1/go"

wait_status ok-1 COMPLETED
wait_watcher_done ok-1
assert_eq "$(receiver_count)" 1 "exactly one post"
body=$(receiver_bodies)
assert_contains "$body" "ok-1" "message names the build"
assert_contains "$body" "COMPLETED" "message has the status"
assert_contains "$body" "branch" "message has meta fields"
assert_eq "$(receiver_requests | "$IT_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["path"])')" /hooks/testsecret "posted to the configured hook"
test -e "$RUNWARDEN_STATE_DIR/runs/ok-1/posted.marker" || fail "posted.marker written"
assert_eq "$(run_field ok-1 exit_code)" 0 "exit code recorded"

# Output reached runner.log; the journal has the run's summaries with the build's field.
assert_contains "$("$RW_BIN" logs ok-1)" "step one" "runwarden logs shows the output"
assert_contains "$(journal RUNWARDEN_BUILD=ok-1 --no-pager -o cat || true)" "run COMPLETED" "journal has RUNWARDEN_BUILD= lines"
# The secret URL never appears in the journal.
assert_not_contains "$(journal --no-pager -o cat || true)" "testsecret" "webhook URL not logged"
status_json=$("$RW_BIN" status ok-1 --json)
assert_contains "$status_json" '"status": "COMPLETED"' "status --json"
assert_contains "$("$RW_BIN" list)" "ok-1" "list shows the run"
sleep 1
assert_eq "$(receiver_count)" 1 "still exactly one post"
pass
