#!/bin/bash
# A failed run posts exactly one message with the exit code and the log tail.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

start_run -q --build-name fail-1 --runner-command 'for i in $(seq 1 50); do echo "line-$i"; done; echo "assertion failed: widget" >&2; exit 7'
wait_status fail-1 FAILED
wait_watcher_done fail-1
assert_eq "$(receiver_count)" 1 "exactly one post"
body=$(receiver_bodies)
assert_contains "$body" "FAILED" "status in message"
assert_contains "$body" "fail-1" "build in message"
assert_contains "$body" "Exit code" "exit code field"
assert_contains "$body" '"value": "7"' "exit code value"
assert_contains "$body" "assertion failed: widget" "log tail in message"
assert_contains "$body" "line-50" "log tail has the last lines"
assert_eq "$(run_field fail-1 exit_code)" 7 "exit code recorded"
assert_eq "$(unit_state runner@fail-1.service)" inactive "a FAILED run is not restarted"
pass
