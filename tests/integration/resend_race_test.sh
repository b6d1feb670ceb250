#!/bin/bash
# notify --resend never duplicates a live watcher's post: while watcher@X is
# still retrying (record "pending", delivery lock held), resend refuses with
# exit 3 and sends nothing; once the delivery finally failed, resend sends
# it exactly once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# The watcher's retries take 0.5 + 1 + 2 + 4 s before its 5th attempt.
receiver_script '["500","500","500","500","ok"]'
start_run -q --build-name rs-1 --runner-command true
wait_status rs-1 COMPLETED
wait_for -m "the watcher's first attempt" count_is 1
rc=0; out=$("$RW_BIN" notify --resend rs-1 2>&1) || rc=$?
assert_eq "$rc" 3 "resend refuses while the watcher delivers: $out"
assert_contains "$out" "watcher@rs-1" "the message names the watcher"
wait_watcher_done rs-1 40
sleep 1
assert_eq "$(receiver_count)" 5 "four failed attempts and one delivery, nothing from resend"
test -e "$RUNWARDEN_STATE_DIR/runs/rs-1/posted.marker" || fail "delivered by the watcher"
out=$("$RW_BIN" notify --resend rs-1)
assert_contains "$out" "nothing to resend" "nothing left to send"
assert_eq "$(receiver_count)" 5 "still five"

# A message whose delivery finally failed: resend sends it, once.
receiver_reset
receiver_script '["400"]'
start_run -q --build-name rs-2 --runner-command 'exit 4'
wait_status rs-2 FAILED
wait_watcher_done rs-2
out=$("$RW_BIN" notify --resend rs-2)
assert_contains "$out" "sent run message" "resend of a failed delivery"
assert_eq "$(receiver_count)" 2 "the 400 and the resend"
pass
