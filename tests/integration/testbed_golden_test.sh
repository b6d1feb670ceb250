#!/bin/bash
# A golden image and snapshots on a real libvirtd with TCG guests: the
# golden's build VM boots once from the base image, its setup step writes a
# mark onto its disk, it is sealed and powered off; 3 guests are linked
# clones of it and find the mark on their own disks. Then a snapshot of the
# whole testbed, a change on web-2, a revert of web-2, and the change is
# gone (the run's SSH session to web-2 is reopened). The snapshots are
# listed by `runwarden testbed snapshots`; `testbed diff` finds the testbed
# orphaned, then a guest removed by hand; `testbed down` removes
# everything, and a second `down` finds nothing and exits 0.
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup

testbed_golden_plan "$IT_DIR/work/golden.yaml" 10.79.0.0/24 3 \
  '"printf golden-ok | dd of=/dev/vda bs=512 conv=sync,notrunc 2>/dev/null && sync"' \
  "up_timeout: 3m" "teardown: never" <<'YAML'
stages:
  - name: check
    tasks:
      - {name: disk, on: [web-1, web-2, web-3], run: "echo disk=$(head -c 9 /dev/vda) on $(hostname)"}
  - name: snap
    tasks:
      - {name: all, snapshot: {create: clean}}
  - name: change
    tasks:
      - {name: touch, on: [web-2], run: "echo changed > /root/state && cat /root/state"}
  - name: back
    tasks:
      - {name: revert, on: [web-2], snapshot: {revert: clean}}
  - name: after
    tasks:
      - {name: look, on: [web-2], run: "if [ -e /root/state ]; then echo state-still-there; else echo state-gone; fi"}
YAML
plan=$("$RW_BIN" plan "$IT_DIR/work/golden.yaml")
assert_contains "$plan" "Stage 1/8 testbed-golden" "runwarden plan shows the golden's stage first"

start_run -q --build-name tbg-1 --plan "$IT_DIR/work/golden.yaml" --workdir "$IT_DIR/work"
ended() { [[ $(run_status tbg-1) != PENDING && $(run_status tbg-1) != RUNNING ]]; }
wait_for -t 500 -m "run tbg-1 to end" ended
run_dir=$RUNWARDEN_STATE_DIR/runs/tbg-1
assert_eq "$(run_status tbg-1)" COMPLETED "the run: $(tail -n 8 "$run_dir/runner.log" 2>/dev/null)"
events=$(cat "$run_dir/events.jsonl")
assert_contains "$events" "testbed: golden gold: setup 1/1 (mark)" "the golden's setup was the run's progress"
assert_contains "$events" "testbed: golden gold sealed" "the golden was sealed"
out=$(cat "$run_dir"/tasks/check/* 2>/dev/null || true)
for n in 1 2 3; do assert_contains "$out" "disk=golden-ok on web-$n" "web-$n is a clone of the golden"; done
assert_contains "$(cat "$run_dir"/tasks/change/*)" "changed" "web-2 was changed"
assert_contains "$(cat "$run_dir"/tasks/after/*)" "state-gone" "the revert undid the change on web-2"

# The golden's build VM is gone; the clones' disks are overlays of its disk.
assert_eq "$(libvirt_host_virsh list --all --name | grep -c . || true)" 3 "three guests, no build VM"
assert_contains "$(libvirt_host_virsh vol-dumpxml --pool rw-tbg-1 web-1.qcow2)" "golden-gold.qcow2" \
  "web-1's disk is backed by the golden"
# As qemu reads it: the overlay runwarden wrote, 64 MiB, its backing format named.
info=$(qemu-img info -U --output=json "$(libvirt_host_virsh vol-path --pool rw-tbg-1 web-1.qcow2)")
assert_eq "$(jq -r '[.format, ."virtual-size", ."backing-filename-format"] | join(" ")' <<<"$info")" \
  "qcow2 67108864 qcow2" "web-1's disk: a 64 MiB qcow2 overlay of a qcow2"

snaps=$("$RW_BIN" testbed snapshots tbg-1 --connect "$LIBVIRT_HOST_URI" --json)
assert_eq "$(jq -r '[.[] | select(.name == "clean") | .guest] | sort | join(" ")' <<<"$snaps")" "web-1 web-2 web-3" \
  "testbed snapshots lists the snapshot of every guest"
assert_contains "$("$RW_BIN" testbed snapshots tbg-1 --connect "$LIBVIRT_HOST_URI")" "clean" "the table lists it too"

st=$("$RW_BIN" testbed status tbg-1 --connect "$LIBVIRT_HOST_URI" --json)
assert_eq "$(jq -r '[.objects[] | select(.kind == "guest") | "\(.name)=\(.state)@\(.addresses | join(","))#\(.snapshots | join(","))"] | sort | join(" ")' <<<"$st")" \
  "web-1=running@10.79.0.11#clean web-2=running@10.79.0.12#clean web-3=running@10.79.0.13#clean" \
  "testbed status: every guest with its state, address and snapshot"
assert_eq "$(jq -r '.run' <<<"$st")" COMPLETED "testbed status names the run's state"

# Drift: in sync with the plan, but orphaned (teardown: never, the run ended).
rc=0; d=$("$RW_BIN" testbed diff tbg-1 --json --exit-code) || rc=$?
assert_eq "$rc" 1 "diff --exit-code: an orphaned testbed is a difference"
assert_eq "$(jq -r '[.differences, .orphaned, .run] | join(" ")' <<<"$d")" "0 true COMPLETED" "in sync, orphaned: $d"
libvirt_host_virsh destroy rw-tbg-1-web-3 >/dev/null
libvirt_host_virsh undefine rw-tbg-1-web-3 --snapshots-metadata >/dev/null
rc=0; d=$("$RW_BIN" testbed diff "$IT_DIR/work/golden.yaml" --build tbg-1) || rc=$?
assert_eq "$rc" 0 "without --exit-code, drift is not an error"
assert_contains "$d" "1 difference(s)" "one guest gone by hand: $d"
assert_contains "$d" "guest web-3: missing" "web-3 is missing"

rc=0; "$RW_BIN" testbed down tbg-1 --connect "$LIBVIRT_HOST_URI" >/dev/null || rc=$?
assert_eq "$rc" 0 "testbed down (guests with snapshots included)"
rc=0; out=$("$RW_BIN" testbed down tbg-1 --connect "$LIBVIRT_HOST_URI") || rc=$?
assert_eq "$rc" 0 "a second down finds nothing and succeeds: $out"
testbed_assert_empty tbg-1
pass
