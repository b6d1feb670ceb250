#!/bin/bash
# Open vSwitch networks (`switch: ovs`) across two hypervisors, each a
# machine of its own here (libvirtd, sshd, ovsdb-server and ovs-vswitchd in
# their own network and mount namespaces; the userspace datapath, as this
# kernel has no openvswitch module). runwarden makes each host's bridge
# (tagged with the build, with the host's address on the network) over the
# host's SSH, joins them by a VXLAN port, and libvirt plugs the guests in.
# No DHCP: each guest takes its address from the network-config of the seed
# runwarden wrote. web-1 on hv1 and web-2 on hv2 reach each other with
# full-size frames. Kept (teardown: never): `testbed diff` is in sync,
# `testbed gc --runs` finds it (its run has ended) and removes the bridges and
# VXLAN links with the rest. Then a run with the
# default teardown on one host (`host: hv1`): nothing is left after it.
# Then a hypervisor on the controller itself (a local URI).
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
command -v ovs-vswitchd >/dev/null || { echo "FAIL testbed_ovs: openvswitch-switch is not installed (scripts/install-deps.sh)"; exit 1; }
testbed_it_setup --no-host
LIBVIRT_HOST_OVS=1 testbed_hypervisor hv1 10.200.0.11
LIBVIRT_HOST_OVS=1 testbed_hypervisor hv2 10.200.0.12

# ovs_empty NAME: no Open vSwitch bridge is left on hypervisor NAME.
ovs_empty() { assert_eq "$(hv_in "$1" ovs-vsctl list-br | grep -c . || true)" 0 "no Open vSwitch bridge left on $1"; }

m=$(printf '      %s\n' "memory: 160M" "disk: 64M" "accel: tcg" "kernel: $TB_KIT/vmlinuz" \
  "initrd: $TB_KIT/initrd.img" "cmdline: console=ttyS0 quiet" "networks: [lab]" "ssh_key: $TB_KEY.pub" \
  "identity: $TB_KEY")
# plan FILE HYPERVISORS COUNT EXTRA < STAGES
plan() {
  {
    testbed_hv_head "$2" "$4" "{subnet: 10.81.0.0/24, switch: ovs}"
    cat <<YAML
  guests:
    web:
      count: $3
      image: base
$m
YAML
    cat
  } >"$1"
  "$RW_BIN" validate "$1" >/dev/null || fail "plan: $("$RW_BIN" validate "$1" 2>&1)"
}

plan "$IT_DIR/work/lab.yaml" "hosts: [hv1, hv2]" 2 "  teardown: never"$'\n' <<'YAML'
stages:
  - name: look
    tasks:
      - {name: addr, on: [web-1, web-2], run: "echo $(hostname) has $(ip -4 -o addr show eth0 | awk '{print $4}') mtu $(cat /sys/class/net/eth0/mtu)"}
  - name: across
    tasks:
      - {name: to-web-2, on: [web-1], run: "ping -c 3 -W 5 -s 1422 10.81.0.11"}
      - {name: to-web-1, on: [web-2], run: "ping -c 3 -W 5 -s 1422 10.81.0.10"}
YAML
start_run -q --build-name tbo-1 --plan "$IT_DIR/work/lab.yaml" --workdir "$IT_DIR/work"
ended() { [[ $(run_status "$1") != PENDING && $(run_status "$1") != RUNNING ]]; }
wait_for -t 600 -m "run tbo-1 to end" ended tbo-1
log=$(cat "$RUNWARDEN_STATE_DIR/runs/tbo-1/runner.log")
assert_eq "$(run_status tbo-1)" COMPLETED "the run: $(tail -n 20 <<<"$log")"
out=$(cat "$RUNWARDEN_STATE_DIR"/runs/tbo-1/tasks/look/* "$RUNWARDEN_STATE_DIR"/runs/tbo-1/tasks/across/* 2>/dev/null || true)
# Static addresses from the seeds (the guests' consoles say so), the MTU
# for VXLAN, full-size frames across the hosts.
assert_contains "$out" "web-1 has 10.81.0.10/24 mtu 1450" "web-1's address and MTU"
assert_contains "$out" "web-2 has 10.81.0.11/24 mtu 1450" "web-2's address and MTU"
assert_eq "$(grep -c '3 packets received' <<<"$out" || true)" 2 "web-1 and web-2 reach each other: $out"
assert_contains "$log" "Open vSwitch bridges on hv1 ready" "hv1's bridge was made"
assert_contains "$log" "Open vSwitch bridges on hv2 ready" "hv2's bridge was made"
# Each host: one bridge of ours, tagged with the build, its address on the
# network (hv1 the first, hv2 the top), the guest's port and the VXLAN port.
for hv in hv1 hv2; do
  br=$(hv_in $hv ovs-vsctl list-br)
  assert_eq "$(grep -c . <<<"$br")" 1 "one bridge on $hv"
  assert_eq "$(hv_in $hv ovs-vsctl get bridge "$br" external-ids:runwarden-testbed | tr -d '"')" tbo-1 "$hv's bridge is tagged"
  ports=$(hv_in $hv ovs-vsctl list-ports "$br")
  assert_contains "$ports" "rwx" "$hv's bridge has the VXLAN port"
  assert_contains "$ports" "vnet" "$hv's bridge has its guest's port"
done
assert_contains "$(hv_in hv1 ip -4 -o addr show)" "10.81.0.1/24" "hv1 has the first address"
assert_contains "$(hv_in hv2 ip -4 -o addr show)" "10.81.0.254/24" "hv2 has the top address"
assert_contains "$(cat "$IT_DIR/hv2/sshd.log")" "target 10.81.0.11 port 22" "web-2 was reached through hv2"
d=$("$RW_BIN" testbed diff tbo-1 --json) || fail "testbed diff: $d"
py() { "$IT_PYTHON" -c "import json,sys; d=json.loads(sys.argv[2]); print($1)" "$1" "$d"; }
assert_eq "$(py 'd["differences"]')" 0 "in sync: $(py '[o for o in d["objects"] if o["status"] != "in-sync"]')"
# No leases: status shows each guest's static address (from the plan that
# wrote its seed).
d=$("$RW_BIN" testbed status tbo-1 --json) || fail "testbed status: $d"
assert_eq "$(py 'sorted((o["name"], o["host"], o["addresses"]) for o in d["objects"] if o["kind"] == "guest")')" \
  "[('web-1', 'hv1', ['10.81.0.10']), ('web-2', 'hv2', ['10.81.0.11'])]" "each guest's address"
# Its run has ended: `testbed gc --runs` finds it on both hosts through the
# run's plan, bridges and VXLAN links (by their tags) included.
out=$("$RW_BIN" testbed gc --runs --dry-run) || fail "testbed gc --dry-run: $out"
assert_eq "$(grep -c 'would remove Open vSwitch bridge rwb.* of tbo-1' <<<"$out")" 2 "a bridge on each host: $out"
assert_eq "$(grep -c 'would remove VXLAN link rwx.* of tbo-1' <<<"$out")" 2 "a link on each host: $out"
d=$("$RW_BIN" testbed gc --runs --dry-run --json) || fail "testbed gc --dry-run --json: $d"
assert_eq "$(py 'sorted((o["kind"], o["host"].split(" on ")[-1]) for o in d if o["kind"] in ("ovs-bridge", "vxlan-link"))')" \
  "[('ovs-bridge', 'hv1'), ('ovs-bridge', 'hv2'), ('vxlan-link', 'hv1'), ('vxlan-link', 'hv2')]" \
  "one JSON document with each host's bridge and link"
assert_eq "$(py 'sorted(set(o["action"] for o in d))')" "['would remove']" "nothing removed by --dry-run"
assert_eq "$(hv_in hv1 ovs-vsctl list-br | grep -c .)" 1 "--dry-run removes nothing"
out=$("$RW_BIN" testbed gc --runs) || fail "testbed gc: $out"
assert_eq "$(grep -c 'removed Open vSwitch bridge rwb' <<<"$out")" 2 "gc removed both bridges: $out"
assert_eq "$(grep -c 'removed VXLAN link rwx' <<<"$out")" 2 "gc removed both links: $out"
for hv in hv1 hv2; do
  testbed_assert_empty_on $hv tbo-1
  ovs_empty $hv
done
out=$("$RW_BIN" testbed down tbo-1) || fail "down after gc: $out"
assert_not_contains "$out" "removed" "down after gc finds nothing"

# One hypervisor (host: hv1), the default teardown: the run's own down
# removes the bridge. The guest's NICs as the plan gives them: on the Open
# vSwitch network at the address given, on a Linux bridge network by DHCP
# (from its range) with the MAC given.
{
  testbed_hv_head "host: hv1" "" "{subnet: 10.81.0.0/24, switch: ovs}"$'\n'"    back: {subnet: 10.83.0.0/24}"
  nics='networks: [{network: lab, ip: 10.81.0.50}, {network: back, ip: dhcp, mac: "52:54:00:0a:0b:0c"}]'
  cat <<YAML
  guests:
    web:
      image: base
${m/networks: \[lab\]/$nics}
stages:
  - name: look
    tasks:
      - {name: addr, on: [web], run: "ip -4 -o addr show; cat /sys/class/net/eth1/address"}
YAML
} >"$IT_DIR/work/one.yaml"
"$RW_BIN" validate "$IT_DIR/work/one.yaml" >/dev/null || fail "plan: $("$RW_BIN" validate "$IT_DIR/work/one.yaml" 2>&1)"
start_run -q --build-name tbo-2 --plan "$IT_DIR/work/one.yaml" --workdir "$IT_DIR/work"
wait_for -t 600 -m "run tbo-2 to end" ended tbo-2
log=$(cat "$RUNWARDEN_STATE_DIR/runs/tbo-2/runner.log")
assert_eq "$(run_status tbo-2)" COMPLETED "the run: $(tail -n 20 <<<"$log")"
out=$(cat "$RUNWARDEN_STATE_DIR"/runs/tbo-2/tasks/look/*)
assert_contains "$out" "eth0    inet 10.81.0.50/24" "eth0 has the address given"
assert_contains "$out" "eth1    inet 10.83.0." "eth1 leased"
assert_not_contains "$out" "eth1    inet 10.83.0.1/" "not the host's"
assert_contains "$out" "52:54:00:0a:0b:0c" "eth1 has the MAC given"
assert_contains "$log" "removed Open vSwitch bridge rwb" "the teardown removed the bridge"
testbed_assert_empty_on hv1 tbo-2
ovs_empty hv1

# The hypervisor on the controller (a local URI; libvirtd and Open vSwitch
# in this test's namespace): the runner makes the bridge itself, and
# `testbed down` removes it here. Their ovs-vsctl find its database by
# OVS_RUNDIR (libvirtd's, by its private /run/openvswitch).
LIBVIRT_HOST_OVS=1 libvirt_host_start "$IT_DIR/lvh" || fail "libvirt host did not start"
IT_EXTRA_TEARDOWN+=("libvirt_host_stop '$IT_DIR/lvh'")
export OVS_RUNDIR=$IT_DIR/lvh/ovs
mkdir -p "$IT_DIR/extra/runner@.service.d"
printf '[Service]\nEnvironment=OVS_RUNDIR=%s\n' "$OVS_RUNDIR" >"$IT_DIR/extra/runner@.service.d/60-ovs.conf"
add_units "$IT_DIR/extra/runner@.service.d" >/dev/null
testbed_plan "$IT_DIR/work/local.yaml" "10.82.0.0/24, switch: ovs" 1 "teardown: never" <<'YAML'
stages:
  - name: look
    tasks:
      - {name: addr, on: [web], run: "ip -4 -o addr show eth0"}
YAML
start_run -q --build-name tbo-3 --plan "$IT_DIR/work/local.yaml" --workdir "$IT_DIR/work"
wait_for -t 600 -m "run tbo-3 to end" ended tbo-3
log=$(cat "$RUNWARDEN_STATE_DIR/runs/tbo-3/runner.log")
assert_eq "$(run_status tbo-3)" COMPLETED "the run: $(tail -n 20 <<<"$log")"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR"/runs/tbo-3/tasks/look/*)" "10.82.0.10/24" "web has its address"
assert_contains "$log" "Open vSwitch bridges on controller ready" "the runner made the bridge here"
br=$(ovs-vsctl list-br)
assert_eq "$(ovs-vsctl get bridge "$br" external-ids:runwarden-testbed | tr -d '"')" tbo-3 "the bridge is tagged"
assert_contains "$(ip -4 -o addr show dev "$br")" "10.82.0.1/24" "this host's address is on it"
out=$("$RW_BIN" testbed down tbo-3) || fail "testbed down: $out"
assert_contains "$out" "removed Open vSwitch bridge $br" "down removed it"
testbed_assert_empty tbo-3
assert_eq "$(ovs-vsctl list-br | grep -c . || true)" 0 "no Open vSwitch bridge left here"

pass
