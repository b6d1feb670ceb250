#!/bin/bash
# One start of runner@ brings watcher@ (Wants=, no After=: the two start in
# parallel); the watcher holds no connection to the bus or the manager while
# it waits, follows the runner's main process across a restart, and a
# watcher restart or stop never touches the run.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# How many of PID's sockets are connected to the system bus or to the
# manager's private socket: the server ends of those (listed by ss, same
# network namespace) name the client's socket inode as their peer.
bus_connections() {
  local pid=$1 inodes
  inodes=$(find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | tr '\n' ' ')
  ss -xn | awk -v ino="$inodes" '
    BEGIN { n = split(ino, a, " "); for (i = 1; i <= n; i++) mine[a[i]] = 1 }
    $5 ~ /(system_bus_socket|systemd\/private)$/ && ($8 in mine) { c++ }
    END { print c + 0 }'
}

# The check itself: PID 1 of the manager is on the system bus.
sd=$(cat "$IT_SANDBOX/systemd.pid")
if [[ -s $IT_SANDBOX/system-bus-address ]]; then
  (($(bus_connections "$sd") >= 1)) || fail "bus_connections does not see PID 1 on the system bus"
fi

start_run -q --build-name wb-1 --runner-command 'while [ ! -e "$RUNWARDEN_RUN_DIR/go" ]; do sleep 0.1; done'
wait_for -m "runner active" unit_active runner@wb-1.service
assert_contains "$(ctl show -p Wants --value runner@wb-1.service)" "watcher@wb-1.service" "runner@ wants its watcher"
assert_not_contains "$(ctl show -p After --value runner@wb-1.service)" "watcher@wb-1.service" \
  "the runner does not wait for the watcher's readiness"
assert_eq "$(unit_state watcher@wb-1.service)" active "the one start brought the watcher"
w=$(unit_pid watcher@wb-1.service)
sleep 1
assert_eq "$(bus_connections "$w")" 0 "the idle watcher holds no bus connection"

# A watcher restart or stop leaves the run alone (Wants=, not Requires=).
r=$(unit_pid runner@wb-1.service)
ctl restart watcher@wb-1.service
wait_for -m "watcher back" unit_active watcher@wb-1.service
assert_eq "$(unit_pid runner@wb-1.service)" "$r" "restarting the watcher did not restart the runner"
ctl stop watcher@wb-1.service
assert_eq "$(unit_state runner@wb-1.service)" active "stopping the watcher did not stop the run"
assert_eq "$(unit_pid runner@wb-1.service)" "$r" "... nor restart it"
ctl start watcher@wb-1.service
touch "$RUNWARDEN_STATE_DIR/runs/wb-1/go"
wait_status wb-1 COMPLETED
wait_watcher_done wb-1
wait_for -m "one post" count_is 1

# Across a restart: the runner is killed, systemd restarts it (the task has
# a retry), the watcher follows the new main process; killed again with no
# retry left, the restarted runner cannot resume and the watcher, which
# only learns of it through that process, says TERMINATED.
cat >"$IT_DIR/work/follow.yaml" <<EOF
version: 1
stages:
  - name: only
    retries: 1
    tasks: [{name: wait, run: 'touch "\$RUNWARDEN_RUN_DIR/attempt.\$\$"; sleep 600'}]
EOF
start_run -q --build-name wb-2 --plan "$IT_DIR/work/follow.yaml"
attempts_are() { [[ $(find "$RUNWARDEN_STATE_DIR/runs/wb-2" -maxdepth 1 -name 'attempt.*' | wc -l) == "$1" ]]; }
wait_for -m "attempt 1" attempts_are 1
r1=$(unit_pid runner@wb-2.service)
kill -KILL "$r1"
wait_for -t 30 -m "attempt 2 (the runner restarted)" attempts_are 2
r2=$(unit_pid runner@wb-2.service)
assert_ne "$r2" "$r1" "a new runner process"
assert_eq "$(run_status wb-2)" RUNNING "the watcher saw a restart, not an end"
assert_eq "$(bus_connections "$(unit_pid watcher@wb-2.service)")" 0 "no bus connection after the restart either"
kill -KILL "$r2"
wait_status wb-2 TERMINATED 30
assert_eq "$(run_field wb-2 decided_by)" watcher "TERMINATED decided by the watcher"
wait_watcher_done wb-2
sleep 1
assert_eq "$(receiver_count)" 1 "no message for TERMINATED"
pass
