#!/bin/bash
# bench/fanout.sh [N...] (default "8 32"): one command on N SSH hosts at once,
# cold connections, runwarden exec vs parallel-ssh vs ansible.
#
#   bench/fanout.sh            # N = 8 and 32
#   REPS=5 bench/fanout.sh 4 8 16 32
#
# For each N: brings up N sshd hosts in network namespaces
# (tests/integration/netns-hosts.sh, prefix rwb, 10.223.0.0/24, guest net
# 10.224.0.0/24; override with RW_NETNS_PREFIX/RW_NETNS_NET/RW_NETNS_GNET),
# then times, wall clock, REPS (3) times each, round robin so that load
# changes hit all three alike (one untimed warm-up round first, WARMUP=0 to
# skip):
#
#   runwarden exec --plan PLAN --on h1,...,hN -- true
#   parallel-ssh -i -H "root@A1 ... root@AN" \
#       -x "-i KEY -o UserKnownHostsFile=KH -o StrictHostKeyChecking=yes" -p N true
#   ansible all -i INVENTORY -m command -a true -f N
#       ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS='-o ControlMaster=no'
#       (no ControlPersist: every ssh is a cold connection, as for the others);
#       inventory: ansible_user=root, ansible_ssh_private_key_file=KEY,
#       ansible_ssh_common_args="-o UserKnownHostsFile=KH",
#       ansible_python_interpreter=/usr/bin/python3 (spares ansible its
#       interpreter discovery round trip)
#
# The floor: sshd's own CPU per connection, measured alone (FLOOR_CONNS, 30,
# sequential `runwarden exec --on h1 -- true`, the CPU of host 1's sshd
# listener and everything it reaped, from /proc/PID/stat, before and after):
# N connections need at least N * that / cores of wall time on this machine,
# whoever the client is. Printed per N with runwarden's ratio to it.
#
# Every invocation must succeed on every host: exit code 0 AND N per-host
# success lines (runwarden "=== hI: ok", pssh "[SUCCESS]", ansible
# "| CHANGED | rc=0"); a failed one is reported and excluded (FAIL in the
# table). Prints the median wall time of each tool and the ratios. Not a
# test: nothing is asserted (targets noted: runwarden <= 0.5x parallel-ssh and
# <= 0.1x ansible at 32 hosts).
#
# Scratch in /var/lib/runwarden-bench/fanout-XXXXXX (removed at the end,
# KEEP=1 keeps it); the hosts are torn down on exit. runwarden is copied from
# build/ first (others relink it while benchmarks run).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
RW_BUILD_BIN=${RW_BUILD_BIN:-$("$SRC/scripts/build-dir.sh")/runwarden}
NETNS=$SRC/tests/integration/netns-hosts.sh
REPS=${REPS:-3}
WARMUP=${WARMUP:-1}
export RW_NETNS_PREFIX=${RW_NETNS_PREFIX:-rwb}
export RW_NETNS_NET=${RW_NETNS_NET:-10.223.0}
export RW_NETNS_GNET=${RW_NETNS_GNET:-10.224.0}
if [[ $# -gt 0 ]]; then SIZES=("$@"); else SIZES=(8 32); fi

for tool in parallel-ssh ansible; do
  command -v "$tool" >/dev/null || { echo "fanout: $tool missing (apt-get install -y pssh ansible)" >&2; exit 2; }
done

mkdir -p /var/lib/runwarden-bench
W=$(mktemp -d /var/lib/runwarden-bench/fanout-XXXXXX)
H=$W/hosts
cleanup() {
  local rc=$?
  set +e
  if [[ -f $H/created ]]; then "$NETNS" down "$H" >/dev/null 2>&1 || echo "fanout: teardown of $H failed" >&2; fi
  if [[ "${KEEP:-0}" == 1 ]]; then echo "# kept $W"; else rm -rf -- "$W"; fi
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$RW_BUILD_BIN" "$W/runwarden"
RW=$W/runwarden
export ANSIBLE_HOME=$W/ansible-home ANSIBLE_LOCAL_TEMP=$W/ansible-tmp ANSIBLE_NOCOLOR=1
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS='-o ControlMaster=no'
printf '[defaults]\n' >"$W/ansible.cfg"   # no ansible.cfg from the cwd or ~
export ANSIBLE_CONFIG=$W/ansible.cfg ANSIBLE_DEPRECATION_WARNINGS=False

echo "# runwarden: $RW_BUILD_BIN ($(stat -c %y "$RW_BUILD_BIN" | cut -d. -f1), sha1 $(sha1sum "$RW" | cut -c1-12))"
echo "# parallel-ssh $(dpkg-query -W -f '${Version}' pssh), $(ansible --version 2>/dev/null | sed -n 1p), $(ssh -V 2>&1)"
echo "# $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); REPS=$REPS, scratch $W"

now_ns() { date +%s%N; }

# run_timed LABEL N OUTFILE CMD...: prints "seconds" (or FAIL) after checking
# exit code and per-host success lines.
declare -A PATTERN=([runwarden]='^=== h[0-9]+: ok$' [pssh]='\[SUCCESS\]' [ansible]='\| CHANGED \| rc=0')
run_timed() {
  local label=$1 n=$2 out=$3 t0 t1 rc ok
  shift 3
  t0=$(now_ns)
  set +e
  "$@" >"$out" 2>&1 </dev/null
  rc=$?
  set -e
  t1=$(now_ns)
  ok=$(grep -Ec "${PATTERN[$label]}" "$out" || true)
  if [[ $rc -ne 0 || $ok -ne $n ]]; then
    echo "fanout: $label on $n hosts FAILED: exit code $rc, $ok/$n hosts succeeded; output:" >&2
    sed 's/^/    /' "$out" | head -40 >&2
    echo FAIL
    return 0
  fi
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

# sshd_cpu_ticks PIDFILE: utime+stime+cutime+cstime of that sshd (the
# listener reaps every connection's processes, so their CPU lands in it).
sshd_cpu_ticks() {
  local f
  read -r -a f <"/proc/$(<"$1")/stat"
  echo $((f[13] + f[14] + f[15] + f[16]))
}
FLOOR_CONNS=${FLOOR_CONNS:-30}

median() { printf '%s\n' "$@" | grep -v FAIL | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "FAIL"; else print v[int((NR + 1) / 2)] }'; }

RESULTS=()
for n in "${SIZES[@]}"; do
  echo "# bringing up $n hosts"
  "$NETNS" up "$H" "$n" >"$W/up.log" 2>&1 || { cat "$W/up.log" >&2; exit 1; }
  KEY=$H/id_ed25519 KH=$H/known_hosts
  plan=$W/plan-$n.yaml inv=$W/inventory-$n.ini
  names=() addrs=()
  {
    echo "version: 1"
    echo "hosts:"
    for ((i = 1; i <= n; i++)); do
      echo "  h$i: {address: $RW_NETNS_NET.$((10 + i)), identity: $KEY, known_hosts: $KH}"
    done
    echo "stages:"
    echo "  - name: s"
    echo "    tasks: [{name: t, on: h1, run: 'true'}]"
  } >"$plan"
  {
    echo "[all]"
    for ((i = 1; i <= n; i++)); do echo "$RW_NETNS_NET.$((10 + i))"; done
    echo "[all:vars]"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$KEY"
    echo "ansible_ssh_common_args=\"-o UserKnownHostsFile=$KH\""
    echo "ansible_python_interpreter=/usr/bin/python3"
  } >"$inv"
  for ((i = 1; i <= n; i++)); do names+=("h$i"); addrs+=("root@$RW_NETNS_NET.$((10 + i))"); done
  on=$(IFS=,; echo "${names[*]}")
  rw_cmd=("$RW" exec --plan "$plan" --on "$on" -- true)
  pssh_cmd=(parallel-ssh -i -H "${addrs[*]}" -x "-i $KEY -o UserKnownHostsFile=$KH -o StrictHostKeyChecking=yes" -p "$n" true)
  ans_cmd=(ansible all -i "$inv" -m command -a true -f "$n")
  if [[ $n == "${SIZES[0]}" ]]; then
    echo "# commands (N=$n):"
    echo "#   ${rw_cmd[*]}"
    printf '#   parallel-ssh -i -H "%s" -x "%s" -p %s true\n' "${addrs[*]}" "-i $KEY -o UserKnownHostsFile=$KH -o StrictHostKeyChecking=yes" "$n"
    echo "#   ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS='-o ControlMaster=no' ${ans_cmd[*]}"
  fi
  cd "$W"
  if [[ $WARMUP == 1 ]]; then
    run_timed runwarden "$n" "$W/out" "${rw_cmd[@]}" >/dev/null
    run_timed pssh "$n" "$W/out" "${pssh_cmd[@]}" >/dev/null
    run_timed ansible "$n" "$W/out" "${ans_cmd[@]}" >/dev/null
  fi
  rw_t=() ps_t=() an_t=()
  for ((r = 1; r <= REPS; r++)); do
    rw_t+=("$(run_timed runwarden "$n" "$W/out-rw-$n-$r" "${rw_cmd[@]}")")
    ps_t+=("$(run_timed pssh "$n" "$W/out-pssh-$n-$r" "${pssh_cmd[@]}")")
    an_t+=("$(run_timed ansible "$n" "$W/out-ansible-$n-$r" "${ans_cmd[@]}")")
    echo "#   N=$n rep $r: runwarden ${rw_t[-1]} s, parallel-ssh ${ps_t[-1]} s, ansible ${an_t[-1]} s (load $(cut -d' ' -f1 /proc/loadavg))"
  done
  pidfile=$H/${RW_NETNS_PREFIX}h1/sshd.pid
  c0=$(sshd_cpu_ticks "$pidfile")
  for ((r = 1; r <= FLOOR_CONNS; r++)); do
    "$RW" exec --plan "$plan" --on h1 -- true >/dev/null 2>&1 || { echo "fanout: floor connection $r failed" >&2; exit 1; }
  done
  c1=$(sshd_cpu_ticks "$pidfile")
  floor_ms=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v k="$FLOOR_CONNS" 'BEGIN { printf "%.2f", t * 1000 / hz / k }')
  echo "#   N=$n floor: sshd $floor_ms ms CPU per connection alone ($FLOOR_CONNS sequential); N x that / $(nproc) cores = $(awk -v f="$floor_ms" -v n="$n" -v c="$(nproc)" 'BEGIN { printf "%.3f", f * n / c / 1000 }') s"
  cd - >/dev/null
  RESULTS+=("$n $(median "${rw_t[@]}") $(median "${ps_t[@]}") $(median "${an_t[@]}") $floor_ms")
done

echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%5s %13s %15s %10s %14s %14s %9s %10s\n' N runwarden_s parallel-ssh_s ansible_s rw/pssh rw/ansible floor_s rw/floor
for line in "${RESULTS[@]}"; do
  read -r n a b c f <<<"$line"
  awk -v n="$n" -v a="$a" -v b="$b" -v c="$c" -v f="$f" -v cores="$(nproc)" 'BEGIN {
    r1 = (a == "FAIL" || b == "FAIL") ? "n/a" : sprintf("%.3f", a / b)
    r2 = (a == "FAIL" || c == "FAIL") ? "n/a" : sprintf("%.3f", a / c)
    fl = f * n / cores / 1000
    r3 = (a == "FAIL" || fl <= 0) ? "n/a" : sprintf("%.2f", a / fl)
    printf "%5s %13s %15s %10s %14s %14s %9.3f %10s\n", n, a, b, c, r1, r2, fl, r3 }'
done
echo "# medians of $REPS cold runs each; targets at 32 hosts: rw/pssh <= 0.5, rw/ansible <= 0.1"
