#!/bin/bash
# A golden's build VM never outlives the runner that started it: SIGKILL the
# runner during the golden's setup and libvirt destroys the VM (it is
# transient and auto-destroyed with the runner's connection); the restarted
# runner starts the unfinished golden again from its image. Then cancel-run
# during the setup: CANCELLED, no message, and nothing is left on the host.
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup

testbed_golden_plan "$IT_DIR/work/golden.yaml" 10.80.0.0/24 1 '"sleep 600"' "up_timeout: 3m" <<'YAML'
stages:
  - name: test
    tasks:
      - {name: never, on: [web], run: "true"}
YAML
start_run -q --build-name tgc-1 --plan "$IT_DIR/work/golden.yaml" --workdir "$IT_DIR/work"
events=$RUNWARDEN_STATE_DIR/runs/tgc-1/events.jsonl
in_setup() { grep -c "testbed: golden gold: setup 1/1" "$events" 2>/dev/null | grep -qx "$1"; }
wait_for -t 180 -m "the golden's setup running" in_setup 1
vm=$(pgrep -f "guest=rw-tgc-1-gold" | head -n 1)
[[ -n $vm ]] || fail "no qemu for the golden's build VM"
kill -KILL "$(unit_pid runner@tgc-1.service)"
wait_for -t 30 -m "the killed runner's build VM destroyed" eval "! kill -0 $vm 2>/dev/null"

# The runner is restarted and builds the golden again, from its image.
wait_for -t 180 -m "the golden's setup running again" in_setup 2
assert_contains "$(cat "$events")" "an unfinished build is started again" "the restarted runner started over"
assert_eq "$(libvirt_host_virsh list --all --name | grep -c . || true)" 1 "one build VM, the new one"

cancel_run --build-name tgc-1 >/dev/null
wait_status tgc-1 CANCELLED 60
wait_for -t 60 -m "runner@tgc-1 stopped" unit_gone runner@tgc-1.service
testbed_assert_empty tgc-1
sleep 1
assert_eq "$(receiver_count)" 0 "no message for a cancelled run"
pass
