#!/bin/bash
# 100 start-runs launched at once, all runs alive together: every one
# starts, every run posts exactly once, and the watcher of a run that is
# idle meanwhile is not woken once by the others. (Watchers subscribed on
# the manager's private socket received every other run's unit signals: the
# manager's queue backed up, start-runs took a minute and more, 26 of 100
# timed out, and an idle watcher woke ~28000 times during such a storm.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

N=${MANY_STARTS_N:-100}
# The observer: its run waits, its watcher idles through the storm.
start_run -q --build-name many-obs --runner-command 'while [ ! -e "$RUNWARDEN_RUN_DIR/go" ]; do sleep 1; done'
wait_for -m "observer running" unit_active runner@many-obs.service
sleep 1
obs=$(unit_pid watcher@many-obs.service)
wakeups() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$1/status"; }
obs0=$(wakeups "$obs")

cat >"$IT_DIR/start_one.sh" <<'SH'
#!/bin/bash
b=$(printf 'many-%03d' "$1")
rc=0
# Each command waits for the gate: all N runs (2N units) are up at once.
"$RW_BUILD/start-run" -q --build-name "$b" \
  --runner-command "until [ -e \"\$RUNWARDEN_STATE_DIR/gate\" ]; do sleep 0.5; done; exit $(($1 % 2))" \
  >"$IT_DIR/start-$b.out" 2>&1 || rc=$?
echo "$b $rc" >>"$IT_DIR/starts.txt"
SH
chmod +x "$IT_DIR/start_one.sh"
: >"$IT_DIR/starts.txt"
seq 0 $((N - 1)) | xargs -P "$N" -n 1 "$IT_DIR/start_one.sh"
touch "$RUNWARDEN_STATE_DIR/gate"

failed=$(awk '$2 != 0' "$IT_DIR/starts.txt" | wc -l)
if ((failed > 0)); then
  first=$(awk '$2 != 0 {print $1; exit}' "$IT_DIR/starts.txt")
  fail "$failed of $N start-runs failed; $first: $(head -c 400 "$IT_DIR/start-$first.out")"
fi
assert_eq "$(wc -l <"$IT_DIR/starts.txt")" "$N" "every start-run returned"

# Every run ends, COMPLETED or FAILED as its command said, and posts once.
ended() {
  local done=0 b
  for b in $(awk '{print $1}' "$IT_DIR/starts.txt"); do
    case "$(run_status "$b")" in COMPLETED|FAILED) done=$((done + 1)) ;; esac
  done
  ((done == N))
}
wait_for -t 240 -m "all $N runs ended" ended
wait_for -t 120 -m "$N posts (have $(receiver_count))" count_is "$N"
for i in 0 1; do
  b=$(printf 'many-%03d' $i)
  assert_eq "$(run_status "$b")" "$([[ $i == 0 ]] && echo COMPLETED || echo FAILED)" "$b ended as its command said"
done
sleep 2
assert_eq "$(receiver_count)" "$N" "one message per run, none twice"
assert_eq "$(unit_pid watcher@many-obs.service)" "$obs" "the observer's watcher is the same process"
obs_woken=$(($(wakeups "$obs") - obs0))
((obs_woken <= 5)) || fail "the idle observer's watcher woke $obs_woken times while $N other runs started and ended"
touch "$RUNWARDEN_STATE_DIR/runs/many-obs/go"
wait_status many-obs COMPLETED
wait_for -m "$((N + 1)) posts" count_is $((N + 1))
# Each message names its run (perhaps several times); count messages per run.
per_run=$(receiver_bodies | "$IT_PYTHON" -c '
import collections, re, sys
n = collections.Counter()
for line in sys.stdin:
    n.update(set(re.findall(r"many-[0-9]{3}", line)))
print(" ".join("%s:%d" % (b, c) for b, c in sorted(n.items()) if c != 1), len(n))')
assert_eq "$per_run" " $N" "each of the $N runs named in exactly one message"
pass
