#!/bin/bash
# A testbed across two hypervisors (`hosts: [hv1, hv2]`), each a machine of
# its own here: libvirtd and sshd in their own network and mount
# namespaces, their own images directory, joined to the controller's
# namespace by a bridge (the underlay, MTU 1500). A golden is built on hv1
# and copied to hv2; web-1 runs on hv1, web-2 on hv2; one network spans
# both: hv1 leases, the bridges are joined by VXLAN. The guests find the
# golden's mark on their disks, have MTU 1450, and reach each other with
# full-size frames. A snapshot of the whole testbed (both hosts), a change
# on web-2 and its revert (on hv2). The testbed is kept (teardown: never): `testbed diff`
# finds both hosts in sync, `testbed down` removes it from both. Then a
# cancel while the guests come up on both hosts, and the run's own
# teardown. Then `testbed up` of a plan (no run stages, no units, no
# message) and `down`; and an up that fails, which removes what it made.
# After each, nothing is left on either host (VXLAN links included).
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup --no-host
testbed_hypervisor hv1 10.200.0.11
testbed_hypervisor hv2 10.200.0.12

m=$(printf '      %s\n' "memory: 160M" "disk: 64M" "accel: tcg" "kernel: $TB_KIT/vmlinuz" \
  "initrd: $TB_KIT/initrd.img" "networks: [lab]" "ssh_key: $TB_KEY.pub" "identity: $TB_KEY")
plan_head() { testbed_hv_head "hosts: [hv1, hv2]" "$1" "{subnet: 10.79.0.0/24}"; }
{
  plan_head "  teardown: never"$'\n'
  cat <<YAML
  goldens:
    gold:
      image: base
      cmdline: console=ttyS0 quiet
$m
      setup:
        - {name: mark, run: "printf golden-ok | dd of=/dev/vda bs=512 conv=sync,notrunc 2>/dev/null && sync"}
  guests:
    web:
      count: 2
      golden: gold
      cmdline: console=ttyS0 quiet
$m
stages:
  - name: look
    tasks:
      - {name: disk, on: [web-1, web-2], run: "echo disk=\$(head -c 9 /dev/vda) mtu=\$(cat /sys/class/net/eth0/mtu) on \$(hostname)"}
  - name: across
    tasks:
      - {name: to-web-2, on: [web-1], run: "ping -c 3 -W 5 -s 1422 10.79.0.12"}
      - {name: to-web-1, on: [web-2], run: "ping -c 3 -W 5 -s 1422 10.79.0.11"}
  - name: keep
    tasks:
      - {name: clean, snapshot: {create: clean}}
  - name: change
    tasks:
      - {name: touch, on: [web-2], run: "echo changed >/tmp/f"}
  - name: back
    tasks:
      - {name: web-2, on: [web-2], snapshot: {revert: clean}}
  - name: check
    tasks:
      - {name: gone, on: [web-2], run: "test ! -e /tmp/f && echo reverted on \$(hostname)"}
YAML
} >"$IT_DIR/work/lab.yaml"
"$RW_BIN" validate "$IT_DIR/work/lab.yaml" >/dev/null || fail "plan: $("$RW_BIN" validate "$IT_DIR/work/lab.yaml" 2>&1)"
plan=$("$RW_BIN" plan "$IT_DIR/work/lab.yaml")
assert_contains "$plan" "via hv2" "a guest is reached via hv2"

start_run -q --build-name tbh-1 --plan "$IT_DIR/work/lab.yaml" --workdir "$IT_DIR/work"
ended() { [[ $(run_status "$1") != PENDING && $(run_status "$1") != RUNNING ]]; }
wait_for -t 600 -m "run tbh-1 to end" ended tbh-1
log=$(cat "$RUNWARDEN_STATE_DIR/runs/tbh-1/runner.log")
assert_eq "$(run_status tbh-1)" COMPLETED "the run: $(tail -n 20 <<<"$log")"
wait_for -m "one post" count_is 1
out=$(cat "$RUNWARDEN_STATE_DIR"/runs/tbh-1/tasks/look/* "$RUNWARDEN_STATE_DIR"/runs/tbh-1/tasks/across/* 2>/dev/null || true)
# Both clones of the golden built on hv1, web-2's from the copy on hv2; the
# network's MTU leaves room for VXLAN; 1450-byte packets (the MTU) cross it.
for n in 1 2; do assert_contains "$out" "disk=golden-ok mtu=1450 on web-$n" "web-$n: the golden's disk and the MTU"; done
assert_eq "$(grep -c '3 packets received' <<<"$out" || true)" 2 "web-1 and web-2 reach each other: $out"
assert_contains "$log" "testbed: golden gold copied to hv2" "the golden was copied to hv2"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR"/runs/tbh-1/tasks/check/*)" "reverted on web-2" "web-2 was reverted on hv2"
assert_contains "$log" "joined to the other hosts by VXLAN" "the bridges were joined"
# Each guest ran on its own host (libvirt's per-guest log stays), and was
# reached through that host's sshd.
[[ -e $IT_DIR/hv1/log/qemu/rw-tbh-1-web-1.log && ! -e $IT_DIR/hv1/log/qemu/rw-tbh-1-web-2.log ]] ||
  fail "web-1 (only) on hv1: $(ls "$IT_DIR/hv1/log/qemu")"
[[ -e $IT_DIR/hv2/log/qemu/rw-tbh-1-web-2.log && ! -e $IT_DIR/hv2/log/qemu/rw-tbh-1-web-1.log ]] ||
  fail "web-2 (only) on hv2: $(ls "$IT_DIR/hv2/log/qemu")"
[[ ! -e $IT_DIR/hv2/log/qemu/rw-tbh-1-gold.log ]] || fail "the golden was built on hv2 too"
assert_contains "$(cat "$IT_DIR/hv1/sshd.log")" "target 10.79.0.11 port 22" "web-1 was reached through hv1"
assert_contains "$(cat "$IT_DIR/hv2/sshd.log")" "target 10.79.0.12 port 22" "web-2 was reached through hv2"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/tbh-1/testbed.json")" '"uri": "qemu:///system on hv1, hv2"' \
  "the record names both hosts"
# Kept: in sync with the plan on both hosts (each host's part: hv2 has the
# golden's copy and web-2), and orphaned (its run has ended); then `testbed down` takes the run's plan and
# removes it from both, VXLAN links included; a second finds nothing.
d=$("$RW_BIN" testbed diff tbh-1 --json) || fail "testbed diff: $d"
py() { "$IT_PYTHON" -c "import json,sys; d=json.loads(sys.argv[2]); print($1)" "$1" "$d"; }
assert_eq "$(py 'd["uri"]')" "qemu:///system on hv1, hv2" "diff went to both hosts"
assert_eq "$(py 'd["differences"]')" 0 "in sync: $(py '[o for o in d["objects"] if o["status"] != "in-sync"]')"
assert_eq "$(py 'd["orphaned"]')" True "the run has ended: nothing will remove the testbed"
assert_eq "$(py 'sorted(o["name"] for o in d["objects"] if o.get("host") == "hv2" and o["kind"] != "volume")')" \
  "['lab', 'rw-tbh-1', 'web-2']" "hv2 holds its part"
assert_eq "$(hv_in hv2 ip -o link show type vxlan | grep -c rwx)" 1 "hv2's VXLAN link is there"
# status and snapshots find each guest on its host, with its address
# (leased from hv1) and its snapshot.
d=$("$RW_BIN" testbed status tbh-1 --json) || fail "testbed status: $d"
assert_eq "$(py 'sorted((o["name"], o["host"], o["state"], o["addresses"], o["snapshots"]) for o in d["objects"] if o["kind"] == "guest")')" \
  "[('web-1', 'hv1', 'running', ['10.79.0.11'], ['clean']), ('web-2', 'hv2', 'running', ['10.79.0.12'], ['clean'])]" \
  "the guests on their hosts"
d=$("$RW_BIN" status tbh-1 --json) || fail "status: $d"
assert_eq "$(py 'sorted((g["name"], g["host"]) for g in d["testbed_guests"])')" \
  "[('web-1', 'qemu:///system on hv1'), ('web-2', 'qemu:///system on hv2')]" "runwarden status: each guest's host"
d=$("$RW_BIN" testbed snapshots tbh-1 --json) || fail "testbed snapshots: $d"
assert_eq "$(py 'sorted((s["guest"], s["name"]) for s in d)')" "[('web-1', 'clean'), ('web-2', 'clean')]" \
  "one snapshot per guest, on both hosts"
hv_virsh hv2 destroy rw-tbh-1-web-2 >/dev/null && hv_virsh hv2 undefine --snapshots-metadata rw-tbh-1-web-2 >/dev/null
d=$("$RW_BIN" testbed diff tbh-1 --json)
assert_eq "$(py '[(o["host"], o["name"]) for o in d["objects"] if o["status"] != "in-sync"]')" \
  "[('hv2', 'web-2')]" "web-2 is missing on hv2"
out=$("$RW_BIN" testbed down tbh-1) || fail "testbed down: $out"
assert_contains "$out" "removed VXLAN link rwx" "down removed the VXLAN links"
testbed_assert_empty_on hv1 tbh-1
testbed_assert_empty_on hv2 tbh-1
out=$("$RW_BIN" testbed down tbh-1) || fail "a second down: $out"
assert_contains "$out" "nothing to remove on qemu:///system on hv2" "a second down finds nothing"

# cancel-run while the guests (which never ask for an address) come up on
# both hosts: CANCELLED, no message, and the teardown leaves nothing on
# either host.
{
  plan_head ""
  cat <<YAML
  guests:
    web:
      count: 2
      image: base
      cmdline: console=ttyS0 quiet rdinit=/bin/sh
$m
stages:
  - name: test
    tasks:
      - {name: never, on: [web-1], run: "true"}
YAML
} >"$IT_DIR/work/wait.yaml"
start_run -q --build-name tbh-2 --plan "$IT_DIR/work/wait.yaml" --workdir "$IT_DIR/work"
running() { [[ $(hv_virsh hv1 list --name | grep -c .) -ge 1 && $(hv_virsh hv2 list --name | grep -c .) -ge 1 ]]; }
wait_for -t 180 -m "a guest running on each host" running
cancel_run --build-name tbh-2 >/dev/null
wait_status tbh-2 CANCELLED 60
wait_for -t 60 -m "runner@tbh-2 stopped" unit_gone runner@tbh-2.service
assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/tbh-2/runner.log")" "testbed tbh-2: removed" "the teardown ran"
testbed_assert_empty_on hv1 tbh-2
testbed_assert_empty_on hv2 tbh-2
sleep 1
assert_eq "$(receiver_count)" 1 "no message for the cancelled run"

# testbed up: the testbed of a plan, made in the foreground and kept; its
# user stages are not run, and no unit or message is involved.
sed -e 's| rdinit=/bin/sh||' -e 's|run: "true"|run: "touch /tmp/user-stage-ran"|' "$IT_DIR/work/wait.yaml" >"$IT_DIR/work/up.yaml"
d=$("$RW_BIN" testbed up "$IT_DIR/work/up.yaml" --build tbh-3 --json 2>"$IT_DIR/up.err") ||
  fail "testbed up: $d $(tail -n 20 "$IT_DIR/up.err")"
assert_eq "$(py 'd["up"]')" True "it is up"
assert_eq "$(py 'sorted((g["name"], g["addresses"][0]) for g in d["guests"])')" \
  "[('web-1', '10.79.0.10'), ('web-2', '10.79.0.11')]" "its guests, with their addresses"
assert_eq "$(hv_virsh hv1 list --name)" rw-tbh-3-web-1 "web-1 runs on hv1"
assert_eq "$(hv_virsh hv2 list --name)" rw-tbh-3-web-2 "web-2 runs on hv2"
assert_eq "$(run_status tbh-3)" COMPLETED "its run record"
assert_eq "$(ls "$RUNWARDEN_STATE_DIR/runs/tbh-3/tasks")" $'testbed-ready\ntestbed-up' "only the testbed's stages ran"
assert_eq "$(unit_state runner@tbh-3.service)" inactive "no unit was started"
out=$("$RW_BIN" testbed down tbh-3) || fail "testbed down: $out"
testbed_assert_empty_on hv1 tbh-3
testbed_assert_empty_on hv2 tbh-3

# An up that cannot finish (the guests never lease): exit 1, the reason, and
# nothing left behind.
sed -i -e 's|up_timeout: 4m|up_timeout: 10s|' "$IT_DIR/work/wait.yaml"
"$RW_BIN" testbed up "$IT_DIR/work/wait.yaml" --build tbh-4 >"$IT_DIR/up.out" 2>&1 && fail "an up that times out succeeded"
assert_contains "$(cat "$IT_DIR/up.out")" "tbh-4 did not come up" "it says so"
testbed_assert_empty_on hv1 tbh-4
testbed_assert_empty_on hv2 tbh-4
sleep 1
assert_eq "$(receiver_count)" 1 "testbed up posts no message"
pass
