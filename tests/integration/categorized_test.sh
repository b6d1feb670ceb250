#!/bin/bash
# A categorized run with 3 sub-runs (2 completed, 1 failed) posts 3 messages.
# The runner closes every sub-run before writing its end, so the watcher
# leaves as soon as the posts are made, not after the grace window, and the
# name can be started again at once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

cat >"$IT_DIR/work/suites.sh" <<SH
#!/bin/sh
ev() { "$RW_BIN" event "\$@"; }
ev subrun linux --status RUNNING
ev progress "linux"
echo "linux suite ok"
ev subrun linux --status COMPLETED --exit-code 0 --message "412 passed"
ev subrun windows --status RUNNING
echo "windows: test_login FAILED" > "\$PWD/windows.log"
ev subrun windows --status FAILED --exit-code 3 --log windows.log --message "1 failed"
# A raw line, as a script without the helper would write it.
echo '{"type":"subrun","key":"bsd","status":"COMPLETED","exit_code":0}' >> "\$RUNWARDEN_EVENTS"
echo 'not json at all' >> "\$RUNWARDEN_EVENTS"
exit 0
SH
chmod +x "$IT_DIR/work/suites.sh"
start_run -q --build-name cat-1 --categorize --subrun-grace 60s --workdir "$IT_DIR/work" --runner-command ./suites.sh
wait_status cat-1 COMPLETED
wait_for -m "three posts" count_is 3
wait_watcher_done cat-1 15
bodies=$(receiver_bodies)
assert_contains "$bodies" "linux" "linux sub-run posted"
assert_contains "$bodies" "bsd" "bsd sub-run posted"
assert_contains "$bodies" "test_login FAILED" "failed sub-run carries its log tail"
assert_eq "$(grep -c FAILED <<<"$bodies")" 1 "one failure message"
for k in linux windows bsd; do
  test -e "$RUNWARDEN_STATE_DIR/runs/cat-1/subruns/$k/posted.marker" || fail "marker for $k"
done
assert_eq "$(receiver_count)" 3 "no parent message for a categorized run"
assert_contains "$("$RW_BIN" status cat-1)" "windows" "status lists sub-runs"
pass
