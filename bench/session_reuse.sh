#!/bin/bash
# bench/session_reuse.sh [TASKS=100]: per-task latency of remote commands on
# one reused SSH session.
#
#   bench/session_reuse.sh
#   RUNS=3 bench/session_reuse.sh 200
#
# One sshd host in a network namespace (tests/integration/netns-hosts.sh,
# prefix rwb, 10.223.0.0/24; RW_NETNS_* override). A plan with one stage,
# `parallel: 1`, TASKS tasks `run: 'true'` on h1, run RUNS (3) times by
# `runwarden runner --build-name X` from a prepared run directory, without
# systemd:
#
#   $STATE/runs/X/state.json = {"schema":1,"build":"X","status":"PENDING",
#                               "plan_file":"plan.yaml","workdir":W}
#   RUNWARDEN_STATE_DIR=$STATE runwarden runner --build-name X
#
# Figures per run, from state.json (every task must be COMPLETED, exit 0):
#   per-task latency  = mean (and p50/p90/max) of ended_at_ms - started_at_ms
#                       (task 1, which opens the connection, shown apart)
#   gap               = next task's started_at_ms - previous ended_at_ms
#   wall / TASKS      = the runner process's wall time (start to exit) / TASKS
# Target: < 10 ms per task.
#
# Reference figures in the same run, to place the number:
#   - the same plan with `on: controller` (local executor, no SSH): the
#     engine's own per-task cost at this plan size, state.json writes included;
#   - `bash -c true` spawned TASKS times locally (what sshd's child does at
#     least: the login shell), and the same with runwarden's remote wrapper
#     (captured from a real task: /proc/PID/cmdline of the command's $$ or $PPID),
#     i.e. the remote-side cost of the process-group/watcher wrapper;
#   - OpenSSH multiplexing: one `ssh -M` master, then TASKS sequential
#     `ssh -S CTL root@h1 true` (a new channel per command on one connection;
#     each also starts an ssh client process).
# Scratch in /var/lib/runwarden-bench/session-XXXXXX (KEEP=1 keeps it).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
RW_BUILD_BIN=${RW_BUILD_BIN:-$("$SRC/scripts/build-dir.sh")/runwarden}
NETNS=$SRC/tests/integration/netns-hosts.sh
TASKS=${1:-100}
RUNS=${RUNS:-3}
export RW_NETNS_PREFIX=${RW_NETNS_PREFIX:-rwb}
export RW_NETNS_NET=${RW_NETNS_NET:-10.223.0}
export RW_NETNS_GNET=${RW_NETNS_GNET:-10.224.0}
ADDR=$RW_NETNS_NET.11

mkdir -p /var/lib/runwarden-bench
W=$(mktemp -d /var/lib/runwarden-bench/session-XXXXXX)
H=$W/hosts
MASTER_PID=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n $MASTER_PID ]]; then
    ssh -o ControlPath="$W/cm.sock" -O exit "root@$ADDR" >/dev/null 2>&1
    kill "$MASTER_PID" 2>/dev/null
  fi
  if [[ -f $H/created ]]; then "$NETNS" down "$H" >/dev/null 2>&1 || echo "session_reuse: teardown of $H failed" >&2; fi
  if [[ "${KEEP:-0}" == 1 ]]; then echo "# kept $W"; else rm -rf -- "$W"; fi
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$RW_BUILD_BIN" "$W/runwarden"
RW=$W/runwarden
STATE=$W/state
mkdir -p "$STATE/runs" "$W/work"
echo "# runwarden: $RW_BUILD_BIN ($(stat -c %y "$RW_BUILD_BIN" | cut -d. -f1), sha1 $(sha1sum "$RW" | cut -c1-12))"
echo "# $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); TASKS=$TASKS RUNS=$RUNS, scratch $W"

"$NETNS" up "$H" 1 >"$W/up.log" 2>&1 || { cat "$W/up.log" >&2; exit 1; }
KEY=$H/id_ed25519 KH=$H/known_hosts

now_ns() { date +%s%N; }

# make_run BUILD TASKS COMMAND [TARGET=h1]: a run directory with a one-stage plan.
make_run() {
  local b=$1 n=$2 cmd=$3 on=${4:-h1} i d=$STATE/runs/$1
  mkdir -p "$d"
  {
    echo "version: 1"
    echo "hosts:"
    echo "  h1: {address: $ADDR, identity: $KEY, known_hosts: $KH}"
    echo "stages:"
    echo "  - name: s"
    echo "    parallel: 1"
    echo "    tasks:"
    for ((i = 1; i <= n; i++)); do printf "      - {name: t%04d, on: %s, run: '%s'}\n" "$i" "$on" "$cmd"; done
  } >"$d/plan.yaml"
  printf '{"schema":1,"build":"%s","status":"PENDING","plan_file":"plan.yaml","workdir":"%s"}\n' "$b" "$W/work" >"$d/state.json"
}

# run_runner BUILD: runs it, prints wall ms; fails loudly on a bad exit.
run_runner() {
  local b=$1 t0 t1 rc
  t0=$(now_ns)
  set +e
  RUNWARDEN_STATE_DIR=$STATE timeout 600 "$RW" runner --build-name "$b" >"$W/$b.out" 2>&1 </dev/null
  rc=$?
  set -e
  t1=$(now_ns)
  if [[ $rc -ne 0 ]]; then
    echo "session_reuse: runner $b exited $rc (124: killed after 600 s); last lines:" >&2
    tail -20 "$W/$b.out" >&2
    exit 1
  fi
  echo $(((t1 - t0) / 1000000))
}

# 1. Probe run: captures the wrapper runwarden sends (and warms the caches).
make_run probe 1 'for p in $$ $PPID; do base64 -w0 /proc/$p/cmdline; echo; done > '"$W"'/wrapper.b64'
run_runner probe >/dev/null
[[ -s $W/wrapper.b64 ]] || { echo "session_reuse: probe did not capture the wrapper" >&2; exit 1; }

# 2. The measured runs.
SUMMARY_PY=$(cat <<'PY'
import json, sys
path, wall, n, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = json.load(open(path))
ts = [t for st in s["stages"] for t in st["tasks"]]
bad = [t["name"] for t in ts if t["status"] != "COMPLETED" or t.get("exit_code") != 0]
if s["status"] != "COMPLETED" or len(ts) != n or bad:
    sys.exit("session_reuse: %s: run %s, %d tasks, not completed: %s" % (b, s["status"], len(ts), bad[:10]))
ts.sort(key=lambda t: t["started_at_ms"])
d = [t["ended_at_ms"] - t["started_at_ms"] for t in ts]
gaps = [ts[i + 1]["started_at_ms"] - ts[i]["ended_at_ms"] for i in range(len(ts) - 1)]
rest = sorted(d[1:]) or d
pct = lambda xs, p: xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]
print("%-6s %8s %10.1f %8d %8d %8d %8d %8.1f %10.1f" % (
    b, s["status"], sum(d) / len(d), pct(rest, 50), pct(rest, 90), max(d), d[0],
    sum(gaps) / max(1, len(gaps)), wall / n))
PY
)
echo "# command: RUNWARDEN_STATE_DIR=$STATE $RW runner --build-name sr-N   (plan: $STATE/runs/sr-1/plan.yaml)"
printf '%-6s %8s %10s %8s %8s %8s %8s %8s %10s\n' run status mean_ms p50_ms p90_ms max_ms first_ms gap_ms wall/task
for ((r = 1; r <= RUNS; r++)); do
  b=sr-$r
  make_run "$b" "$TASKS" true
  wall=$(run_runner "$b")
  python3 -c "$SUMMARY_PY" "$STATE/runs/$b/state.json" "$wall" "$TASKS" "$b"
done
echo "# mean_ms: mean of ended-started over all tasks (incl. task 1); p50/p90 over tasks 2..N;"
echo "# first_ms: task 1 (connects); gap_ms: mean idle between a task's end and the next start"

# 3. References.
# The same plan on the controller (local executor, no SSH): what the engine
# itself costs per task at this plan size (state.json writes included).
make_run local-1 "$TASKS" true controller
wall=$(run_runner local-1)
echo "# reference, the same $TASKS tasks on the controller (on: controller), same runner:"
python3 -c "$SUMMARY_PY" "$STATE/runs/local-1/state.json" "$wall" "$TASKS" local-1 | sed 's/^/#   /'
python3 - "$W/wrapper.b64" "$TASKS" <<'PY'
import base64, subprocess, sys, time
# The wrapper is the process whose argv is [/bin/sh, -c, 'eval "$N"', ..., CMD]:
# the command's $PPID (a wrapper that runs it as a child process) or its $$
# (one that runs it in a subshell). sshd runs the login shell with the line
# `exec /bin/sh -c 'eval "$N"' ... 'CMD'`; CMD becomes `true`.
cands = [base64.b64decode(l).split(b"\0")[:-1] for l in open(sys.argv[1]).read().split()]
argv = next(a for a in cands if len(a) > 3 and a[1] == b"-c" and a[2].startswith(b"eval"))
n = int(sys.argv[2])
def q(b):
    return b"'" + b.replace(b"'", b"'\\''") + b"'"
line = b"exec " + b" ".join(q(a) for a in argv[:-1]) + b" " + q(b"true")
def bench(cmd):
    t0 = time.perf_counter()
    for _ in range(n):
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # as sshd: the shell leads its session
        rc = p.wait()
        p.stdin.close()
        if rc != 0:
            sys.exit("reference command failed: %d" % rc)
    return (time.perf_counter() - t0) * 1000.0 / n
plain = bench([b"/bin/bash", b"-c", b"true"])
wrapped = bench([b"/bin/bash", b"-c", line])
print("# reference, local spawn (no ssh), %d sequential each:" % n)
print("#   bash -c true                          %6.2f ms per command" % plain)
print("#   bash -c <runwarden wrapper around true> %6.2f ms per command (wrapper adds %.2f ms)" % (wrapped, wrapped - plain))
PY

O=(-i "$KEY" -o "UserKnownHostsFile=$KH" -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlPath="$W/cm.sock")
ssh "${O[@]}" -o ControlMaster=yes -o ControlPersist=no -N "root@$ADDR" </dev/null >/dev/null 2>&1 &
MASTER_PID=$!
for ((i = 0; i < 100; i++)); do [[ -S $W/cm.sock ]] && break; sleep 0.1; done
[[ -S $W/cm.sock ]] || { echo "session_reuse: ssh master did not come up" >&2; exit 1; }
ssh "${O[@]}" "root@$ADDR" true </dev/null # warm
t0=$(now_ns)
for ((i = 0; i < TASKS; i++)); do ssh "${O[@]}" "root@$ADDR" true </dev/null || { echo "session_reuse: ssh -S failed" >&2; exit 1; }; done
t1=$(now_ns)
t2=$(now_ns)
for ((i = 0; i < TASKS; i++)); do ssh -V 2>/dev/null; done
t3=$(now_ns)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v n="$TASKS" 'BEGIN {
  printf "# reference, OpenSSH ControlMaster: %d sequential `ssh -S CTL root@h1 true`: %.2f ms per command (`ssh -V` alone: %.2f ms)\n", n, (b - a) / 1e6 / n, (d - c) / 1e6 / n }'
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
