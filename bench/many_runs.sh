#!/bin/bash
# bench/many_runs.sh [N=200]: N concurrent runs on one throwaway systemd.
#
#   bench/many_runs.sh 200
#   PAR=8 RAISE_LIMITS=1 bench/many_runs.sh 200
#   GATE=0 bench/many_runs.sh 200      # staggered: runs end while others start
#
# start-run for each run, PAR (8) at a time; run i's command is
# `sleep 5; exit $((i % 2))`, so half COMPLETED and half FAILED, and every run
# must post exactly one message. With GATE=1 (the default) each command first
# waits on a FIFO in the state dir, so all N runs (2N units) are up at once;
# the gate opens when every start-run has returned. Prints start-run wall
# time (p50, p99), start-run failures and their messages, units up at the
# peak, delivered/expected posts and duplicates, the runs' final states,
# watcher/runner unit failures and restarts, and the limits that matter for
# 2N units (inotify instances per user, tasks, file descriptors, the
# receiver's listen backlog). One long run (mr-obs) is started first and its
# idle watcher's wakeups and CPU time are counted during the storm: a
# watcher holds no subscription to the manager (a pidfd on its runner and
# the run directory), so other units' changes should not wake it.
#
# With the gate closed, LOADED (10) more start-runs, one at a time, time a
# start on a manager that already holds the N runs (they post too).
#
# RAISE_LIMITS=1 raises fs.inotify.max_user_instances (a host-wide sysctl,
# shared by every uid-0 process of this machine, sandboxes included; restored
# on exit) to 4*N+256 first, so a watcher is not refused an inotify instance.
# Not a test: nothing is asserted, figures are printed.
source "$(dirname "$0")/bench_lib.sh"

N=${1:-200}
PAR=${PAR:-8}
RAISE_LIMITS=${RAISE_LIMITS:-0}
SLEEP=${SLEEP:-5}
GATE=${GATE:-1}
END_TIMEOUT=${END_TIMEOUT:-300}
PREFIX=mr

inotify_limit_path=/proc/sys/fs/inotify/max_user_instances
inotify_old=$(cat "$inotify_limit_path")
inotify_set=""
restore_inotify() {
  # Only our own change: someone may have set it meanwhile (scripts/install-deps.sh does).
  if [[ -n "$inotify_set" && "$(cat "$inotify_limit_path")" == "$inotify_set" ]]; then
    echo "$inotify_old" >"$inotify_limit_path" && bench_note "restored fs.inotify.max_user_instances=$inotify_old"
  fi
}
# Instances held by uid 0 right now, all namespaces (fdinfo of anon inodes).
inotify_in_use() {
  { find /proc/[0-9]*/fd -lname 'anon_inode:inotify' 2>/dev/null || true; } | wc -l
}
listen_overflows() {
  awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 } else { for (i = 1; i <= NF; i++) if (k[i] == "ListenOverflows") print $i } }' /proc/net/netstat
}

bench_setup
trap 'rc=$?; restore_inotify; (exit $rc); it_teardown' EXIT
if ((RAISE_LIMITS)); then
  want=$((4 * N + 256))
  if ((inotify_old < want)); then
    echo "$want" >"$inotify_limit_path"
    inotify_set=$want
    bench_note "raised fs.inotify.max_user_instances $inotify_old -> $want (restored on exit)"
  fi
fi

sdpid=$(cat "$IT_SANDBOX/systemd.pid")
bench_note "many_runs: N=$N PAR=$PAR SLEEP=$SLEEP GATE=$GATE; sandbox systemd pid $sdpid; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
bench_note "limits: fs.inotify.max_user_instances=$(cat "$inotify_limit_path") (in use by uid 0 now: $(inotify_in_use));" \
  "DefaultTasksMax=$(ctl show -p DefaultTasksMax --value);" \
  "manager RLIMIT_NOFILE=$(awk '/Max open files/ {print $4 "/" $5}' "/proc/$sdpid/limits");" \
  "DefaultLimitNOFILE=$(ctl show -p DefaultLimitNOFILE --value) (soft $(ctl show -p DefaultLimitNOFILESoft --value));" \
  "pid_max=$(cat /proc/sys/kernel/pid_max); receiver listen backlog $(cat /proc/sys/net/core/somaxconn) (net.core.somaxconn)"

# The observer: an idle watcher while the others start and end.
"$RW_BUILD/start-run" -q --build-name "$PREFIX-obs" --runner-command "sleep 86400"
wait_for unit_active "runner@$PREFIX-obs.service"
obs=$(unit_pid "watcher@$PREFIX-obs.service")
cpu_ms() { awk '{print ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }
read -r _ ov0 on0 < <(bench_proc_status "$obs")
ocpu0=$(cpu_ms "$obs")
# The manager's and the bus's CPU across the storm (per run, it should not
# grow with N): PID 1 of the sandbox and its dbus-daemon.
busd=$(ps -o pid= --ppid "$sdpid" -o comm= | awk '$2 == "dbus-daemon" {print $1; exit}')
mcpu0=$(cpu_ms "$sdpid")
bcpu0=$([[ -n $busd ]] && cpu_ms "$busd" || echo 0)
overflow0=$(listen_overflows)

# The gate: commands block reading a FIFO until it is opened for writing and
# closed (EOF), or until the go file exists; no CPU while they wait.
GATE_PRE=""
if ((GATE)); then
  mkfifo "$RUNWARDEN_STATE_DIR/gate.fifo"
  # shellcheck disable=SC2089,SC2090 # a literal shell fragment for the run's command
  GATE_PRE='until [ -e "$RUNWARDEN_STATE_DIR/gate.go" ]; do timeout 30 cat "$RUNWARDEN_STATE_DIR/gate.fifo" >/dev/null; done; '
fi
# shellcheck disable=SC2090
export GATE_PRE

# One start-run: "build exit_code wall_ms" into starts.txt, its output kept.
cat >"$IT_DIR/start_one.sh" <<'EOF'
#!/bin/bash
i=$1; b=$(printf '%s-%04d' "$PREFIX" "$i")
t0=$(date +%s%N)
"$RW_BUILD/start-run" -q --build-name "$b" --runner-command "${GATE_PRE}sleep $SLEEP; exit $((i % 2))" >"$IT_DIR/start/$b.out" 2>&1
rc=$?
t1=$(date +%s%N)
echo "$b $rc $(((t1 - t0) / 1000000))" >>"$IT_DIR/starts.txt"
EOF
chmod +x "$IT_DIR/start_one.sh"
mkdir -p "$IT_DIR/start"
: >"$IT_DIR/starts.txt"
export PREFIX SLEEP
t0=$(date +%s%N)
seq 0 $((N - 1)) | xargs -P "$PAR" -n 1 "$IT_DIR/start_one.sh"
t1=$(date +%s%N)
started=$(awk '$2 == 0' "$IT_DIR/starts.txt" | wc -l)
bench_note "start phase: $N start-runs in $(((t1 - t0) / 1000000)) ms; $started succeeded"
units_now=$(ctl list-units --all --no-legend --plain 'runner@*' 'watcher@*' | wc -l)
active_now=$(ctl list-units --state=active --no-legend --plain 'runner@*' 'watcher@*' | wc -l)
# journald stores each stdout stream's socket in the manager (its fd store):
# a unit logging through a stream adds one, which the manager polls.
fdstore_now=$(ctl show -p NFileDescriptorStore --value systemd-journald.service 2>/dev/null || echo "?")
bench_note "units loaded right after the start phase: $units_now (active: $active_now, of $((2 * N + 2)) wanted incl. mr-obs); inotify instances in use by uid 0: $(inotify_in_use); manager tasks: $(ls /proc/"$sdpid"/task | wc -l), manager fds: $(ls /proc/"$sdpid"/fd | wc -l) (journald's fd store: ${fdstore_now:-?})"
# A start-run on a manager that holds all N runs (2N units) up, one at a
# time (LOADED=10 of them; 0: none): the cost of one more run, not of the storm.
LOADED=${LOADED:-10}
if ((GATE && LOADED > 0)); then
  for ((i = 0; i < LOADED; i++)); do
    ta=$(date +%s%N)
    rc=0
    "$RW_BUILD/start-run" -q --build-name "$PREFIX-$((9000 + i))" --runner-command "sleep $SLEEP" >/dev/null 2>&1 || rc=$?
    echo "$PREFIX-$((9000 + i)) $rc" >>"$IT_DIR/loaded_starts.txt"
    echo $((($(date +%s%N) - ta) / 1000000))
  done | bench_stats "start-run with $N runs up (sequential)" ms | tee "$IT_DIR/loaded.txt"
fi
if ((GATE)); then
  touch "$RUNWARDEN_STATE_DIR/gate.go"
  exec 9<>"$RUNWARDEN_STATE_DIR/gate.fifo" # a writer: every blocked reader's open returns (O_RDWR never blocks)
  sleep 1
  exec 9>&- # ... and reads EOF
  tg=$(date +%s%N)
  bench_note "gate opened $(((tg - t1) / 1000000)) ms after the start phase"
fi

# Wait until every started run posted, or every run's units are gone and
# the count has not moved for 5 s (or the timeout); then a bit for dups.
deadline=$((SECONDS + END_TIMEOUT))
last=-1 still=0
loaded_ok=0
[[ -f "$IT_DIR/loaded_starts.txt" ]] && loaded_ok=$(awk '$2 == 0' "$IT_DIR/loaded_starts.txt" | wc -l)
while ((SECONDS < deadline)); do
  c=$(receiver_count)
  ((c >= started + loaded_ok)) && break
  if ((c == last)); then still=$((still + 1)); else still=0; last=$c; fi
  if ((still >= 5)); then
    left=$(ctl list-units --state=active,activating,deactivating,reloading --no-legend --plain "watcher@$PREFIX-0*" "runner@$PREFIX-0*" | wc -l)
    ((left == 0)) && break
  fi
  sleep 1
done
t_all=$(date +%s%N)
bench_note "all posts in (or given up) $(((t_all - ${tg:-$t1}) / 1000000)) ms after the $( ((GATE)) && echo gate opened || echo start phase ended)"
sleep 3
t2=$(date +%s%N)
obs_alive=no obs_wakes="?" ocpu="?"
if kill -0 "$obs" 2>/dev/null; then
  obs_alive=yes
  read -r _ ov1 on1 < <(bench_proc_status "$obs")
  obs_wakes=$(((ov1 - ov0) + (on1 - on0)))
  ocpu=$(awk -v a="$(cpu_ms "$obs")" -v b="$ocpu0" 'BEGIN {printf "%d", a - b}')
fi
overflow1=$(listen_overflows)
mcpu=$(awk -v a="$(cpu_ms "$sdpid")" -v b="$mcpu0" 'BEGIN {printf "%d", a - b}')
bcpu=$([[ -n $busd ]] && awk -v a="$(cpu_ms "$busd")" -v b="$bcpu0" 'BEGIN {printf "%d", a - b}' || echo "?")

echo "== start-run"
awk '{print $3}' "$IT_DIR/starts.txt" | bench_stats "start-run wall time (all)" ms
awk '$2 == 0 {print $3}' "$IT_DIR/starts.txt" | bench_stats "start-run wall time (succeeded)" ms
echo "start-run exit codes: $(awk '{print $2}' "$IT_DIR/starts.txt" | sort -n | uniq -c | awk '{printf "%s x%s  ", $2, $1}')"
if ((started < N)); then
  echo "first start-run errors:"
  awk '$2 != 0 {print $1}' "$IT_DIR/starts.txt" | sed -n 1,3p | while read -r b; do
    echo "  $b: $(tr '\n' ' ' <"$IT_DIR/start/$b.out" | cut -c1-400)"
  done
  echo "distinct start-run error messages:"
  awk '$2 != 0 {print $1}' "$IT_DIR/starts.txt" | while read -r b; do head -1 "$IT_DIR/start/$b.out"; done |
    sed -E "s/$PREFIX-[0-9]{4}/BUILD/g" | sort | uniq -c | sort -rn | sed -n 1,5p | sed 's/^/  /'
fi

echo "== messages"
bench_post_counts "$PREFIX" >"$IT_DIR/post_counts.txt"
touch "$IT_DIR/loaded_starts.txt"
"$IT_PYTHON" - "$IT_DIR/starts.txt" "$IT_DIR/post_counts.txt" "$RUNWARDEN_STATE_DIR/runs" "$IT_DIR/loaded_starts.txt" <<'PY'
import collections, json, sys
starts = [l.split() for l in open(sys.argv[1])]
ok = [b for b, rc, _ in starts if rc == "0"]
ok += [b for b, rc in (l.split() for l in open(sys.argv[4])) if rc == "0"]  # the LOADED ones
counts = dict(l.split() for l in open(sys.argv[2]))
counts = {k: int(v) for k, v in counts.items()}
delivered = sum(1 for b in ok if counts.get(b, 0) >= 1)
dups = {b: counts[b] for b in ok if counts.get(b, 0) > 1}
missing = [b for b in ok if counts.get(b, 0) == 0]
stray = {b: c for b, c in counts.items() if b not in ok and b != "%s-obs" % b.split("-")[0]}
print("delivered/expected = %d/%d (runs whose start-run succeeded; each must post once)" % (delivered, len(ok)))
print("duplicates: %d builds %s" % (len(dups), dict(list(dups.items())[:10]) if dups else ""))
print("missing: %d %s" % (len(missing), missing[:10] if missing else ""))
if stray:
    print("posts for runs whose start-run failed: %d %s" % (len(stray), dict(list(stray.items())[:10])))
states = collections.Counter()
for b, rc, _ in starts:
    try:
        st = json.load(open("%s/%s/state.json" % (sys.argv[3], b)))
        states[(rc == "0", st.get("status"))] += 1
    except Exception:
        states[(rc == "0", "no state.json")] += 1
for (started, status), n in sorted(states.items(), key=str):
    print("final state %-14s x%-4d (%s)" % (status, n, "started" if started else "start-run failed"))
# Notify latency of this storm: receiver's first post - state's ended_at.
lat = []
names = {b for b in ok}
first = {}
import re as _re
for line in open(sys.argv[2].replace("post_counts.txt", "receiver.jsonl"), encoding="utf-8"):
    r = json.loads(line)
    for n in set(_re.findall(r"[A-Za-z0-9._-]+", json.dumps(r["body"]))) & names:
        first[n] = min(first.get(n, r["received_at"]), r["received_at"])
ends = []
for b in first:
    try:
        st = json.load(open("%s/%s/state.json" % (sys.argv[3], b)))
    except Exception:
        continue
    if st.get("ended_at_ms"):
        lat.append(first[b] * 1000 - st["ended_at_ms"]); ends.append(st["ended_at_ms"])
if lat:
    import math
    lat.sort()
    pct = lambda q: lat[max(1, math.ceil(q / 100.0 * len(lat))) - 1]
    print("notify latency (ended_at -> received) in this storm: n=%d p50=%.0f p90=%.0f p99=%.0f max=%.0f ms; the runs ended within %.1f s" % (
        len(lat), pct(50), pct(90), pct(99), lat[-1], (max(ends) - min(ends)) / 1000.0))
for b in missing[:3]:
    try:
        st = json.load(open("%s/%s/state.json" % (sys.argv[3], b)))
        print("  missing %s: status=%s decided_by=%s reason=%s" % (b, st.get("status"), st.get("decided_by"), st.get("reason")))
    except Exception as e:
        print("  missing %s: %s" % (b, e))
PY

echo "== units and load"
echo "observer watcher ($PREFIX-obs, its run idle throughout): $obs_wakes wakeups and $ocpu ms CPU over $(((t2 - t0) / 1000000000)) s while $N runs started and ended (alive: $obs_alive)"
# Per run: every run started in the window, the LOADED ones included.
runs=$((started + $(awk '$2 == 0' "$IT_DIR/loaded_starts.txt" | wc -l)))
((runs > 0)) || runs=1
echo "service manager CPU: $mcpu ms ($(awk -v a="$mcpu" -v n="$runs" 'BEGIN {printf "%.1f", a / n}') ms per run, $runs runs); system bus (dbus-daemon${busd:+ pid $busd}): $bcpu ms ($( [[ $bcpu == "?" ]] && echo "?" || awk -v a="$bcpu" -v n="$runs" 'BEGIN {printf "%.1f", a / n}') ms per run), start of the first start-run to the end of the last post"
echo "receiver TCP ListenOverflows during the storm: $((overflow1 - overflow0)) (backlog: net.core.somaxconn; an overflow costs the client a 1 s SYN retransmit, not a message)"
failed_units=$(ctl list-units --state=failed --no-legend --plain 'runner@*' 'watcher@*' | awk '{print $1}')
echo "failed units: $(echo "$failed_units" | grep -c . || true) $(echo "$failed_units" | sed -n 1,5p | tr '\n' ' ')"
jr=$(journal --no-hostname -o cat 2>/dev/null || true)
echo "journal: 'Scheduled restart job' x$(grep -c 'Scheduled restart job' <<<"$jr" || true)," \
  "'Failed with result' x$(grep -c 'Failed with result' <<<"$jr" || true)," \
  "'Start request repeated too quickly' x$(grep -c 'Start request repeated too quickly' <<<"$jr" || true)," \
  "'inotify' x$(grep -ci 'inotify' <<<"$jr" || true)," \
  "'Too many open files' x$(grep -c 'Too many open files' <<<"$jr" || true)," \
  "'TERMINATED' x$(grep -c 'TERMINATED' <<<"$jr" || true)," \
  "'webhook attempt' x$(grep -c 'webhook attempt' <<<"$jr" || true)," \
  "'attempt 2/' x$(grep -c 'attempt 2/' <<<"$jr" || true)," \
  "'Connection timed out' x$(grep -c 'Connection timed out' <<<"$jr" || true)"
echo "journal lines with error/failed (first 8, build names folded):"
journal --no-hostname -o short-precise -p warning 2>/dev/null | grep -v -- "-- " |
  sed -E "s/$PREFIX-[0-9]{4}/BUILD/g; s/^[A-Z][a-z]{2} [0-9]+ [0-9:.]+ //; s/\[[0-9]+\]//" |
  sort | uniq -c | sort -rn | sed -n 1,8p | sed 's/^/  /'

bench_keep_journal
