#!/bin/bash
# bench/engine_overhead.sh: what the engine costs per local task beyond the
# fork/exec of the task's shell, and how often it rewrites state.json.
#
#   bench/engine_overhead.sh
#   PARS="8" STAGES=10 PER_STAGE=100 bench/engine_overhead.sh
#   STRACE=1 bench/engine_overhead.sh      # plus one run under strace -c
#
# A plan of STAGES (10) stages of PER_STAGE (100) tasks `run: 'true'` on the
# controller, for each stage parallelism in PARS (default "1 8 0"; 0 =
# unbounded, no `parallel:` key), run by `runwarden runner --build-name X`
# from a prepared run directory (no systemd, no SSH):
#
#   $STATE/runs/X/state.json = {"schema":1,"build":"X","status":"PENDING",
#                               "plan_file":"plan.yaml","workdir":W}
#   RUNWARDEN_STATE_DIR=$STATE runwarden runner --build-name X
#
# References, same machine, same moment (T = STAGES*PER_STAGE commands):
#   seq:    for i in 1..T: /bin/sh -c true             (bash loop, sequential)
#   xargs:  seq T | xargs -P P -n 1 /bin/sh -c true    (same parallelism)
#   spawn:  python3 os.posix_spawn("/bin/sh", ["sh", "-c", "true"]) + waitpid, T
#           times, from P threads (P = 1: a plain loop): the way runwarden
#           starts a task (posix_spawn = vfork+exec; bash and xargs fork, which
#           costs about twice as much on these VMs)
# engine overhead per task = (runner wall - reference wall) / T, against the
# references of the same parallelism (seq or xargs -P, and spawn; unbounded is
# compared with P = PER_STAGE). Target < 1 ms.
#
# state.json writes: an inotify watcher (python, ctypes) on the run directory
# counts IN_MOVED_TO of state.json (every write is tmp + fsync + rename)
# during the runner's life; printed as a count, per task and per second, with
# the final size of state.json (each write rewrites all of it). Every task
# must end COMPLETED with exit code 0 (checked in state.json).
# Scratch in /var/lib/runwarden-bench/engine-XXXXXX (KEEP=1 keeps it).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
RW_BUILD_BIN=${RW_BUILD_BIN:-$("$SRC/scripts/build-dir.sh")/runwarden}
STAGES=${STAGES:-10}
PER_STAGE=${PER_STAGE:-100}
PARS=${PARS:-1 8 0}
STRACE=${STRACE:-0}
T=$((STAGES * PER_STAGE))

mkdir -p /var/lib/runwarden-bench
W=$(mktemp -d /var/lib/runwarden-bench/engine-XXXXXX)
WATCH_PID=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n $WATCH_PID ]]; then kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null; fi
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
echo "# $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $STAGES stages x $PER_STAGE tasks = $T; scratch $W"

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }

WATCH_PY=$(cat <<'PY'
import ctypes, ctypes.util, os, signal, struct, sys, time
d, out, ready = sys.argv[1], sys.argv[2], sys.argv[3]
IN_MOVED_TO, IN_Q_OVERFLOW = 0x80, 0x4000
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
fd = libc.inotify_init1(os.O_CLOEXEC)
if fd < 0 or libc.inotify_add_watch(fd, d.encode(), IN_MOVED_TO) < 0:
    sys.exit("inotify: %s" % os.strerror(ctypes.get_errno()))
stamps, overflow = [], 0
def stop(*_):
    with open(out, "w") as f:
        f.write("%d %d %s %s\n" % (len(stamps), overflow, stamps[0] if stamps else 0, stamps[-1] if stamps else 0))
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
open(ready, "w").close()
while True:
    buf = os.read(fd, 1 << 20)
    now = time.time()
    i = 0
    while i < len(buf):
        wd, mask, cookie, ln = struct.unpack_from("iIII", buf, i)
        name = buf[i + 16:i + 16 + ln].rstrip(b"\0")
        i += 16 + ln
        if mask & IN_Q_OVERFLOW:
            overflow += 1
        elif name == b"state.json":
            stamps.append(now)
PY
)

make_run() {  # BUILD PAR
  local b=$1 par=$2 s i d=$STATE/runs/$1
  mkdir -p "$d"
  {
    echo "version: 1"
    echo "stages:"
    for ((s = 1; s <= STAGES; s++)); do
      echo "  - name: s$s"
      [[ $par -gt 0 ]] && echo "    parallel: $par"
      echo "    tasks:"
      for ((i = 1; i <= PER_STAGE; i++)); do printf "      - {name: t%04d, run: 'true'}\n" "$i"; done
    done
  } >"$d/plan.yaml"
  printf '{"schema":1,"build":"%s","status":"PENDING","plan_file":"plan.yaml","workdir":"%s"}\n' "$b" "$W/work" >"$d/state.json"
}

# References first (and again at the end: the machine is noisy).
ref_seq() {
  local t0
  t0=$(now_ns)
  for ((i = 0; i < T; i++)); do /bin/sh -c true; done
  ms_since "$t0"
}
ref_xargs() {  # P
  local t0
  t0=$(now_ns)
  seq "$T" | xargs -P "$1" -n 1 /bin/sh -c true
  ms_since "$t0"
}
SPAWN_PY=$(cat <<'PY'
import concurrent.futures as cf, os, sys, time
n, p = int(sys.argv[1]), int(sys.argv[2])
def one(_):
    pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "true"], os.environ)
    if os.waitpid(pid, 0)[1] != 0:
        sys.exit("/bin/sh -c true failed")
t0 = time.perf_counter()
if p == 1:
    for i in range(n):
        one(i)
else:
    with cf.ThreadPoolExecutor(p) as ex:
        list(ex.map(one, range(n)))
print(int((time.perf_counter() - t0) * 1000))
PY
)
ref_spawn() { python3 -c "$SPAWN_PY" "$T" "$1"; }
declare -A REF
ref_all() {
  local p v k
  v=$(ref_seq); REF[seq]=$(( ${REF[seq]:-0} + v )); echo "#   seq loop /bin/sh -c true x$T: $v ms"
  v=$(ref_spawn 1); REF[s1]=$(( ${REF[s1]:-0} + v )); echo "#   posix_spawn /bin/sh -c true x$T, 1 thread: $v ms"
  for p in $PARS; do
    k=$p; [[ $p == 0 ]] && k=$PER_STAGE
    [[ $k == 1 ]] && continue
    v=$(ref_xargs "$k"); REF[x$k]=$(( ${REF[x$k]:-0} + v )); echo "#   seq $T | xargs -P $k -n 1 /bin/sh -c true: $v ms"
    v=$(ref_spawn "$k"); REF[s$k]=$(( ${REF[s$k]:-0} + v )); echo "#   posix_spawn /bin/sh -c true x$T, $k threads: $v ms"
  done
}
echo "# references (before):"
ref_all

echo "# command: RUNWARDEN_STATE_DIR=$STATE $RW runner --build-name eo-P   (plan: $STATE/runs/eo-P/plan.yaml)"
ROWS=()
for p in $PARS; do
  b=eo-$p
  make_run "$b" "$p"
  rm -f "$W/ready" "$W/watch.out"
  python3 -c "$WATCH_PY" "$STATE/runs/$b" "$W/watch.out" "$W/ready" &
  WATCH_PID=$!
  for ((i = 0; i < 100; i++)); do [[ -e $W/ready ]] && break; sleep 0.05; done
  t0=$(now_ns)
  set +e
  RUNWARDEN_STATE_DIR=$STATE /usr/bin/time -f '%e %U %S' -o "$W/time-$b" timeout 900 "$RW" runner --build-name "$b" >"$W/$b.out" 2>&1 </dev/null
  rc=$?
  set -e
  wall=$(ms_since "$t0")
  sleep 0.2 # the last events reach the watcher
  kill "$WATCH_PID"; wait "$WATCH_PID" 2>/dev/null || true; WATCH_PID=""
  if [[ $rc -ne 0 ]]; then
    echo "engine_overhead: runner $b exited $rc (124: killed after 900 s); last lines:" >&2
    tail -20 "$W/$b.out" >&2
    exit 1
  fi
  read -r writes overflow first last <"$W/watch.out"
  read -r _ cpu_u cpu_s <"$W/time-$b"
  size=$(stat -c %s "$STATE/runs/$b/state.json")
  task_ms=$(python3 - "$STATE/runs/$b/state.json" "$T" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ts = [t for st in s["stages"] for t in st["tasks"]]
bad = [st["name"] + "/" + t["name"] for st in s["stages"] for t in st["tasks"] if t["status"] != "COMPLETED" or t.get("exit_code") != 0]
if s["status"] != "COMPLETED" or len(ts) != int(sys.argv[2]) or bad:
    sys.exit("engine_overhead: run %s, %d tasks, not completed: %s" % (s["status"], len(ts), bad[:10]))
print("%.2f" % (sum(t["ended_at_ms"] - t["started_at_ms"] for t in ts) / len(ts)))
PY
)
  ROWS+=("$p $wall $cpu_u $cpu_s $writes $overflow $first $last $size $task_ms")
  echo "#   parallel=$p: wall $wall ms, runner CPU user ${cpu_u}s sys ${cpu_s}s, $writes state.json writes, state.json $size bytes, mean task $task_ms ms"
done

echo "# references (after):"
ref_all

echo
printf '%-10s %8s %9s %8s %9s %8s %9s %8s %9s %8s %10s %11s %10s\n' parallel rw_ms ref ref_ms ovh/task spawn_ms ovh/task rw_cpu/t writes wr/task writes/s state_bytes MB_written
for row in "${ROWS[@]}"; do
  read -r p wall cu cs writes overflow first last size task_ms <<<"$row"
  k=$p; [[ $p == 0 ]] && k=$PER_STAGE
  if [[ $k == 1 ]]; then ref=seq; refms=$((REF[seq] / 2)); else ref="xargs-P$k"; refms=$((REF[x$k] / 2)); fi
  spms=$((REF[s$k] / 2))
  awk -v p="$([[ $p == 0 ]] && echo unbounded || echo "$p")" -v wall="$wall" -v ref="$ref" -v refms="$refms" -v t="$T" \
      -v spms="$spms" -v cu="$cu" -v cs="$cs" -v w="$writes" -v ov="$overflow" -v size="$size" 'BEGIN {
    span = wall / 1000.0
    printf "%-10s %8d %9s %8d %9.3f %8d %9.3f %8.2f %9d %8.2f %10.0f %11d %10.1f%s\n", p, wall, ref, refms,
      (wall - refms) / t, spms, (wall - spms) / t, (cu + cs) * 1000.0 / t, w, w / t, w / span, size, w * size / 1e6,
      ov ? "  (inotify queue overflowed: count is a lower bound)" : "" }'
done
echo "# ref_ms, spawn_ms: means of the before/after reference runs (shell loop or xargs; python posix_spawn, same parallelism);"
echo "# ovh/task = (rw_ms - ref_ms) / $T and (rw_ms - spawn_ms) / $T, in ms (target < 1 ms);"
echo "# rw_cpu/t: runner user+sys CPU ms per task (children included); writes: state.json renames seen by inotify;"
echo "# writes/s over the runner's wall time; MB_written ~ writes x final state.json size (upper bound)."

if [[ $STRACE == 1 ]]; then
  p=$(echo "$PARS" | awk '{print $NF}')
  b=eo-strace
  make_run "$b" "$p"
  echo "# strace -f -c -e trace=rename,renameat,renameat2,fsync,fdatasync,write on the runner (parallel=$p; timings distorted):"
  RUNWARDEN_STATE_DIR=$STATE strace -f -c -e trace=rename,renameat,renameat2,fsync,fdatasync,write -o "$W/strace.txt" \
    "$RW" runner --build-name "$b" >"$W/$b.out" 2>&1 </dev/null || echo "engine_overhead: runner under strace exited $?" >&2
  sed 's/^/#   /' "$W/strace.txt"
fi
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
