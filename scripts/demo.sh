#!/bin/bash
# The main job, end to end, on a fresh Debian 12 machine (as root):
# installs dependencies, builds, installs runwarden, and on a real systemd
# (the host's when PID 1 is systemd, otherwise a throwaway one) starts a demo
# run, shows `systemctl status runner@demo` while it runs, and prints the
# chat message that arrived. With no Mattermost configured in
# /etc/runwarden/watcher.env, a local receiver on 127.0.0.1 stands in for it.
#
#   scripts/demo.sh            a run that completes
#   scripts/demo.sh --fail     a run that fails (the message has the log tail)
#   scripts/demo.sh --keep     leave the service manager running afterwards
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export RW_BUILD; RW_BUILD=$("$src/scripts/build-dir.sh")
fail_run=0 keep=0
for a in "$@"; do
  case "$a" in
    --fail) fail_run=1 ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--fail] [--keep]" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "demo: run as root (it installs packages and units)" >&2; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dependencies and build"
"$src/scripts/install-deps.sh"
"$src/scripts/build.sh"
step "install (binaries to /usr/local/bin, units to the system unit directory)"
cmake --install "$RW_BUILD" >/dev/null
install -d -m 0750 /etc/runwarden
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
echo "installed: $(command -v start-run) $(command -v cancel-run) $unitdir/runner@.service $unitdir/watcher@.service"

work=/var/lib/runwarden-demo
rm -rf "$work"; mkdir -p "$work/sandbox" "$work/dropins/watcher@.service.d" "$work/dropins/runner@.service.d"
receiver_pid=""
cleanup() {
  if ((keep == 0)); then
    "$src/scripts/systemd-sandbox.sh" stop "$work/sandbox" >/dev/null 2>&1 || true
    [[ -n "$receiver_pid" ]] && kill "$receiver_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

env_file=/etc/runwarden/watcher.env
if [[ -f $env_file ]] && grep -q '^MATTERMOST_WEBHOOK_URL=' "$env_file"; then
  step "posting to the Mattermost configured in $env_file"
else
  step "no Mattermost configured: a local receiver on 127.0.0.1 stands in for it"
  # The distribution's python: a version-manager shim would run it as a
  # child, and stopping the shim would leave the receiver behind.
  py=/usr/bin/python3; [[ -x $py ]] || py=python3
  "$py" "$src/tests/receiver.py" --port-file "$work/receiver.port" --log "$work/receiver.jsonl" \
    >"$work/receiver.out" 2>&1 &
  receiver_pid=$!
  for _ in $(seq 50); do [[ -s $work/receiver.port ]] && break; sleep 0.1; done
  env_file=$work/watcher.env
  (umask 077; echo "MATTERMOST_WEBHOOK_URL=http://127.0.0.1:$(cat "$work/receiver.port")/hooks/demo" >"$env_file")
  echo "receiver on 127.0.0.1:$(cat "$work/receiver.port"); webhook settings in $env_file (mode 0600)"
fi
# The demo's watcher reads that file; everything else is the installed unit.
printf '[Service]\nEnvironment=RUNWARDEN_WEBHOOK_ENV=%s\nLoadCredential=\nReadWritePaths=%s\n' "$env_file" "$work" \
  >"$work/dropins/watcher@.service.d/demo.conf"
printf '[Service]\nReadWritePaths=%s\n' "$work" >"$work/dropins/runner@.service.d/demo.conf"
export RUNWARDEN_WEBHOOK_ENV=$env_file

step "service manager"
"$src/scripts/systemd-sandbox.sh" start "$work/sandbox" "$unitdir/runner@.service" "$unitdir/watcher@.service" \
  "$work/dropins/watcher@.service.d" "$work/dropins/runner@.service.d" >"$work/sandbox.out" 2>&1 ||
  { cat "$work/sandbox.out"; exit 1; }
# The manager's system bus (dbus-daemon runs in the sandbox), else its private socket.
if [[ -s $work/sandbox/system-bus-address ]]; then
  export DBUS_SYSTEM_BUS_ADDRESS; DBUS_SYSTEM_BUS_ADDRESS=$(cat "$work/sandbox/system-bus-address")
else
  export RUNWARDEN_BUS_ADDRESS; RUNWARDEN_BUS_ADDRESS=$(cat "$work/sandbox/bus-address")
fi
echo "systemd: $(cat "$work/sandbox/mode") (pid $(cat "$work/sandbox/systemd.pid"))"
ctl() { "$src/scripts/systemd-sandbox.sh" ctl "$work/sandbox" "$@"; }

step "start-run --build-name demo"
cat >"$work/suite.sh" <<SH
#!/bin/sh
for s in prepare build unit-tests integration; do
  echo "[\$s] running"; sleep 2; echo "[\$s] ok"
done
if [ $fail_run = 1 ]; then echo "integration: 3 of 120 tests failed" >&2; exit 3; fi
echo "120 tests passed"
SH
chmod +x "$work/suite.sh"
start-run --build-name demo --workdir "$work" --runner-command ./suite.sh \
  --meta suite=demo --meta "branch=main"

step "systemctl status runner@demo (while it runs)"
sleep 3
ctl status runner@demo.service --no-pager -n 5 || true

step "runwarden status demo"
runwarden status demo || true

step "waiting for the run to end"
while :; do
  st=$(runwarden status demo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  case $st in COMPLETED|FAILED|CANCELLED|TERMINATED|HUNG|UNKNOWN) break ;; esac
  sleep 1
done
for _ in $(seq 100); do
  [[ "$(ctl show -p ActiveState --value watcher@demo.service)" =~ ^(inactive|failed)$ ]] && break
  sleep 0.2
done
echo "run ended: $st"

step "the chat message"
if [[ -n $receiver_pid ]]; then
  python3 - "$work/receiver.jsonl" <<'PY'
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{len(posts)} message(s) arrived at the receiver")
for p in posts:
    body = p["body"]
    print("text:", body.get("text"))
    for a in body.get("attachments", []):
        print("color:", a.get("color"))
        for f in a.get("fields", []):
            print(f"  {f['title']}: {f['value']}")
        if a.get("text"):
            print("  ---\n  " + a["text"].replace("\n", "\n  "))
PY
else
  runwarden status demo | grep '^message:'
fi
if ((keep)); then
  echo; echo "the service manager is still running: $src/scripts/systemd-sandbox.sh stop $work/sandbox"
fi
