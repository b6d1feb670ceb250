#!/bin/bash
# A sub-run's message is its final outcome: in a `subruns: true` stage with
# `retry: stage`, sub-run b passes on the first attempt and fails on the
# retry (a fails first and passes second): one message each, a COMPLETED,
# b FAILED.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
cat >"$IT_DIR/work/plan.yaml" <<'YAML'
version: 1
stages:
  - name: suite
    subruns: true
    retry: stage
    retries: 1
    tasks:
      - {name: a, run: "sleep 1; [ -e a.once ] || { touch a.once; exit 1; }"}
      - {name: b, run: "[ -e b.once ] && exit 1; touch b.once"}
YAML
start_run -q --build-name sr-1 --plan "$IT_DIR/work/plan.yaml" --workdir "$IT_DIR/work"
wait_status sr-1 FAILED
wait_watcher_done sr-1
assert_eq "$(receiver_count)" 2 "one message per sub-run"
bodies=$(receiver_bodies)
b_line=$(grep 'b.controller' <<<"$bodies" || true)
a_line=$(grep 'a.controller' <<<"$bodies" || true)
assert_contains "$b_line" "FAILED" "b's message is its final outcome"
assert_contains "$a_line" "COMPLETED" "a's message is its final outcome"
pass
