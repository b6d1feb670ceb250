#!/bin/bash
# What a command reports with `runwarden event progress` stays in the run's
# progress (state.json, status, systemctl status) beside the stage counts,
# instead of being replaced by them on the runner's next turn.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
cat >"$IT_DIR/work/suite.sh" <<SH
#!/bin/sh
"$RW_BIN" event progress "suite 3/10 passed"
exec sleep 4712
SH
chmod +x "$IT_DIR/work/suite.sh"
start_run -q --build-name ep-1 --workdir "$IT_DIR/work" --runner-command ./suite.sh
wait_for -m "task running" pgrep -f "^sleep 4712$"
has_progress() { [[ $(run_field ep-1 progress) == *"suite 3/10 passed"* ]]; }
wait_for -m "reported progress in state.json (is '$(run_field ep-1 progress)')" has_progress
sleep 2  # several turns of the runner's loop later
has_progress || fail "the reported progress was replaced: '$(run_field ep-1 progress)'"
assert_contains "$(run_field ep-1 progress)" "stage 1/1" "the stage counts are kept too"
assert_contains "$(ctl status runner@ep-1.service)" "suite 3/10 passed" "systemctl status shows it"
cancel_run --build-name ep-1 >/dev/null
pass
