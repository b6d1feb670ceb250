#!/bin/bash
# The integration harness tests itself: a hardened Type=notify unit runs,
# shows in status and the journal, reaches the receiver from inside the
# sandbox, stops; the receiver follows its script; teardown leaves nothing.
# Needs no runwarden build.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

SYS_PYTHON=/usr/bin/python3
[[ -x $SYS_PYTHON ]] || fail "$SYS_PYTHON is needed inside the units"

it_setup --no-project-units

# hello@: the main process itself says READY=1 (NotifyAccess=main: no race
# with a short-lived systemd-notify), pings the watchdog and logs a
# structured journal entry; hardened like runwarden's own units.
cat >"$IT_DIR/work/hello.py" <<'EOF'
import os, socket, sys, time
build = sys.argv[1]
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
journal.sendto(("MESSAGE=hello %s\nRUNWARDEN_BUILD=%s\nSTAGE=selftest\n" % (build, build)).encode(),
               "/run/systemd/journal/socket")
notify.sendto(b"READY=1\nSTATUS=saying hello", addr)
interval = int(os.environ.get("WATCHDOG_USEC", "0")) / 2e6
while True:
    if interval:
        notify.sendto(b"WATCHDOG=1", addr)
    time.sleep(interval or 1)
EOF
cat >"$IT_DIR/units/hello@.service" <<EOF
[Unit]
Description=harness selftest %i

[Service]
Type=notify
NotifyAccess=main
WatchdogSec=2
ExecStart=$SYS_PYTHON $IT_DIR/work/hello.py %i
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
MemoryDenyWriteExecute=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=
EOF
# poster@: posts to the receiver from inside the sandbox, as the watcher does.
cat >"$IT_DIR/units/poster@.service" <<EOF
[Unit]
Description=harness selftest poster %i

[Service]
Type=oneshot
EnvironmentFile=$RUNWARDEN_WEBHOOK_ENV
ExecStart=/usr/bin/curl -sS -f -o /dev/null -H 'Content-Type: application/json' --data '{"text": "from unit %i"}' \${MATTERMOST_WEBHOOK_URL}
ProtectSystem=strict
PrivateTmp=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
CapabilityBoundingSet=
EOF
add_units "$IT_DIR/units/hello@.service" "$IT_DIR/units/poster@.service"

# --- the manager
assert_contains "$(ctl is-system-running || true)" "running" "manager state"

# --- a hardened notify unit starts, shows in status and journal, stops
ctl start hello@x.service
assert_eq "$(unit_state hello@x.service)" active "hello@x after start"
status=$(ctl status hello@x.service || true)
assert_contains "$status" "hello@x.service - harness selftest x" "status names the unit"
assert_contains "$status" "active (running)" "status shows it running"
assert_contains "$status" 'Status: "saying hello"' "status shows STATUS="
pid=$(unit_pid hello@x.service)
[[ "$pid" =~ ^[0-9]+$ && "$pid" != 0 ]] || fail "unit_pid gave '$pid'"
assert_contains "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "python3" "unit_pid is the unit's process"
nspid=$(unit_ns_pid hello@x.service)
assert_eq "$(awk '/^NSpid:/ {print $NF}' "/proc/$pid/status")" "$nspid" "unit_pid maps to MainPID"
wait_for -m "journal entry with RUNWARDEN_BUILD=x" \
  sh -c "'$IT_SANDBOX_SH' journal '$IT_SANDBOX' RUNWARDEN_BUILD=x -o cat | grep -qx 'hello x'"
assert_contains "$(journal -u hello@x.service -o cat)" "Started hello@x.service" "journal -u"

# --- the receiver follows its script: 500 then ok, then the default
receiver_script '["500","ok"]'
code() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "$1" "$WEBHOOK_URL"; }
assert_eq "$(code '{"text":"one"}')" 500 "first post"
assert_eq "$(code '{"text":"two"}')" 200 "second post"
assert_eq "$(code '{"text":"three"}')" 200 "third post (default)"
assert_eq "$(receiver_count)" 3 "receiver counted the posts"
bodies=$(receiver_bodies)
assert_eq "$(echo "$bodies" | sed -n 2p)" '{"text": "two"}' "second body"
assert_eq "$(wc -l <"$IT_DIR/receiver.jsonl")" 3 "receiver log lines"
body=$(curl -s -H 'Content-Type: application/json' --data '{}' "$WEBHOOK_URL")
assert_eq "$body" ok "success body"
receiver_script '["400","429:7"]'
assert_contains "$(curl -s --data '{}' "$WEBHOOK_URL")" "web.incoming_webhook.invalid.app_error" "400 body"
assert_contains "$(curl -s -D - -o /dev/null --data '{}' "$WEBHOOK_URL" | tr -d '\r')" "Retry-After: 7" "429 header"
receiver_script '["drop"]'
rc=0; curl -s -o /dev/null --data '{}' "$WEBHOOK_URL" || rc=$?
assert_eq "$rc" 52 "dropped connection (curl: empty reply)"

# --- a unit inside the sandbox reaches the receiver on 127.0.0.1
before=$(receiver_count)
ctl start poster@y.service
assert_eq "$(receiver_count)" "$((before + 1))" "post from inside the sandbox"
assert_eq "$(receiver_bodies | tail -n 1)" '{"text": "from unit y"}' "body from the unit"

# --- the watchdog did not fire while the unit pinged it; stop works
assert_eq "$(unit_state hello@x.service)" active "hello@x still active (watchdog pinged)"
assert_eq "$(ctl show -p NRestarts --value hello@x.service)" 0 "no restarts"
ctl stop hello@x.service
assert_eq "$(unit_state hello@x.service)" inactive "hello@x after stop"
wait_for -t 5 -m "unit process $pid gone" test ! -e "/proc/$pid"

# --- teardown leaves nothing behind
ctl start hello@z.service
zpid=$(unit_pid hello@z.service)
sdpid=$(cat "$IT_SANDBOX/systemd.pid")
cg=$(cat "$IT_SANDBOX/cgroup" 2>/dev/null || true)
mode=$(cat "$IT_SANDBOX/mode")
pidns=""
[[ "$mode" == sandbox ]] && pidns=$(readlink "/proc/$sdpid/ns/pid")
rpid=$IT_RECEIVER_PID
dir=$IT_DIR
it_teardown
gone=("$zpid" "$rpid")
[[ "$mode" == sandbox ]] && gone+=("$sdpid")
for p in "${gone[@]}"; do
  if [[ -e /proc/$p && "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]]; then
    fail "process $p still alive after teardown"
  fi
done
if [[ -n "$pidns" ]]; then
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/ns/pid" 2>/dev/null)" != "$pidns" ]] || fail "process ${p#/proc/} left in the sandbox's pid namespace"
  done
fi
[[ -z "$cg" || ! -d "$cg" ]] || fail "cgroup $cg left behind"
if [[ "${RW_KEEP:-0}" != 1 ]]; then
  [[ ! -e "$dir" ]] || fail "test dir $dir left behind"
fi
pass
