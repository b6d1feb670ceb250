# shellcheck shell=bash
# Helpers for runwarden's own integration tests, on top of lib.sh.

# run_field BUILD FIELD: a top-level field of the run's state as runwarden
# reads it (state.json with its journal applied, via `runwarden status
# --json`); from state.json itself when that fails ("" if unreadable).
run_field() {
  { "$RW_BIN" status --json "$1" 2>/dev/null || cat "$RUNWARDEN_STATE_DIR/runs/$1/state.json" 2>/dev/null; } |
    "$IT_PYTHON" -c '
import json, sys
try:
    v = json.load(sys.stdin).get(sys.argv[1])
except Exception:
    v = ""
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))' "$2" 2>/dev/null || true
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

# hosts_up N: N sshd hosts and a guest behind host 1, torn down with the test.
# Writes $IT_DIR/hosts.yaml (the plan's hosts/guests section: h1..hN, g1 via h1).
hosts_up() {
  local n=$1 i
  HOSTS_DIR=$IT_DIR/netns
  export RW_NETNS_PREFIX=${RW_NETNS_PREFIX:-rwi} RW_NETNS_NET=${RW_NETNS_NET:-10.213.0} RW_NETNS_GNET=${RW_NETNS_GNET:-10.214.0}
  "$RW_SRC/tests/integration/netns-hosts.sh" up "$HOSTS_DIR" "$n" >"$IT_DIR/netns.out" 2>&1 ||
    fail "netns hosts: $(cat "$IT_DIR/netns.out")"
  IT_EXTRA_TEARDOWN+=("$RW_SRC/tests/integration/netns-hosts.sh down $HOSTS_DIR")
  # shellcheck disable=SC1091
  source "$HOSTS_DIR/netns.env"
  {
    echo "hosts:"
    for ((i = 1; i <= n; i++)); do
      echo "  h$i: {address: $RW_NETNS_HOST_NET.$((10 + i)), user: root, identity: $RW_NETNS_KEY, known_hosts: $RW_NETNS_KNOWN_HOSTS}"
    done
    echo "guests:"
    echo "  g1: {via: h1, address: $RW_NETNS_GUEST_ADDR, user: root, identity: $RW_NETNS_KEY, known_hosts: $RW_NETNS_KNOWN_HOSTS}"
  } >"$IT_DIR/hosts.yaml"
}

# plan_file NAME: writes $IT_DIR/work/NAME.yaml from stdin, with the hosts section.
plan_file() {
  { echo "version: 1"; cat "$IT_DIR/hosts.yaml"; cat; } >"$IT_DIR/work/$1.yaml"

}
