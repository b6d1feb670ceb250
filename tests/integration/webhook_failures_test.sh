#!/bin/bash
# 500 twice then ok: delivered once. 400: no retry, recorded, resend works.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

receiver_script '["500","500","ok"]'
start_run -q --build-name wh-1 --runner-command true
wait_status wh-1 COMPLETED
wait_watcher_done wh-1
assert_eq "$(receiver_count)" 3 "two failed attempts and one delivery"
answers=$(receiver_requests | "$IT_PYTHON" -c 'import json,sys; print(" ".join(str(r["answer"]) for r in json.load(sys.stdin)))')
assert_contains "$answers" "ok" "the last attempt delivered"
test -e "$RUNWARDEN_STATE_DIR/runs/wh-1/posted.marker" || fail "posted.marker after delivery"

receiver_reset
receiver_script '["400"]'
start_run -q --build-name wh-2 --runner-command 'exit 3'
wait_status wh-2 FAILED
wait_watcher_done wh-2
sleep 1
assert_eq "$(receiver_count)" 1 "a 400 is not retried"
test ! -e "$RUNWARDEN_STATE_DIR/runs/wh-2/posted.marker" || fail "no marker after a 400"
rec=$(cat "$RUNWARDEN_STATE_DIR/runs/wh-2/notification.json")
assert_contains "$rec" '"status": "failed"' "failure recorded"
assert_contains "$rec" "web.incoming_webhook.invalid.app_error" "Mattermost error id recorded"
assert_not_contains "$rec" "testsecret" "no URL in the record"
assert_contains "$("$RW_BIN" status wh-2)" "failed" "status shows the failed message"

out=$("$RW_BIN" notify --resend wh-2)
assert_contains "$out" "sent run message" "resend output"
assert_eq "$(receiver_count)" 2 "resend delivered"
test -e "$RUNWARDEN_STATE_DIR/runs/wh-2/posted.marker" || fail "marker after resend"
out=$("$RW_BIN" notify --resend wh-2)
assert_contains "$out" "nothing to resend" "second resend sends nothing"
assert_eq "$(receiver_count)" 2 "never twice"
pass
