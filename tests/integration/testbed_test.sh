#!/bin/bash
# A testbed plan end to end on a real libvirtd with TCG guests built from
# Debian packages: an isolated network, 3 linked clones of a base image
# with a blank data disk each (in their snapshots: written, reverted),
# each booted with the seed runwarden wrote (hostname, SSH key and its own
# host key, known to the run before it boots), reached
# over SSH by a user stage; one message; the teardown leaves no guest,
# network, pool, bridge or qemu behind. Runs in a network namespace of its
# own, so bridges, dnsmasq and firewall rules never touch the machine's.
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup

testbed_plan "$IT_DIR/work/lab.yaml" 10.77.0.0/24 3 "up_timeout: 3m" "guest.disks: [16M]" <<'YAML'
stages:
  - name: test
    tasks:
      - {name: hello, on: [web-1, web-2, web-3], run: "echo I am $(hostname) uuid $(cat /sys/class/dmi/id/product_uuid) data disk $(cat /sys/block/vdb/size) sectors"}
      - {name: seen, run: 'cp "$RUNWARDEN_STATE_DIR/runs/tb-1/testbed.json" testbed-during.json'}
  - name: keep
    tasks:
      - {name: clean, snapshot: {create: clean}}
  - name: write
    tasks:
      - {name: data, on: [web-1], run: "printf data-written | dd of=/dev/vdb conv=fsync 2>/dev/null && echo wrote $(head -c 12 /dev/vdb)"}
  - name: back
    tasks:
      - {name: web-1, on: [web-1], snapshot: {revert: clean}}
  - name: check
    tasks:
      - {name: data, on: [web-1], run: "echo data=$(head -c 12 /dev/vdb | tr -d '\\0')."}
YAML
start_run -q --build-name tb-1 --plan "$IT_DIR/work/lab.yaml" --workdir "$IT_DIR/work"
ended() { [[ $(run_status tb-1) != PENDING && $(run_status tb-1) != RUNNING ]]; }
wait_for -t 400 -m "run tb-1 to end" ended
assert_eq "$(run_status tb-1)" COMPLETED "the run: $(tail -n 5 "$RUNWARDEN_STATE_DIR/runs/tb-1/runner.log" 2>/dev/null)"
wait_for -m "one post" count_is 1
assert_contains "$(receiver_bodies)" "COMPLETED" "the run's message"
out=$(cat "$RUNWARDEN_STATE_DIR"/runs/tb-1/tasks/test/* 2>/dev/null || true)
for n in 1 2 3; do assert_contains "$out" "I am web-$n" "web-$n booted with the hostname from its seed"; done
# Its blank data disk (vdb, 16 MiB) is in its snapshot: what was written
# after it is gone after the revert.
assert_contains "$out" "data disk 32768 sectors" "each guest has its data disk"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR"/runs/tb-1/tasks/write/*)" "wrote data-written" "written on web-1's data disk"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR"/runs/tb-1/tasks/check/*)" "data=." "the revert took the data disk back"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/tb-1/events.jsonl")" '"testbed: 3/3 guests up' \
  "the run's progress said how many guests were up"
# Host keys: made by the run, put in each seed, known before the guests
# booted (strict): the run's known_hosts holds exactly those keys.
run_dir=$RUNWARDEN_STATE_DIR/runs/tb-1
want=$(for n in 1 2 3; do cut -d' ' -f2 "$run_dir/testbed-hostkeys/web-$n.pub"; done | sort)
have=$(awk '{print $3}' "$run_dir/testbed_known_hosts" | sort)
assert_eq "$have" "$want" "known_hosts has the three keys the run made"
assert_eq "$(stat -c %a "$run_dir/testbed-hostkeys/web-1")" 600 "a private host key is 0600"
assert_contains "$(cat "$IT_DIR"/lvh/log/qemu/rw-tb-1-web-2-console.log)" "rw-guest: host key from the seed" \
  "web-2 took its host key from its seed"
uuids=$(grep -o 'uuid [0-9a-f-]*' <<<"$out" | sort -u | grep -c .)
assert_eq "$uuids" 3 "every clone has its own UUID (so its own machine id)"

# What the run recorded of its guests (testbed.json), for the views that do
# not ask libvirt: up while the user stage ran, removed after the teardown;
# the web API and /metrics serve it.
py() { "$IT_PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$2"; }
assert_eq "$(py '" ".join(g["name"]+":"+g["state"] for g in d["guests"])' "$IT_DIR/work/testbed-during.json")" \
  "web-1:up web-2:up web-3:up" "during the user stage, the three guests were recorded up"
assert_contains "$(py 'd["guests"][1]["addresses"]' "$IT_DIR/work/testbed-during.json")" "10.77.0." "with their addresses"
port=$("$IT_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$RW_BIN" serve --listen "127.0.0.1:$port" >"$IT_DIR/serve.log" 2>&1 &
serve_pid=$!
IT_EXTRA_TEARDOWN+=("kill $serve_pid 2>/dev/null || true")
wait_for -m "runwarden serve" curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"
curl -sS "http://127.0.0.1:$port/api/v1/runs/tb-1" >"$IT_DIR/tb-1.json"
assert_eq "$(py '" ".join(g["name"]+":"+g["state"] for g in d["testbed"]["guests"])' "$IT_DIR/tb-1.json")" \
  "web-1:removed web-2:removed web-3:removed" "the API shows the guests, removed by the teardown"
m=$(curl -sS "http://127.0.0.1:$port/metrics")
assert_contains "$m" 'runwarden_testbed_guests{state="removed"} 3' "/metrics counts them"
assert_contains "$m" 'runwarden_testbed_guests{state="up"} 0' "none up"
kill "$serve_pid"

# testbed-down ran: nothing the run made is left.
testbed_assert_empty tb-1
assert_eq "$("$RW_BIN" testbed ls --connect "$LIBVIRT_HOST_URI" --json)" "[]" "testbed ls shows nothing"
pass
