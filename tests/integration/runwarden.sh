# shellcheck shell=bash
# Helpers for runwarden's own integration tests, on top of lib.sh.

# run_field BUILD FIELD: a top-level field of the run's state.json ("" if unreadable).
run_field() {
  "$IT_PYTHON" - "$RUNWARDEN_STATE_DIR/runs/$1/state.json" "$2" <<'PY' 2>/dev/null || true
import json, sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2])
except Exception:
    v = ""
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))
PY
}
run_status() { run_field "$1" status; }
status_is() { [[ "$(run_status "$1")" == "$2" ]]; }
unit_gone() { local s; s=$(unit_state "$1"); [[ "$s" == inactive || "$s" == failed ]]; }
unit_active() { [[ "$(unit_state "$1")" == active ]]; }
count_is() { [[ "$(receiver_count)" == "$1" ]]; }

# wait_status BUILD STATUS [SECONDS]
wait_status() { wait_for -t "${3:-$RW_WAIT_TIMEOUT}" -m "$1 to be $2 (is $(run_status "$1"))" status_is "$1" "$2"; }
# wait_watcher_done BUILD: the watcher has exited.
wait_watcher_done() { wait_for -t "${2:-$RW_WAIT_TIMEOUT}" -m "watcher@$1 to exit" unit_gone "watcher@$1.service"; }

# start_run ARGS...: start-run through its argv[0] name, as users type it.
start_run() { "$RW_BUILD/start-run" "$@"; }
cancel_run() { "$RW_BUILD/cancel-run" "$@"; }

# no_process_matching PATTERN: nothing in any namespace runs a command line matching it.
no_process_matching() { ! pgrep -f -- "$1" >/dev/null; }

# A number unique to this test, for command lines that must be found later.
unique_seconds() { echo $((3000 + RANDOM % 5000)); }
