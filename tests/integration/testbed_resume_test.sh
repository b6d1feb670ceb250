#!/bin/bash
# A runner SIGKILLed during testbed-up is restarted by systemd and resumes:
# up runs again as an ensure and makes only what is missing (the network is
# created once). With teardown: never the testbed stays after the run;
# `runwarden testbed ls` lists it with its run's state and `gc` removes it.
# Runs in a network namespace of its own.
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup
testbed_plan "$IT_DIR/work/lab.yaml" 10.81.0.0/24 2 "teardown: never" "up_timeout: 3m" <<'YAML'
stages:
  - name: test
    tasks:
      - {name: hello, on: [web-1, web-2], run: "hostname"}
YAML
testbed_kill_during_up tr-1 "$IT_DIR/work/lab.yaml"
assert_eq "$(libvirt_host_virsh list --all --name | grep -c . || true)" 2 "two guests, none twice"

# teardown: never: the testbed stays; status lists its guests, ls and gc
# find it by its tags.
st=$("$RW_BIN" status tr-1)
assert_contains "$st" "web-1                          10.81.0.10       running" "status lists the guests: $st"
assert_contains "$("$RW_BIN" status tr-1 --json)" '"address": "10.81.0.11"' "status --json lists them too"
ls_out=$("$RW_BIN" testbed ls --connect "$LIBVIRT_HOST_URI")
assert_eq "$(grep -c 'run COMPLETED' <<<"$ls_out")" 4 "2 guests, a network and a pool, with their run's state: $ls_out"
assert_contains "$("$RW_BIN" testbed gc --connect "$LIBVIRT_HOST_URI" --dry-run)" "would remove guest tr-1/web-1" "gc --dry-run"
assert_eq "$(libvirt_host_virsh list --all --name | grep -c . || true)" 2 "a dry run removes nothing"
"$RW_BIN" testbed gc --connect "$LIBVIRT_HOST_URI" >/dev/null
assert_eq "$("$RW_BIN" testbed ls --connect "$LIBVIRT_HOST_URI" --json)" "[]" "gc removed it all"
assert_eq "$(libvirt_host_virsh net-list --all --name | grep -c . || true)" 0 "no network left"
assert_eq "$(libvirt_host_virsh pool-list --all --name | grep -c . || true)" 0 "no pool left"
pass
