#!/bin/bash
# posted markers survive watcher restarts: never a second message, and a
# watcher that died before posting posts once when it comes back.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# 1. Killed (SIGKILL) during the run: systemd restarts it, one message.
start_run -q --build-name wr-1 --runner-command 'while [ ! -e "$RUNWARDEN_RUN_DIR/go" ]; do sleep 0.1; done'
wait_for -m "watcher active" unit_active watcher@wr-1.service
old=$(unit_pid watcher@wr-1.service)
kill -KILL "$old"
wait_for -t 20 -m "the old watcher gone" bash -c "! kill -0 $old 2>/dev/null"
wait_for -m "watcher active again" unit_active watcher@wr-1.service
assert_ne "$(unit_pid watcher@wr-1.service)" "$old" "a new watcher process"
touch "$RUNWARDEN_STATE_DIR/runs/wr-1/go"
wait_status wr-1 COMPLETED
wait_watcher_done wr-1
wait_for -m "one post" count_is 1

# 2. Down while the run ends: started again later, it posts exactly once,
# and it needs no service manager for that: started again with the bus and
# the manager's private socket out of its reach, it still posts.
start_run -q --build-name wr-2 --runner-command 'while [ ! -e "$RUNWARDEN_RUN_DIR/go" ]; do sleep 0.1; done'
wait_for -m "watcher active" unit_active watcher@wr-2.service
ctl kill --signal=SIGKILL watcher@wr-2.service
ctl stop watcher@wr-2.service || true
wait_for -m "watcher down" unit_gone watcher@wr-2.service
touch "$RUNWARDEN_STATE_DIR/runs/wr-2/go"
wait_status wr-2 COMPLETED
sleep 1
assert_eq "$(receiver_count)" 1 "no post while the watcher is down"
mkdir -p "$IT_DIR/watcher@wr-2.service.d"
printf '[Service]\nInaccessiblePaths=-/run/dbus -/run/systemd/private\n' >"$IT_DIR/watcher@wr-2.service.d/nobus.conf"
add_units "$IT_DIR/watcher@wr-2.service.d"
ctl start watcher@wr-2.service
wait_watcher_done wr-2
assert_eq "$(receiver_count)" 2 "the restarted watcher posted once, with no service manager in reach"
assert_contains "$(journal -u watcher@wr-2.service --no-pager -o cat 2>/dev/null)" "not asked, the run has ended" \
  "it did not ask the manager"

# 3. Started again after it posted: nothing more.
ctl start watcher@wr-1.service || true
ctl start watcher@wr-2.service || true
wait_watcher_done wr-1
wait_watcher_done wr-2
sleep 1
assert_eq "$(receiver_count)" 2 "restarts after posting post nothing"
pass
