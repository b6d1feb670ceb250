#!/bin/bash
# runner@ and watcher@ log to the journal natively, not through a journal
# stream on stdout/stderr: journald hands every stream's socket to the
# service manager's fd store (systemd-journald.service's), where each new
# one is compared with every stored one and all of them stay in the
# manager's epoll set, a cost per run that grows with the number of runs.
# Their records still reach the journal with their fields and their unit.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# fd_target PID FD: what the process's FD points to ("socket:[...]", a path).
fd_target() { readlink "/proc/$1/fd/$2"; }
fd_store() { ctl show -p NFileDescriptorStore --value systemd-journald.service; }
sandbox=0
[[ "$(cat "$IT_SANDBOX/mode")" == sandbox ]] && sandbox=1
if ((sandbox)); then
  wait_for -m "journald up" unit_active systemd-journald.service
  store0=$(fd_store)
fi

for b in js-1 js-2 js-3; do
  start_run -q --build-name "$b" --runner-command "sleep 600"
done
for b in js-1 js-2 js-3; do
  wait_for -m "runner@$b active" unit_active "runner@$b.service"
  wait_for -m "watcher@$b active" unit_active "watcher@$b.service"
  for kind in runner watcher; do
    pid=$(unit_pid "$kind@$b.service")
    assert_ne "$pid" 0 "$kind@$b has a main process"
    for fd in 1 2; do
      t=$(fd_target "$pid" "$fd")
      assert_not_contains "$t" "socket:" "$kind@$b's fd $fd is not a journal stream"
    done
  done
done

# Six units up, none of them with a stream stored for journald.
if ((sandbox)); then
  assert_eq "$(fd_store)" "$store0" "journald's fd store did not grow with the runs' units"
fi

# The records still arrive, with their fields and attributed to their unit.
runner_logged() { journal -u runner@js-1.service RUNWARDEN_BUILD=js-1 --no-pager -o cat 2>/dev/null | grep -q .; }
watcher_logged() { journal -u watcher@js-1.service RUNWARDEN_BUILD=js-1 --no-pager -o cat 2>/dev/null | grep -q "watching run js-1"; }
wait_for -m "a runner record with RUNWARDEN_BUILD=js-1 under runner@js-1" runner_logged
wait_for -m "a watcher record with RUNWARDEN_BUILD=js-1 under watcher@js-1" watcher_logged

for b in js-1 js-2 js-3; do cancel_run --build-name "$b" >/dev/null; done
for b in js-1 js-2 js-3; do wait_status "$b" CANCELLED; done
pass
