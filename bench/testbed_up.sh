#!/bin/bash
# bench/testbed_up.sh [N ...]: a golden (booted, one setup step, sealed) and
# N linked clones of it, to every clone answering SSH, then the teardown,
# under TCG on a private libvirtd, through start-run like a user's run.
# Each N (default: 3 10) is run with clones and guests made 4 at a time
# (the default) and one at a time (the serial baseline), in turn. Prints the
# generated stages' durations from the run's state.json and the runner's
# peak RSS (VmHWM), for the controller memory per guest.
# Needs the guest kit (tests/testbed/guest-kit.sh builds it once).
source "$(dirname "$0")/../tests/testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/bench_lib.sh"
testbed_it_setup
counts=("${@:-3}")
[[ $# -eq 0 ]] && counts=(3 10)

plan() {  # plan FILE N PARALLEL
  testbed_golden_plan "$1" 10.81.0.0/24 "$2" '"printf golden | dd of=/dev/vda conv=notrunc 2>/dev/null; sync"' \
    "up_timeout: 10m" "parallel: $3" <<YAML
stages:
  - name: use
    tasks:
      - {name: hello, on: [$(seq -s, -f 'web-%g' 1 "$2" | sed 's/,/, /g')], run: "true"}
YAML
}

stage_ms() {  # stage_ms BUILD STAGE
  jq -r --arg s "$2" '.stages[] | select(.name == $s) | (.ended_at_ms - .started_at_ms)' \
    "$RUNWARDEN_STATE_DIR/runs/$1/state.json"
}

printf '%-4s %-8s %10s %10s %10s %10s %10s %12s\n' N parallel golden_ms up_ms ready_ms to_ready_ms down_ms runner_hwm_kb
i=0
for n in "${counts[@]}"; do
  for par in 4 1; do
    i=$((i + 1))
    b=tbu-$i
    plan "$IT_DIR/work/$b.yaml" "$n" "$par"
    start_run -q --build-name "$b" --plan "$IT_DIR/work/$b.yaml" --workdir "$IT_DIR/work"
    hwm=0
    while :; do
      s=$(run_status "$b")
      [[ $s == PENDING || $s == RUNNING ]] || break
      pid=$(unit_pid "runner@$b.service" 2>/dev/null || true)
      if [[ -n $pid && $pid != 0 ]]; then
        h=$(awk '/VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        ((h > hwm)) && hwm=$h
      fi
      sleep 0.2
    done
    [[ $s == COMPLETED ]] || { echo "run $b ended $s"; tail -n 20 "$RUNWARDEN_STATE_DIR/runs/$b/runner.log"; exit 1; }
    g=$(stage_ms "$b" testbed-golden) u=$(stage_ms "$b" testbed-up) r=$(stage_ms "$b" testbed-ready)
    printf '%-4s %-8s %10s %10s %10s %10s %10s %12s\n' "$n" "$par" "$g" "$u" "$r" $((g + u + r)) \
      "$(stage_ms "$b" testbed-down)" "$hwm"
  done
done
