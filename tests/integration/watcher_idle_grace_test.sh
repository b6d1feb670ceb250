#!/bin/bash
# A watcher waiting out the sub-run grace window (a run ended with a sub-run
# it could not close) sleeps: it does not spin on bus signals it has already
# seen. Measured as the CPU time it uses while it waits.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

start_run -q --build-name idle-1 --categorize --subrun-grace 60s --workdir "$IT_DIR/work" \
  --runner-command 'while [ ! -e go ]; do sleep 0.1; done'
wait_status idle-1 RUNNING
# A sub-run directory with no readable state: open as far as anyone can tell.
mkdir -p "$RUNWARDEN_STATE_DIR/runs/idle-1/subruns/ghost"
touch "$IT_DIR/work/go"
wait_status idle-1 COMPLETED
wait_for -m "runner@idle-1 stopped" unit_gone runner@idle-1.service
sleep 1
unit_active watcher@idle-1.service || fail "the watcher waits out the grace window"
pid=$(unit_pid watcher@idle-1.service)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0=$(ticks "$pid")
sleep 3
t1=$(ticks "$pid")
# A waiting watcher uses no CPU; a spinning one about 100 ticks a second.
used=$((t1 - t0))
[[ $used -le 30 ]] || fail "the waiting watcher used $used clock ticks in 3 s"
unit_active watcher@idle-1.service || fail "the watcher still waits"
pass
