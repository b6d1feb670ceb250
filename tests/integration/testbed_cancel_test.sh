#!/bin/bash
# cancel-run during testbed-up: the run ends CANCELLED with no message, the
# teardown (teardown: always) still runs, and nothing the run made is left on
# the libvirt host. Runs in a network namespace of its own.
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup
kit=$TB_KIT
# rdinit=/bin/sh: the guests boot to a shell and never ask for an address,
# so testbed-up is still waiting when the run is cancelled.
cat >"$IT_DIR/work/lab.yaml" <<YAML
version: 1
testbed:
  libvirt: "$LIBVIRT_HOST_URI"
  images_dir: $IT_DIR/images
  up_timeout: 5m
  images:
    base: {path: $IT_DIR/base.qcow2}
  networks:
    lab: {subnet: 10.79.0.0/24}
  guests:
    web:
      count: 2
      image: base
      disk: 64M
      memory: 128M
      accel: tcg
      kernel: $kit/vmlinuz
      initrd: $kit/initrd.img
      cmdline: console=ttyS0 quiet rdinit=/bin/sh
      networks: [lab]
      ssh_key: $IT_DIR/id_ed25519.pub
      identity: $IT_DIR/id_ed25519
stages:
  - name: test
    tasks:
      - {name: never, on: [web-1], run: "true"}
YAML
start_run -q --build-name tc-1 --plan "$IT_DIR/work/lab.yaml" --workdir "$IT_DIR/work"
wait_for -t 120 -m "guests running" eval '[[ $(libvirt_host_virsh list --name | grep -c . || true) -ge 2 ]]'
cancel_run --build-name tc-1 >/dev/null
wait_status tc-1 CANCELLED 60
wait_for -t 60 -m "runner@tc-1 stopped" unit_gone runner@tc-1.service
assert_eq "$(libvirt_host_virsh list --all --name | grep -c . || true)" 0 "no guest left"
assert_eq "$(libvirt_host_virsh net-list --all --name | grep -c . || true)" 0 "no network left"
assert_eq "$(libvirt_host_virsh pool-list --all --name | grep -c . || true)" 0 "no pool left"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/tc-1/runner.log")" "testbed tc-1: removed" "the teardown ran"
sleep 1
assert_eq "$(receiver_count)" 0 "no message for a cancelled run"
pass
