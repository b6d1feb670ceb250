#!/bin/bash
# systemd-sandbox.sh: a systemd service manager for tests and demos.
#
# On a machine whose PID 1 is not systemd (CI containers, these VMs) it boots
# a throwaway systemd as PID 1 of private PID, mount, UTS and cgroup
# namespaces; on a real host it uses the host's manager with runtime units in
# /run/systemd/system. Callers see the same interface either way:
#
#   systemd-sandbox.sh start DIR UNITSRC...  boot (or attach) and load units;
#                                            prints the manager's pid ("host")
#   systemd-sandbox.sh stop DIR              kill the sandbox / remove the units
#   systemd-sandbox.sh ctl DIR ARGS...       systemctl against that manager
#   systemd-sandbox.sh journal DIR ARGS...   journalctl against its journal
#   systemd-sandbox.sh reload DIR            daemon-reload
#   systemd-sandbox.sh add DIR UNITSRC...    add units/drop-ins later, reload
#   systemd-sandbox.sh exec DIR CMD...       run CMD in the sandbox's mount and
#                                            PID namespaces (plain CMD on a host)
#   systemd-sandbox.sh mode                  print "sandbox" or "host"
#
# UNITSRC is a unit file or a drop-in directory (NAME.d); both are copied under
# their own base name. DIR receives: units/ (the unit path), systemd.pid (pid
# in the root namespace, or "host"), bus-address (sd-bus address of the
# manager's private socket usable from the root namespace), system-bus-address
# (the system bus as seen from the root namespace; absent without one), mode,
# console.log (the manager's own output).
#
# Environment:
#   RUNWARDEN_SANDBOX=force   boot the throwaway manager even on a systemd host
#   RUNWARDEN_SANDBOX=host    insist on the host's manager
#   RUNWARDEN_SANDBOX_TIMEOUT seconds to wait for the manager (default 30)
#   RUNWARDEN_SANDBOX_SHARE   colon-separated paths under /tmp or /var/tmp that
#                             must stay visible inside the sandbox (DIR itself
#                             is added automatically when it lies there)
#   RUNWARDEN_SANDBOX_DBUS=0  boot without a system bus (dbus-daemon), as on a
#                             host that has none; clients then use the
#                             manager's private socket
#
# Why things are the way they are (systemd 252, Debian 12; see also
# /work/shared/TESTING.md):
# - SYSTEMD_UNIT_PATH must never end in ':'; that appends the host's unit
#   directories and boots the host's units (tmpfiles once wiped /tmp).
#   Generators are switched off (SYSTEMD_GENERATOR_PATH=an empty dir).
# - /run, /tmp, /var/tmp, /dev and /var/log/journal are private tmpfs mounts;
#   /proc/sys and /sys are read-only: sysctls are global, a PID 1 may write
#   them, and journald would otherwise write into the host's journal.
# - Each sandbox gets its own cgroup subtree and a cgroup namespace, so two
#   sandboxes running the same unit name never kill each other's processes.
# - / is made shared inside (systemd skips that in containers): per-unit
#   credential mounts (LoadCredential=/SetCredential=) come out empty without.
# - The manager refuses private-bus clients from another PID namespace, so
#   bus-address names a socket proxy that runs inside the sandbox. Use a
#   direct sd-bus connection (sd_bus_new + sd_bus_set_address + sd_bus_start,
#   no Hello); busctl always sends Hello and cannot talk to a private bus.
# - The system bus is dbus-daemon, as on a production host: dbus.socket and
#   dbus.service from the distribution, with a config of our own (the stock
#   system.conf plus higher connection limits; the host's /etc/dbus-1 is never
#   touched). PID 1 attaches to it by itself. dbus-daemon accepts clients from
#   the root namespace (it authenticates by uid), so system-bus-address is the
#   socket itself, seen through /proc/PID/root.
set -euo pipefail

readonly SYSTEMD_BIN=/lib/systemd/systemd
readonly HOST_UNIT_DIR=/run/systemd/system
readonly HOST_LOCK=/run/runwarden-sandbox.lock
readonly TARGETS=(default sysinit basic shutdown multi-user sockets timers paths
  slices network network-online network-pre local-fs local-fs-pre remote-fs
  remote-fs-pre nss-lookup nss-user-lookup time-sync getty emergency rescue
  halt poweroff reboot exit final umount graphical swap cryptsetup)
readonly BUS_PROXY=sandbox-bus-proxy
readonly BUS_PROXY_PATH=/run/sandbox-bus/private
readonly JOURNAL_UNITS=(systemd-journald.service systemd-journald.socket
  systemd-journald-dev-log.socket)
readonly DBUS_SOCKET_PATH=/run/dbus/system_bus_socket
readonly DBUS_STOCK_CONF=/usr/share/dbus-1/system.conf

want_dbus() {
  [[ "${RUNWARDEN_SANDBOX_DBUS:-1}" != 0 && -x /usr/bin/dbus-daemon && -e /lib/systemd/system/dbus.socket &&
     -e "$DBUS_STOCK_CONF" ]]
}

die() { echo "systemd-sandbox: $*" >&2; exit 1; }
note() { echo "systemd-sandbox: $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

host_has_systemd() {
  [[ -d /run/systemd/system && "$(cat /proc/1/comm 2>/dev/null)" == systemd ]]
}

choose_mode() {
  case "${RUNWARDEN_SANDBOX:-auto}" in
    force|sandbox) echo sandbox ;;
    host) host_has_systemd || die "RUNWARDEN_SANDBOX=host but PID 1 is not systemd"; echo host ;;
    auto|"") if host_has_systemd; then echo host; else echo sandbox; fi ;;
    *) die "RUNWARDEN_SANDBOX must be force, host or auto" ;;
  esac
}

abs_dir() {
  [[ -n "${1:-}" ]] || usage
  mkdir -p "$1"
  realpath -e "$1"
}

read_mode() { cat "$1/mode" 2>/dev/null || die "$1 has no running manager (no mode file)"; }
read_pid() { cat "$1/systemd.pid" 2>/dev/null || die "$1 has no systemd.pid"; }

# True while PID exists and is not a zombie.
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# ---------------------------------------------------------------- unit dir
write_target() {
  printf '[Unit]\nDescription=%s\n' "$2" >"$1"
}

populate_units() {
  local units=$1; shift
  local t src base
  for t in "${TARGETS[@]}"; do
    write_target "$units/$t.target" "sandbox $t.target"
  done
  # The shutdown targets must not pull default dependencies back in.
  for t in shutdown halt poweroff reboot exit final umount emergency rescue; do
    printf '[Unit]\nDescription=sandbox %s.target\nDefaultDependencies=no\n' "$t" >"$units/$t.target"
  done
  printf '[Unit]\nDescription=System Slice\nDefaultDependencies=no\nBefore=slices.target\n' \
    >"$units/system.slice"
  local journal=()
  for t in "${JOURNAL_UNITS[@]}"; do
    if [[ -e /lib/systemd/system/$t ]]; then
      ln -sf "/lib/systemd/system/$t" "$units/$t"
      journal+=("$t")
    fi
  done
  # The manager refuses private-bus clients whose pid it cannot see
  # (SO_PEERCRED pid 0 across PID namespaces: "Incoming private connection
  # from unprivileged client, refusing: No data available"), so clients in
  # the root namespace go through a proxy that lives inside the sandbox.
  cat >"$units/$BUS_PROXY.socket" <<EOF
[Unit]
Description=sandbox: the manager's private bus for the root namespace
DefaultDependencies=no
[Socket]
ListenStream=$BUS_PROXY_PATH
SocketMode=0600
DirectoryMode=0700
EOF
  cat >"$units/$BUS_PROXY.service" <<EOF
[Unit]
Description=sandbox: proxy to the manager's private bus
DefaultDependencies=no
[Service]
ExecStart=/lib/systemd/systemd-socket-proxyd /run/systemd/private
EOF
  local bus=()
  if want_dbus; then
    ln -sf /lib/systemd/system/dbus.socket "$units/dbus.socket"
    ln -sf /lib/systemd/system/dbus.service "$units/dbus.service"
    # 256 connections per uid (root included) by default: a controller with
    # hundreds of runs needs more, as a production host's admin would set.
    local conf; conf=$(realpath "$units/..")/dbus-system.conf
    cat >"$conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>$DBUS_STOCK_CONF</include>
  <limit name="max_connections_per_user">4096</limit>
  <limit name="max_completed_connections">8192</limit>
  <limit name="max_incomplete_connections">1024</limit>
</busconfig>
EOF
    mkdir -p "$units/dbus.service.d"
    cat >"$units/dbus.service.d/50-sandbox.conf" <<EOF
[Service]
ExecStart=
ExecStart=/usr/bin/dbus-daemon --config-file=$conf --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only
EOF
    bus=(dbus.socket dbus.service)
  fi
  # Nothing is enabled in the sandbox: the boot target pulls in what the
  # tests need (the journal, the system bus, the bus proxy) and the usual
  # targets in order.
  {
    printf '[Unit]\nDescription=sandbox default.target\n'
    printf 'Wants=%s\n' sysinit.target basic.target multi-user.target "${journal[@]}" "${bus[@]}" "$BUS_PROXY.socket"
    printf 'After=%s\n' sysinit.target basic.target multi-user.target "${journal[@]}" "${bus[@]}" "$BUS_PROXY.socket"
  } >"$units/default.target"
  copy_unitsrc "$units" "$@"
}

copy_unitsrc() {
  local dest=$1; shift
  local src base
  for src in "$@"; do
    [[ -e "$src" ]] || die "no such unit source: $src"
    base=$(basename "$src")
    if [[ -d "$src" ]]; then
      [[ "$base" == *.d ]] || die "a directory unit source must be a drop-in NAME.d: $src"
      mkdir -p "$dest/$base"
      local f
      for f in "$src"/*; do
        [[ -f "$f" ]] || continue
        cp -L "$f" "$dest/$base/"
        echo "$dest/$base/$(basename "$f")"
      done
    else
      cp -L "$src" "$dest/$base"
      echo "$dest/$base"
    fi
  done
}

# ---------------------------------------------------------------- cgroups
# Prints the root-namespace path of a fresh cgroup for the sandbox, or
# nothing when cgroup v2 is not writable here (then the sandbox shares the
# caller's cgroups, as in TESTING.md; parallel sandboxes could then collide).
make_cgroup() {
  local name=$1 mnt cur
  if [[ "$(stat -f -c %T /sys/fs/cgroup)" == cgroup2fs ]]; then
    mnt=/sys/fs/cgroup
  elif [[ -d /sys/fs/cgroup/unified && "$(stat -f -c %T /sys/fs/cgroup/unified)" == cgroup2fs ]]; then
    mnt=/sys/fs/cgroup/unified
  else
    return 0
  fi
  cur=$(sed -n 's/^0:://p' /proc/self/cgroup)
  local cg="$mnt${cur%/}/$name"
  if mkdir "$cg" 2>/dev/null && [[ -w "$cg/cgroup.procs" ]]; then
    echo "$cg"
  else
    rmdir "$cg" 2>/dev/null || true
  fi
}

# Kill whatever is left in the sandbox's cgroup subtree and remove it.
remove_cgroup() {
  local cg=$1 d
  [[ -n "$cg" && -d "$cg" ]] || return 0
  for _ in $(seq 1 100); do
    if [[ -e "$cg/cgroup.kill" ]]; then echo 1 >"$cg/cgroup.kill" 2>/dev/null || true; fi
    # Depth first: children before parents.
    while IFS= read -r d; do rmdir "$d" 2>/dev/null || true; done \
      < <(find "$cg" -mindepth 0 -type d -depth 2>/dev/null)
    [[ -d "$cg" ]] || return 0
    sleep 0.1
  done
  note "could not remove cgroup $cg"
}

# ---------------------------------------------------------------- sandbox
write_boot() {
  local dir=$1 cgns=$2; shift 2
  local shares=("$@")
  {
    echo '#!/bin/bash'
    echo '# Generated by systemd-sandbox.sh: runs as PID 1 of the sandbox namespaces.'
    echo 'set -euo pipefail'
    printf 'DIR=%q\n' "$dir"
    printf 'CGNS=%q\n' "$cgns"
    printf 'SHARES=('
    ((${#shares[@]} == 0)) || printf '%q ' "${shares[@]}"
    printf ')\n'
    cat <<'EOF'
mount --make-rprivate /
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
# Paths under /tmp and /var/tmp the caller needs inside: carry them across.
mkdir -p /run/.sandbox-share
for i in "${!SHARES[@]}"; do
  mkdir -p "/run/.sandbox-share/$i"
  mount --bind "${SHARES[$i]}" "/run/.sandbox-share/$i"
done
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
for i in "${!SHARES[@]}"; do
  mkdir -p "${SHARES[$i]}"
  mount --move "/run/.sandbox-share/$i" "${SHARES[$i]}"
  rmdir "/run/.sandbox-share/$i"
done
rmdir /run/.sandbox-share
# journald would use the host's persistent journal if it saw it.
if [[ -d /var/log/journal ]]; then
  mount -t tmpfs -o mode=2755,nosuid,nodev tmpfs /var/log/journal
fi
# A private /dev: journald's /dev/log symlink and services' /dev/shm stay here.
mount -t tmpfs -o mode=0755,nosuid,size=4m tmpfs /dev
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name maj min <<<"$n"
  mknod -m 0666 "/dev/$name" c "$maj" "$min"
done
mkdir -p /dev/pts /dev/shm /dev/mqueue /dev/hugepages
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null || true
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
ln -s /proc/kcore /dev/core
touch /dev/console
mount --bind "$DIR/console.log" /dev/console
# Global kernel knobs stay the host's: PID 1 would otherwise write sysctls
# such as kernel.core_pattern that are not namespaced.
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
if [[ -e /proc/sysrq-trigger ]]; then
  mount --bind /proc/sysrq-trigger /proc/sysrq-trigger
  mount -o remount,bind,ro /proc/sysrq-trigger
fi
mount -o remount,bind,ro /sys
if [[ "$CGNS" == 1 ]]; then
  # We are at the root of our own cgroup namespace: show systemd only our
  # subtree, as a unified hierarchy.
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
fi
# As on a real host, / is shared inside the sandbox (systemd only does this
# itself outside containers): credentials and other per-unit mounts are set up
# in a child namespace and rely on propagation back into ours. These peer
# groups are new and ours alone; nothing propagates to the host.
mount --make-rshared /
export SYSTEMD_UNIT_PATH="$DIR/units"
case "$SYSTEMD_UNIT_PATH" in *:*) echo "unit path must not contain ':'" >&2; exit 1 ;; esac
export SYSTEMD_GENERATOR_PATH="$DIR/generators"
export SYSTEMD_ENVIRONMENT_GENERATOR_PATH="$DIR/generators"
export SYSTEMD_PROC_CMDLINE=""
export container=runwarden-sandbox
unset NOTIFY_SOCKET LISTEN_FDS LISTEN_PID INVOCATION_ID
exec /lib/systemd/systemd --system --show-status=no
EOF
  } >"$dir/boot.sh"
  chmod 0755 "$dir/boot.sh"
}

sandbox_start() {
  local dir=$1; shift
  if [[ -f "$dir/systemd.pid" ]]; then
    local old; old=$(cat "$dir/systemd.pid")
    [[ "$old" =~ ^[0-9]+$ ]] && alive "$old" && die "a sandbox is already running for $dir (pid $old)"
  fi
  [[ -x "$SYSTEMD_BIN" ]] || die "$SYSTEMD_BIN not found (apt-get install systemd)"
  rm -rf "$dir/units" "$dir/generators"
  mkdir -p "$dir/units" "$dir/generators"
  rm -f "$dir/systemd.pid" "$dir/bus-address" "$dir/system-bus-address" "$dir/unshare.pid" "$dir/cgroup"
  : >"$dir/console.log"
  populate_units "$dir/units" "$@" >/dev/null

  local shares=() p
  case "$dir/" in /tmp/*|/var/tmp/*) shares+=("$dir") ;; esac
  if [[ -n "${RUNWARDEN_SANDBOX_SHARE:-}" ]]; then
    IFS=: read -r -a extra <<<"$RUNWARDEN_SANDBOX_SHARE"
    for p in "${extra[@]}"; do
      [[ -n "$p" ]] || continue
      p=$(realpath -e "$p") || die "RUNWARDEN_SANDBOX_SHARE: no such path $p"
      shares+=("$p")
    done
  fi

  local cg
  local base; base=$(basename "$dir")
  cg=$(make_cgroup "runwarden-sandbox-${base//[^A-Za-z0-9_.-]/_}-$$")
  echo "$cg" >"$dir/cgroup"
  [[ -n "$cg" ]] || note "no writable cgroup v2 here: the sandbox shares the caller's cgroup"
  write_boot "$dir" "$([[ -n "$cg" ]] && echo 1 || echo 0)" "${shares[@]}"

  local ns=(--pid --fork --mount --mount-proc --propagation private --uts)
  [[ -n "$cg" ]] && ns+=(--cgroup)
  (
    # Enter the sandbox's cgroup first: the cgroup namespace is rooted there.
    if [[ -n "$cg" ]]; then echo "$BASHPID" >"$cg/cgroup.procs"; fi
    exec setsid unshare "${ns[@]}" /bin/bash "$dir/boot.sh"
  ) </dev/null >>"$dir/console.log" 2>&1 &
  local upid=$!
  echo "$upid" >"$dir/unshare.pid"
  # Whatever goes wrong from here on, leave nothing running behind.
  trap 'sandbox_stop "$dir" >/dev/null 2>&1 || true' EXIT

  local timeout=${RUNWARDEN_SANDBOX_TIMEOUT:-30}
  local deadline=$((SECONDS + timeout)) pid=""
  while [[ -z "$pid" ]]; do
    pid=$(awk '{print $1}' "/proc/$upid/task/$upid/children" 2>/dev/null) || true
    if [[ -z "$pid" ]]; then
      alive "$upid" || { cat "$dir/console.log" >&2; die "unshare exited before booting systemd"; }
      ((SECONDS < deadline)) || die "timed out waiting for the sandbox's PID 1"
      sleep 0.05
    fi
  done
  echo "$pid" >"$dir/systemd.pid"
  echo sandbox >"$dir/mode"
  echo "unix:path=/proc/$pid/root$BUS_PROXY_PATH" >"$dir/bus-address"
  if want_dbus; then echo "unix:path=/proc/$pid/root$DBUS_SOCKET_PATH" >"$dir/system-bus-address"; fi

  local state=""
  while :; do
    if ! alive "$pid"; then
      cat "$dir/console.log" >&2
      die "the sandbox's systemd (pid $pid) died while booting"
    fi
    if [[ -S "/proc/$pid/root/run/systemd/private" && -S "/proc/$pid/root$BUS_PROXY_PATH" ]]; then
      state=$(nsenter -t "$pid" -m -p systemctl is-system-running 2>/dev/null) || true
      if [[ "$state" == running || "$state" == degraded ]]; then
        # PID 1 is on the system bus once it owns org.freedesktop.systemd1 there.
        want_dbus || break
        nsenter -t "$pid" -m -p busctl --system status org.freedesktop.systemd1 >/dev/null 2>&1 && break
      fi
    fi
    if ((SECONDS >= deadline)); then
      tail -n 50 "$dir/console.log" >&2 || true
      die "systemd (pid $pid) not ready after ${timeout}s (state: ${state:-no answer})"
    fi
    sleep 0.1
  done
  if [[ "$state" == degraded ]]; then
    note "manager is degraded; failed units:"
    nsenter -t "$pid" -m -p systemctl --no-legend --failed >&2 || true
  fi
  trap - EXIT
  echo "$pid"
}

sandbox_stop() {
  local dir=$1 pid upid cg
  pid=$(cat "$dir/systemd.pid" 2>/dev/null || true)
  upid=$(cat "$dir/unshare.pid" 2>/dev/null || true)
  cg=$(cat "$dir/cgroup" 2>/dev/null || true)
  # Only the process we booted: a stale pid file must not kill a recycled pid.
  if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" &&
     tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "^($SYSTEMD_BIN |/bin/bash $dir/boot.sh)"; then
    # PID 1 of the namespace: when it dies the kernel kills the rest of it.
    kill -9 "$pid" 2>/dev/null || true
  else
    pid=""
  fi
  if [[ "$upid" =~ ^[0-9]+$ ]] &&
     tr '\0' ' ' <"/proc/$upid/cmdline" 2>/dev/null | grep -q "^unshare .*$dir/boot.sh"; then
    for _ in $(seq 1 200); do alive "$upid" || break; sleep 0.05; done
    if alive "$upid"; then kill -9 "$upid" 2>/dev/null || true; fi
  fi
  if [[ "$pid" =~ ^[0-9]+$ ]]; then
    for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then die "systemd pid $pid still alive after kill -9"; fi
  fi
  remove_cgroup "$cg"
  rm -f "$dir/systemd.pid" "$dir/unshare.pid" "$dir/bus-address" "$dir/system-bus-address" "$dir/mode" "$dir/cgroup"
}

# ---------------------------------------------------------------- host
# One test at a time may own the host's runtime units: the drop-ins are global.
host_lock() {
  local dir=$1 timeout=${RUNWARDEN_SANDBOX_TIMEOUT:-30} deadline owner
  deadline=$((SECONDS + 10 * timeout))
  until mkdir "$HOST_LOCK" 2>/dev/null; do
    owner=$(cat "$HOST_LOCK/owner" 2>/dev/null || true)
    if [[ -n "$owner" && ! -f "$owner/mode" ]]; then
      note "removing stale host lock of $owner"
      rm -rf "$HOST_LOCK"; continue
    fi
    ((SECONDS < deadline)) || die "host manager busy (lock held by ${owner:-?})"
    sleep 0.5
  done
  echo "$dir" >"$HOST_LOCK/owner"
}

host_start() {
  local dir=$1; shift
  host_lock "$dir"
  mkdir -p "$HOST_UNIT_DIR" "$dir/units"
  populate_units "$dir/units" >/dev/null 2>&1 || true
  copy_unitsrc "$dir/units" "$@" >/dev/null
  copy_unitsrc "$HOST_UNIT_DIR" "$@" >"$dir/installed"
  echo host >"$dir/systemd.pid"
  echo host >"$dir/mode"
  echo "unix:path=/run/systemd/private" >"$dir/bus-address"
  if [[ -S $DBUS_SOCKET_PATH ]]; then echo "unix:path=$DBUS_SOCKET_PATH" >"$dir/system-bus-address"; fi
  systemctl daemon-reload
  echo host
}

host_stop() {
  local dir=$1 f name
  if [[ -f "$dir/installed" ]]; then
    while IFS= read -r f; do
      name=$(basename "$f")
      case "$(basename "$(dirname "$f")")" in
        *.d) name=$(basename "$(dirname "$f")"); name=${name%.d} ;;
      esac
      if [[ "$name" == *@.* ]]; then
        systemctl stop "${name%%@*}@*.${name##*.}" 2>/dev/null || true
        systemctl reset-failed "${name%%@*}@*.${name##*.}" 2>/dev/null || true
      else
        systemctl stop "$name" 2>/dev/null || true
        systemctl reset-failed "$name" 2>/dev/null || true
      fi
    done <"$dir/installed"
    while IFS= read -r f; do
      case "$f" in
        "$HOST_UNIT_DIR"/*)
          rm -f -- "$f"
          # A drop-in directory goes when our files were all it held.
          if [[ "$(dirname "$f")" == *.d ]]; then rmdir -- "$(dirname "$f")" 2>/dev/null || true; fi
          ;;
      esac
    done <"$dir/installed"
    rm -f "$dir/installed"
    systemctl daemon-reload
  fi
  rm -f "$dir/systemd.pid" "$dir/bus-address" "$dir/system-bus-address" "$dir/mode"
  if [[ "$(cat "$HOST_LOCK/owner" 2>/dev/null)" == "$dir" ]]; then rm -rf "$HOST_LOCK"; fi
}

# ---------------------------------------------------------------- dispatch
in_manager() {
  local dir=$1; shift
  local mode pid
  mode=$(read_mode "$dir")
  if [[ "$mode" == host ]]; then
    exec "$@"
  fi
  pid=$(read_pid "$dir")
  alive "$pid" || die "sandbox systemd (pid $pid) is not running"
  SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 exec nsenter -t "$pid" -m -p -u "$@"
}

main() {
  local cmd=${1:-}; shift || true
  case "$cmd" in
    start)
      (($# >= 1)) || usage
      local dir; dir=$(abs_dir "$1"); shift
      if [[ "$(choose_mode)" == host ]]; then host_start "$dir" "$@"; else sandbox_start "$dir" "$@"; fi
      ;;
    stop)
      (($# == 1)) || usage
      local dir; dir=$(abs_dir "$1")
      if [[ "$(cat "$dir/mode" 2>/dev/null)" == host ]]; then host_stop "$dir"; else sandbox_stop "$dir"; fi
      ;;
    ctl)
      (($# >= 1)) || usage
      local dir=$1; shift
      in_manager "$dir" systemctl --no-pager "$@"
      ;;
    journal)
      (($# >= 1)) || usage
      local dir=$1; shift
      in_manager "$dir" journalctl --no-pager "$@"
      ;;
    reload)
      (($# == 1)) || usage
      in_manager "$1" systemctl daemon-reload
      ;;
    exec)
      (($# >= 2)) || usage
      local dir=$1; shift
      in_manager "$dir" "$@"
      ;;
    add)
      (($# >= 2)) || usage
      local dir; dir=$(abs_dir "$1"); shift
      if [[ "$(read_mode "$dir")" == host ]]; then
        copy_unitsrc "$dir/units" "$@" >/dev/null
        copy_unitsrc "$HOST_UNIT_DIR" "$@" >>"$dir/installed"
        systemctl daemon-reload
      else
        copy_unitsrc "$dir/units" "$@" >/dev/null
        in_manager "$dir" systemctl daemon-reload
      fi
      ;;
    mode) choose_mode ;;
    -h|--help|help|"") usage ;;
    *) die "unknown command: $cmd (try --help)" ;;
  esac
}

main "$@"
