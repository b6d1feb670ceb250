#!/bin/bash
# bench/run_cpu.sh [N=2000] [plan|loop]: where the CPU goes during one run
# under runner@ (a throwaway systemd: journald, sd_notify, the watcher and
# its post included). `plan`: one stage of N no-op tasks at parallel 1;
# `loop`: one task running the same N commands in a shell loop. A last task
# (`touch marker; sleep 4`) keeps both units up while the CPU time of every
# cgroup of the sandbox (cpu.stat: runner@ with its tasks, watcher@,
# journald, the service manager in init.scope) is read at its start, so
# units that stop are counted too. Prints ms per cgroup and the wall time
# from start-run to the marker.
#
#   bench/run_cpu.sh 2000 plan; bench/run_cpu.sh 2000 loop
#   RW_BUILD=<build> bench/run_cpu.sh        # another build's binaries
#
# Not a test: figures are printed, nothing is asserted.
set -euo pipefail
N=${1:-2000}; KIND=${2:-plan}
source "$(dirname "$0")/bench_lib.sh"
bench_setup
W=$IT_DIR/work; mkdir -p "$W"
{ echo "version: 1"; echo "stages:"; echo "  - name: s1"; echo "    parallel: 1"; echo "    tasks:"
  for ((i = 1; i <= N; i++)); do printf "      - {name: t%04d, run: 'true'}\n" "$i"; done
  echo "  - name: s2"; echo "    tasks:"; echo "      - {name: end, run: 'touch $W/marker; sleep 4'}"; } >"$W/plan.yaml"
LOOP="i=0; while [ \$i -lt $N ]; do /bin/sh -c true; i=\$((i+1)); done; touch $W/marker; sleep 4"
CG=$(cat "$IT_SANDBOX/cgroup" 2>/dev/null || true)
[[ -n "$CG" ]] || fail "the sandbox has no cgroup of its own here (cgroup v2 not writable): nothing to read"
# "path usage user system" (usec) for every cgroup under the sandbox's
snap() {
  find "$CG" -name cpu.stat | while read -r f; do
    echo "${f#"$CG"} $(awk '/^usage_usec/ {u=$2} /^user_usec/ {s=$2} /^system_usec/ {y=$2} END {print u, s, y}' "$f")"
  done
}
head -1 /proc/stat >"$IT_DIR/cpu0"
snap >"$IT_DIR/s0"
t0=$(date +%s%N)
if [[ $KIND == plan ]]; then
  start_run -q --build-name p1 --plan "$W/plan.yaml" --workdir "$W"
else
  start_run -q --build-name p1 --runner-command "$LOOP" --workdir "$W"
fi
wait_for -t 600 -m "the last task to start" test -e "$W/marker"
t1=$(date +%s%N)
head -1 /proc/stat >"$IT_DIR/cpu1"
snap >"$IT_DIR/s1"
bench_note "$N tasks ($KIND): start-run to the last task $(((t1 - t0) / 1000000)) ms"
"$IT_PYTHON" - "$IT_DIR" <<'PY'
import sys
d=sys.argv[1]
def rd(f):
    r={}
    for l in open(f):
        p=l.split()
        if len(p)==4: r[p[0]]=tuple(map(int,p[1:]))
    return r
a=rd(d+"/s0"); b=rd(d+"/s1")
for k in sorted(b, key=lambda k: -(b[k][0]-a.get(k,(0,0,0))[0])):
    x=b[k]; y=a.get(k,(0,0,0))
    du=x[0]-y[0]
    if du > 5000:  # cgroups that used 5 ms or more
        print("%8.1f ms CPU  user %8.1f sys %8.1f  %s" % (du / 1000, (x[1] - y[1]) / 1000, (x[2] - y[2]) / 1000, k.rsplit("/cpu.stat", 1)[0] or "/"))
c0=list(map(int,open(d+"/cpu0").read().split()[1:])); c1=list(map(int,open(d+"/cpu1").read().split()[1:]))
dd=[(y-x)*10 for x,y in zip(c0,c1)]
print("machine ms: user %d sys %d idle %d iowait %d softirq %d" % (dd[0], dd[2], dd[3], dd[4], dd[6]))
PY
