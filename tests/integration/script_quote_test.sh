#!/bin/bash
# A script whose path holds quotes and spaces runs on the controller: the
# path reaches /bin/sh through the one quoting function.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
mkdir -p "$IT_DIR/work/it's here"
printf '#!/bin/sh\necho "script ran: $0"\n' >"$IT_DIR/work/it's here/a 'b'.sh"
cat >"$IT_DIR/work/plan.yaml" <<'YAML'
version: 1
stages:
  - name: s
    tasks:
      - {name: quoted, script: "it's here/a 'b'.sh"}
YAML
start_run -q --build-name sq-1 --plan "$IT_DIR/work/plan.yaml" --workdir "$IT_DIR/work"
wait_for -m "run sq-1 to end" eval '[[ $(run_status sq-1) == COMPLETED || $(run_status sq-1) == FAILED ]]'
assert_eq "$(run_status sq-1)" COMPLETED "the quoted script ran: $(cat "$RUNWARDEN_STATE_DIR"/runs/sq-1/tasks/s/* 2>/dev/null)"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR"/runs/sq-1/tasks/s/*)" "script ran:" "its output"
pass
