#!/bin/bash
# Exactly one request per message, whatever a Slack-compatible server
# answers: 200 with JSON and 204 are deliveries, 404 and 400 are final
# failures (recorded, never retried by the watcher). Plain and categorized
# runs, with exact request counts after the watcher has exited.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

cat >"$IT_DIR/work/two.sh" <<SH
#!/bin/sh
"$RW_BIN" event subrun linux --status COMPLETED --exit-code 0
"$RW_BIN" event subrun windows --status FAILED --exit-code 2
sleep 1
SH
chmod +x "$IT_DIR/work/two.sh"

i=0
for answer in json 204 404 400; do
  i=$((i + 1))
  receiver_reset
  receiver_script '[]' "$answer"
  start_run -q --build-name plain-$i --runner-command true
  wait_status plain-$i COMPLETED
  wait_watcher_done plain-$i
  start_run -q --build-name cat-$i --categorize --subrun-grace 3s --runner-command ./two.sh
  wait_status cat-$i COMPLETED
  wait_watcher_done cat-$i
  sleep 1  # anything still coming would arrive now
  assert_eq "$(receiver_count)" 3 "answer $answer: one request for the run and one per sub-run"
  rec=$(cat "$RUNWARDEN_STATE_DIR/runs/plain-$i/notification.json")
  case $answer in
    json|204)
      for m in runs/plain-$i runs/cat-$i/subruns/linux runs/cat-$i/subruns/windows; do
        test -e "$RUNWARDEN_STATE_DIR/$m/posted.marker" || fail "answer $answer: no marker in $m"
      done
      assert_contains "$rec" '"status": "sent"' "answer $answer: recorded as sent"
      assert_contains "$rec" "HTTP $([[ $answer == json ]] && echo 200 || echo 204)" "answer $answer: the answer is kept"
      ;;
    *)
      for m in runs/plain-$i runs/cat-$i/subruns/linux runs/cat-$i/subruns/windows; do
        test ! -e "$RUNWARDEN_STATE_DIR/$m/posted.marker" || fail "answer $answer: marker in $m"
        assert_contains "$(cat "$RUNWARDEN_STATE_DIR/$m/notification.json")" '"status": "failed"' \
          "answer $answer: $m recorded as failed"
      done
      ;;
  esac
done

# A finally failed message goes out again only through notify --resend.
receiver_reset
out=$("$RW_BIN" notify --resend cat-4)
assert_contains "$out" "sent sub-run linux" "resend of a failed sub-run"
assert_eq "$(receiver_count)" 2 "resend sent both failed sub-run messages once"
pass
