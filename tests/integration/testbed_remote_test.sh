#!/bin/bash
# A testbed on a hypervisor that is a plan host reached over SSH
# (`testbed: host: hv1`): libvirt's protocol goes through the run's own SSH
# connection to virt-ssh-helper on hv1, and the guests are reached via hv1.
# hv1 is a real sshd in the libvirt host's mount namespace (so
# qemu:///system there is that libvirtd), listening on loopback in the
# test's network namespace; the controller is given no libvirt URI at all.
# A wrapper in hv1's /usr/local/bin logs each virt-ssh-helper start, and
# sshd's debug log shows the forwarded connections to the guests. Then a
# cancel during testbed-up, a runner SIGKILLed during it, and one SIGKILLed
# while a golden's build VM runs on hv1.
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup

# hv1: sshd in libvirtd's mount namespace, with a clean /root and a logging
# virt-ssh-helper ahead of the real one on its PATH.
hv=$IT_DIR/hv1
port=2222
testbed_sshd_config "$hv" "127.0.0.1:$port" hv1
mkdir -p "$hv/bin"
cat >"$hv/bin/virt-ssh-helper" <<SH
#!/bin/sh
echo "virt-ssh-helper \$*" >>"$hv/helper.log"
exec /usr/bin/virt-ssh-helper "\$@"
SH
chmod +x "$hv/bin/virt-ssh-helper"
nsenter --target "$(cat "$IT_DIR/lvh/run/libvirtd.pid")" --mount -- \
  unshare --mount --propagation private /bin/sh -c \
  'mount --bind "$1/bin" /usr/local/bin && mount --bind "$1/home" /root && exec /usr/sbin/sshd -D -f "$1/sshd_config" -E "$1/sshd.log"' \
  sh "$hv" &
sshd_pid=$!
IT_EXTRA_TEARDOWN+=("kill $sshd_pid 2>/dev/null || true")
listening() { ss -Hltn "sport = :$port" | grep -q .; }
wait_for -m "hv1's sshd listening" listening
echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$hv/host_key.pub")" >"$IT_DIR/hv_known_hosts"

# on_hv1 PLAN: a testbed_plan's libvirt URI replaced by host: hv1.
on_hv1() {
  sed -i -e "s|^  libvirt: .*|  host: hv1|" \
    -e "s|^version: 1$|version: 1\nhosts:\n  hv1: {address: 127.0.0.1, port: $port, identity: $TB_KEY, known_hosts: $IT_DIR/hv_known_hosts}|" \
    "$1"
  "$RW_BIN" validate "$1" >/dev/null || fail "plan: $("$RW_BIN" validate "$1" 2>&1)"
}

# The usual 2-guest plan, on hv1.
testbed_plan "$IT_DIR/work/lab.yaml" 10.79.0.0/24 2 "up_timeout: 3m" <<'YAML'
stages:
  - name: test
    tasks:
      - {name: hello, on: [web-1, web-2], run: "echo I am $(hostname)"}
YAML
on_hv1 "$IT_DIR/work/lab.yaml"
assert_contains "$("$RW_BIN" plan "$IT_DIR/work/lab.yaml")" "via hv1" "the guests are reached via hv1"

# testbed diff reaches hv1's libvirt as a run does (the plan's SSH settings):
# nothing made yet, so every object is missing.
d=$("$RW_BIN" testbed diff "$IT_DIR/work/lab.yaml" --build tbr-1 --json) || fail "testbed diff: $d"
py() { "$IT_PYTHON" -c "import json,sys; d=json.loads(sys.argv[2]); print($1)" "$1" "$d"; }
assert_eq "$(py 'd["uri"]')" "qemu:///system on hv1" "diff went to hv1"
assert_eq "$(py 'sorted(set(o["status"] for o in d["objects"]))')" "['missing']" "nothing there yet"
assert_eq "$(grep -c . "$hv/helper.log")" 1 "through virt-ssh-helper on hv1"

start_run -q --build-name tbr-1 --plan "$IT_DIR/work/lab.yaml" --workdir "$IT_DIR/work"
ended() { [[ $(run_status tbr-1) != PENDING && $(run_status tbr-1) != RUNNING ]]; }
wait_for -t 400 -m "run tbr-1 to end" ended
assert_eq "$(run_status tbr-1)" COMPLETED "the run: $(tail -n 5 "$RUNWARDEN_STATE_DIR/runs/tbr-1/runner.log" 2>/dev/null)"
wait_for -m "one post" count_is 1
out=$(cat "$RUNWARDEN_STATE_DIR"/runs/tbr-1/tasks/test/* 2>/dev/null || true)
for n in 1 2; do assert_contains "$out" "I am web-$n" "web-$n ran the user's task"; done

# Through hv1: libvirt by virt-ssh-helper (up and down at least), the guests
# by connections hv1's sshd forwarded.
assert_contains "$(cat "$hv/helper.log" 2>/dev/null)" "virt-ssh-helper qemu:///system" "libvirt went through hv1"
helpers=$(grep -c . "$hv/helper.log" || true)
((helpers >= 3)) || fail "one virt-ssh-helper for the diff and one per testbed task (up, down) expected, got $helpers"
assert_contains "$(cat "$hv/sshd.log")" "target 10.79.0.10 port 22" "web-1 was reached through hv1"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/tbr-1/testbed.json")" '"uri": "qemu:///system on hv1"' \
  "the record says where the guests were"
# Everything the run made on hv1 is gone (teardown ran through hv1 too).
testbed_assert_empty tbr-1

# cancel-run while testbed-up waits for guests that never ask for an address
# (rdinit=/bin/sh): CANCELLED, no message, and the teardown, through hv1,
# leaves nothing.
testbed_plan "$IT_DIR/work/wait.yaml" 10.79.0.0/24 2 "up_timeout: 5m" \
  "guest.cmdline: console=ttyS0 quiet rdinit=/bin/sh" <<'YAML'
stages:
  - name: test
    tasks:
      - {name: never, on: [web-1], run: "true"}
YAML
on_hv1 "$IT_DIR/work/wait.yaml"
start_run -q --build-name tbr-2 --plan "$IT_DIR/work/wait.yaml" --workdir "$IT_DIR/work"
testbed_cancel_while_up tbr-2 2
sleep 1
assert_eq "$(receiver_count)" 1 "no message for the cancelled run"

# The runner SIGKILLed during testbed-up on hv1: its SSH connection (and so
# its libvirt connection) dies with it; systemd restarts it, the resumed up
# makes only what is missing, through a new relay.
testbed_kill_during_up tbr-3 "$IT_DIR/work/lab.yaml"
testbed_assert_empty tbr-3

# A golden's build VM on hv1 is auto-destroyed with the runner's libvirt
# connection, which here is a relayed SSH channel: SIGKILL the runner during
# the golden's setup and hv1's libvirtd destroys the VM. cancel-run while
# systemd waits to restart it: the restart is not dropped, the runner starts
# on the cancelled run and runs its teardown; nothing is left.
testbed_golden_plan "$IT_DIR/work/golden.yaml" 10.79.0.0/24 1 '"sleep 600"' "up_timeout: 3m" <<'YAML'
stages:
  - name: test
    tasks:
      - {name: never, on: [web], run: "true"}
YAML
on_hv1 "$IT_DIR/work/golden.yaml"
start_run -q --build-name tbr-4 --plan "$IT_DIR/work/golden.yaml" --workdir "$IT_DIR/work"
events=$RUNWARDEN_STATE_DIR/runs/tbr-4/events.jsonl
wait_for -t 180 -m "the golden's setup running" eval "grep -q 'testbed: golden gold: setup 1/1' '$events' 2>/dev/null"
vm=$(pgrep -f "guest=rw-tbr-4-gold" | head -n 1)
[[ -n $vm ]] || fail "no qemu for the golden's build VM"
kill -KILL "$(unit_pid runner@tbr-4.service)"
wait_for -t 10 -m "runner@tbr-4 waiting to restart" eval '[[ $(ctl show -p SubState --value runner@tbr-4.service) == auto-restart ]]'
cancel_run --build-name tbr-4 >/dev/null
wait_for -t 30 -m "the killed runner's build VM destroyed on hv1" eval "! kill -0 $vm 2>/dev/null"
assert_eq "$(run_status tbr-4)" CANCELLED "the run"
assert_eq "$(unit_state runner@tbr-4.service)" inactive "cancel-run returned once the runner had ended"
log=$(cat "$RUNWARDEN_STATE_DIR/runs/tbr-4/runner.log")
assert_contains "$log" "testbed tbr-4: removed" "the restarted runner ran the teardown"
testbed_assert_empty tbr-4
sleep 1
assert_eq "$(receiver_count)" 2 "no message for the cancelled runs (tbr-1 and tbr-3 posted)"
pass
