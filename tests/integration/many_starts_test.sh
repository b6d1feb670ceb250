#!/bin/bash
# 100 start-runs launched at once: every one starts, every run posts exactly
# once. (Before the watchers left the bus, each watcher received every other
# run's unit signals over the manager's private socket; the manager's queue
# backed up and 26 of 100 start-runs timed out waiting for watcher@.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

N=${MANY_STARTS_N:-100}
cat >"$IT_DIR/start_one.sh" <<'SH'
#!/bin/bash
b=$(printf 'many-%03d' "$1")
rc=0
"$RW_BUILD/start-run" -q --build-name "$b" --runner-command "sleep 2; exit $(($1 % 2))" >"$IT_DIR/start-$b.out" 2>&1 || rc=$?
echo "$b $rc" >>"$IT_DIR/starts.txt"
SH
chmod +x "$IT_DIR/start_one.sh"
: >"$IT_DIR/starts.txt"
seq 0 $((N - 1)) | xargs -P "$N" -n 1 "$IT_DIR/start_one.sh"

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
# Each message names its run (perhaps several times); count messages per run.
per_run=$(receiver_bodies | "$IT_PYTHON" -c '
import collections, re, sys
n = collections.Counter()
for line in sys.stdin:
    n.update(set(re.findall(r"many-[0-9]{3}", line)))
print(" ".join("%s:%d" % (b, c) for b, c in sorted(n.items()) if c != 1), len(n))')
assert_eq "$per_run" " $N" "each of the $N runs named in exactly one message"
pass
