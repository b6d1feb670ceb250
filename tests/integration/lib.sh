# shellcheck shell=bash
# tests/integration/lib.sh: sourced by every tests/integration/*_test.sh.
#
# A test is a small bash script:
#
#   #!/bin/bash
#   source "$(dirname "$0")/lib.sh"
#   it_setup                       # receiver + service manager + units
#   receiver_script '["500","ok"]'
#   "$RW_BUILD/start-run" b1 --runner-command true   # talks to the sandbox
#   wait_for test "$(receiver_count)" -ge 1
#   assert_eq "$(receiver_count)" 1 "exactly one post"
#   pass
#
# Inputs (environment):
#   RW_BUILD   build dir with the runwarden binary and units/{runner,watcher}@.service
#              (default: $RW_SRC/build)
#   RW_SRC     source dir (default: two levels above this file)
#   RW_IT_ROOT where per-test directories go (default /var/lib/runwarden-it).
#              Not /tmp or /var/tmp: the sandbox mounts its own tmpfs there and
#              PrivateTmp=yes services would not see the test's files.
#   RW_KEEP=1  keep the test directory (and print where it is)
#   RW_WAIT_TIMEOUT default timeout of wait_for, seconds (30)
#   RUNWARDEN_SANDBOX=force  use a throwaway systemd even on a systemd host
#   RUNWARDEN_SANDBOX_DBUS=0 no system bus in the sandbox: every client talks
#              to the manager's private socket (the fallback of hosts without
#              dbus); by default dbus-daemon runs there, as on a production host
#   RW_IT_PRIVATE_BUS=1 the CLI run by the test uses the manager's private
#              socket even when there is a system bus (as older builds did
#              as root; for comparing with them)
#
# After it_setup (exported, for the CLI the test runs in the root namespace):
#   IT_NAME IT_DIR IT_SANDBOX RW_BIN RECEIVER_PORT RECEIVER_URL WEBHOOK_URL
#   RUNWARDEN_STATE_DIR RUNWARDEN_WEBHOOK_ENV, and the manager's address:
#   DBUS_SYSTEM_BUS_ADDRESS (its system bus) or, without one,
#   RUNWARDEN_BUS_ADDRESS (its private socket, through the sandbox's proxy)
#
# Functions:
#   it_setup [--no-project-units] [UNITSRC...]   it_teardown (EXIT trap; do
#     not replace that trap, call it_teardown yourself if you must)
#   ctl ARGS (systemctl)  journal ARGS (journalctl)  sandbox_exec CMD
#   reload_units  add_units UNITSRC...  unit_state UNIT (ActiveState)
#   unit_pid UNIT (MainPID as a pid of the test's namespace, for kill/proc)
#   unit_ns_pid UNIT (MainPID as the manager reports it)
#   receiver_script JSON_LIST [DEFAULT]  receiver_reset  receiver_count
#   receiver_bodies (JSON lines)  receiver_requests (JSON list)
#   wait_for [-t SECS] [-m MSG] CMD...  assert_eq GOT WANT MSG
#   assert_ne  assert_contains HAYSTACK NEEDLE MSG  assert_not_contains
#   fail MSG  pass
# A command failing unexpectedly (set -e) is reported as FAIL with its line.

set -Eeuo pipefail

RW_SRC=${RW_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RW_BUILD=${RW_BUILD:-$RW_SRC/build}
RW_IT_ROOT=${RW_IT_ROOT:-/var/lib/runwarden-it}
RW_WAIT_TIMEOUT=${RW_WAIT_TIMEOUT:-30}
IT_NAME=${IT_NAME:-$(basename "$0" .sh)}
IT_SANDBOX_SH=$RW_SRC/scripts/systemd-sandbox.sh
# The distribution's python starts fast; shims (pyenv) can take a second.
if [[ -z "${IT_PYTHON:-}" ]]; then
  if [[ -x /usr/bin/python3 ]]; then IT_PYTHON=/usr/bin/python3; else IT_PYTHON=$(command -v python3 || echo python3); fi
fi
IT_DIR=""
IT_SANDBOX=""
IT_RECEIVER_PID=""
IT_FAILED=0
IT_PASSED=0
IT_TORN_DOWN=0
IT_EXTRA_TEARDOWN=()  # commands it_teardown runs after stopping the manager
export RW_SRC RW_BUILD IT_NAME

# ------------------------------------------------------------------ results
fail() {
  IT_FAILED=1
  echo "FAIL $IT_NAME: $*" >&2
  exit 1
}

pass() {
  IT_PASSED=1
  echo "PASS $IT_NAME"
}

it__on_err() {
  local rc=$1 line=$2 cmd=$3
  ((IT_FAILED)) && return 0
  IT_FAILED=1
  echo "FAIL $IT_NAME: line $line: '$cmd' exited with status $rc" >&2
}
trap 'it__on_err $? $LINENO "$BASH_COMMAND"' ERR

# ------------------------------------------------------------------ asserts
assert_eq() {
  local got=$1 want=$2 msg=${3:-values differ}
  [[ "$got" == "$want" ]] || fail "$msg: got '$got', want '$want'"
}

assert_ne() {
  local got=$1 unwanted=$2 msg=${3:-values are equal}
  [[ "$got" != "$unwanted" ]] || fail "$msg: got '$got'"
}

assert_contains() {
  local haystack=$1 needle=$2 msg=${3:-text not found}
  [[ "$haystack" == *"$needle"* ]] || fail "$msg: '$needle' not in:
$haystack"
}

assert_not_contains() {
  local haystack=$1 needle=$2 msg=${3:-unexpected text found}
  [[ "$haystack" != *"$needle"* ]] || fail "$msg: '$needle' found in:
$haystack"
}

# wait_for [-t SECONDS] [-m MESSAGE] CMD...: run CMD until it succeeds.
wait_for() {
  local timeout=$RW_WAIT_TIMEOUT msg=""
  while (($#)); do
    case "$1" in
      -t) timeout=$2; shift 2 ;;
      -m) msg=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  (($#)) || fail "wait_for: no command"
  local deadline=$((SECONDS + timeout))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for: ${msg:-$*}"
    sleep 0.2
  done
}

# ------------------------------------------------------------------ manager
ctl() { "$IT_SANDBOX_SH" ctl "$IT_SANDBOX" "$@"; }
journal() { "$IT_SANDBOX_SH" journal "$IT_SANDBOX" "$@"; }
sandbox_exec() { "$IT_SANDBOX_SH" exec "$IT_SANDBOX" "$@"; }
reload_units() { "$IT_SANDBOX_SH" reload "$IT_SANDBOX"; }
# add_units UNITSRC...: more unit files or NAME.d drop-in dirs, then reload.
add_units() { "$IT_SANDBOX_SH" add "$IT_SANDBOX" "$@"; }

unit_state() { ctl show -p ActiveState --value "$1"; }

# MainPID as the manager reports it (inside the sandbox's PID namespace).
unit_ns_pid() { ctl show -p MainPID --value "$1"; }

# MainPID as a pid of this (the root) namespace: usable with kill and /proc.
# Prints 0 when the unit has no main process.
unit_pid() {
  local nspid mode sdpid want p last
  nspid=$(unit_ns_pid "$1")
  mode=$(cat "$IT_SANDBOX/mode")
  if [[ "$mode" == host || "$nspid" == 0 ]]; then echo "$nspid"; return 0; fi
  # The unit's cgroup, seen from here, lists root-namespace pids: find the
  # one whose innermost pid is MainPID. Without a cgroup, scan /proc.
  local cg procs=()
  cg=$(cat "$IT_SANDBOX/cgroup" 2>/dev/null || true)
  if [[ -n "$cg" ]]; then
    local unitcg; unitcg=$(ctl show -p ControlGroup --value "$1")
    [[ -r "$cg$unitcg/cgroup.procs" ]] && mapfile -t procs <"$cg$unitcg/cgroup.procs"
    for p in "${procs[@]}"; do
      last=$(awk '/^NSpid:/ {print $NF}' "/proc/$p/status" 2>/dev/null) || continue
      if [[ "$last" == "$nspid" ]]; then echo "$p"; return 0; fi
    done
  fi
  sdpid=$(cat "$IT_SANDBOX/systemd.pid")
  want=$(readlink "/proc/$sdpid/ns/pid")
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/ns/pid" 2>/dev/null)" == "$want" ]] || continue
    last=$(awk '/^NSpid:/ {print $NF}' "$p/status" 2>/dev/null) || continue
    if [[ "$last" == "$nspid" ]]; then echo "${p#/proc/}"; return 0; fi
  done
  echo 0
}

# ------------------------------------------------------------------ receiver
it__curl() { curl -sS --max-time 10 "$@"; }

# receiver_script JSON_LIST [DEFAULT]: answers for the next webhook posts.
receiver_script() {
  local script=$1 default=${2:-ok}
  it__curl -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data "{\"script\": $script, \"default\": \"$default\"}" \
    "http://127.0.0.1:$RECEIVER_PORT/_control" || fail "receiver_script $script"
}

receiver_reset() {
  it__curl -o /dev/null -X POST --data '{"reset": true, "script": [], "default": "ok"}' \
    "http://127.0.0.1:$RECEIVER_PORT/_control"
}

receiver_count() { it__curl "http://127.0.0.1:$RECEIVER_PORT/_control/count"; }

# All recorded requests as one JSON list (path, body, received_at, answer).
receiver_requests() { it__curl "http://127.0.0.1:$RECEIVER_PORT/_control/requests"; }

# The recorded bodies, one JSON document per line, oldest first.
receiver_bodies() {
  receiver_requests | "$IT_PYTHON" -c '
import json, sys
for r in json.load(sys.stdin):
    print(json.dumps(r["body"], sort_keys=True))'
}

# ------------------------------------------------------------------ setup
it__check_path() {
  local what=$1 path=$2
  case "$path/" in
    /tmp/*|/var/tmp/*) fail "$what ($path) is under /tmp or /var/tmp, which the sandbox and PrivateTmp= hide" ;;
    /root/*|/home/*|/run/user/*) fail "$what ($path) is under a home directory, which ProtectHome=yes hides" ;;
  esac
}

# it_setup [--no-project-units] [UNITSRC...]
#   Boots the manager with runner@/watcher@ from $RW_BUILD/units (unless
#   --no-project-units) plus drop-ins pointing them at this test, and any
#   extra unit files or NAME.d drop-in directories given.
it_setup() {
  local project=1
  if [[ "${1:-}" == --no-project-units ]]; then project=0; shift; fi
  [[ $EUID -eq 0 ]] || fail "integration tests need root"
  local c
  for c in curl nsenter unshare "$IT_PYTHON"; do
    command -v "$c" >/dev/null || fail "missing command: $c"
  done

  it__check_path RW_IT_ROOT "$RW_IT_ROOT"
  mkdir -p "$RW_IT_ROOT"
  chmod 0755 "$RW_IT_ROOT"
  IT_DIR=$(mktemp -d "$RW_IT_ROOT/$IT_NAME-XXXXXX")
  chmod 0755 "$IT_DIR"
  IT_SANDBOX=$IT_DIR/sandbox
  trap it__on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$IT_DIR/state" "$IT_DIR/etc" "$IT_DIR/units" "$IT_DIR/work" "$IT_SANDBOX"

  # The webhook receiver.
  "$IT_PYTHON" "$RW_SRC/tests/receiver.py" --port-file "$IT_DIR/receiver.port" \
    --log "$IT_DIR/receiver.jsonl" >"$IT_DIR/receiver.out" 2>&1 &
  IT_RECEIVER_PID=$!
  echo "$IT_RECEIVER_PID" >"$IT_DIR/receiver.pid"
  for _ in $(seq 1 100); do
    [[ -s "$IT_DIR/receiver.port" ]] && break
    kill -0 "$IT_RECEIVER_PID" 2>/dev/null || fail "receiver died: $(cat "$IT_DIR/receiver.out")"
    sleep 0.05
  done
  RECEIVER_PORT=$(cat "$IT_DIR/receiver.port") || fail "receiver did not write its port"
  RECEIVER_URL=http://127.0.0.1:$RECEIVER_PORT
  WEBHOOK_URL=$RECEIVER_URL/hooks/testsecret
  (umask 077; printf 'MATTERMOST_WEBHOOK_URL=%s\n' "$WEBHOOK_URL" >"$IT_DIR/etc/watcher.env")
  chmod 0600 "$IT_DIR/etc/watcher.env"

  local srcs=()
  if ((project)); then
    it__check_path RW_BUILD "$RW_BUILD"
    [[ -x "$RW_BUILD/runwarden" ]] || fail "no binary $RW_BUILD/runwarden (build first, or set RW_BUILD)"
    local unit kind
    for kind in runner watcher; do
      unit=$RW_BUILD/units/$kind@.service
      [[ -f "$unit" ]] || fail "no unit $unit (configure the build first)"
      mkdir -p "$IT_DIR/units/$kind@.service.d"
      # The watcher has an executable of its own (builds before it had not).
      local exec="$RW_BUILD/runwarden $kind"
      [[ $kind == watcher && -x $RW_BUILD/runwarden-watcher ]] && exec=$RW_BUILD/runwarden-watcher
      # The unit's own LoadCredential= fails the start when its source file
      # is missing; tests use the env file unless they opt into credentials.
      cat >"$IT_DIR/units/$kind@.service.d/50-integration-test.conf" <<EOF
# Written by tests/integration/lib.sh for $IT_NAME.
[Service]
Environment=RUNWARDEN_STATE_DIR=$IT_DIR/state
Environment=RUNWARDEN_WEBHOOK_ENV=$IT_DIR/etc/watcher.env
ReadWritePaths=$IT_DIR
LoadCredential=
ExecStart=
ExecStart=$exec --build-name %i
EOF
      srcs+=("$unit" "$IT_DIR/units/$kind@.service.d")
    done
  fi
  srcs+=("$@")

  "$IT_SANDBOX_SH" start "$IT_SANDBOX" "${srcs[@]}" >"$IT_DIR/sandbox.out" 2>&1 ||
    fail "could not start the service manager: $(cat "$IT_DIR/sandbox.out")"

  RW_BIN=$RW_BUILD/runwarden
  RUNWARDEN_STATE_DIR=$IT_DIR/state
  RUNWARDEN_WEBHOOK_ENV=$IT_DIR/etc/watcher.env
  if [[ -s "$IT_SANDBOX/system-bus-address" && "${RW_IT_PRIVATE_BUS:-0}" != 1 ]]; then
    DBUS_SYSTEM_BUS_ADDRESS=$(cat "$IT_SANDBOX/system-bus-address")
    export DBUS_SYSTEM_BUS_ADDRESS
    unset RUNWARDEN_BUS_ADDRESS
  else
    RUNWARDEN_BUS_ADDRESS=$(cat "$IT_SANDBOX/bus-address")
    export RUNWARDEN_BUS_ADDRESS
    unset DBUS_SYSTEM_BUS_ADDRESS
  fi
  export IT_DIR IT_SANDBOX RW_BIN RECEIVER_PORT RECEIVER_URL WEBHOOK_URL
  export RUNWARDEN_STATE_DIR RUNWARDEN_WEBHOOK_ENV
  # start-run's default workdir is the current directory: one the services see.
  cd "$IT_DIR/work"
}

# Stops everything it_setup started. Runs from the EXIT trap; safe to call
# twice (a test may call it itself to check what is left afterwards).
it_teardown() { it__teardown $?; }

it__on_exit() {
  local rc=$?
  it__teardown "$rc"
  if ((rc == 0 && !IT_PASSED)); then
    echo "WARN $IT_NAME: ended without calling pass" >&2
  fi
  return "$rc"
}

it__teardown() {
  local rc=$1
  ((IT_TORN_DOWN)) && return 0
  IT_TORN_DOWN=1
  set +e
  if ((rc != 0)) && [[ -n "$IT_SANDBOX" && -f "$IT_SANDBOX/mode" ]]; then
    ((IT_FAILED)) || echo "FAIL $IT_NAME: exited with status $rc" >&2
    echo "--- last journal lines ($IT_NAME)" >&2
    "$IT_SANDBOX_SH" journal "$IT_SANDBOX" -n 60 --no-hostname >&2 2>/dev/null
  fi
  if [[ -n "$IT_SANDBOX" && -f "$IT_SANDBOX/mode" ]]; then
    "$IT_SANDBOX_SH" stop "$IT_SANDBOX" >&2
  fi
  # What tests added (network namespaces with sshd hosts, ...), newest first.
  local i
  for ((i = ${#IT_EXTRA_TEARDOWN[@]} - 1; i >= 0; i--)); do
    eval "${IT_EXTRA_TEARDOWN[i]}" >&2
  done
  if [[ -n "$IT_RECEIVER_PID" ]] && kill -0 "$IT_RECEIVER_PID" 2>/dev/null; then
    kill -TERM "$IT_RECEIVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$IT_RECEIVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$IT_RECEIVER_PID" 2>/dev/null && kill -KILL "$IT_RECEIVER_PID" 2>/dev/null
    wait "$IT_RECEIVER_PID" 2>/dev/null
  fi
  if [[ -n "$IT_DIR" && -d "$IT_DIR" ]]; then
    if [[ "${RW_KEEP:-0}" == 1 ]]; then
      echo "kept $IT_DIR" >&2
    else
      rm -rf -- "$IT_DIR"
    fi
  fi
  return "$rc"
}
