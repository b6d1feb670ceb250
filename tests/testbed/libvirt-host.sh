# shellcheck shell=bash
# tests/testbed/libvirt-host.sh: sourced by testbed tests. A private libvirt
# "host" on this machine: libvirtd and virtlogd in their own mount namespace
# with private /run/libvirt, /var/lib/libvirt, /var/log/libvirt,
# /var/cache/libvirt and /etc/libvirt (directories under the test's own
# directory), qemu under TCG.
#
#   libvirt_host_start DIR [IMAGES]
#                            starts it; sets LIBVIRT_HOST_URI. With IMAGES
#                            (a directory), it also gets a network
#                            namespace of its own and its own DIR/images
#                            mounted over IMAGES: a second machine.
#                            With LIBVIRT_HOST_OVS=1, Open vSwitch too
#                            (ovsdb-server, ovs-vswitchd) with a private
#                            /run/openvswitch: libvirtd plugs guests into
#                            its bridges; the userspace datapath where the
#                            kernel has no openvswitch module.
#   libvirt_host_stop DIR    destroys every guest and network it runs,
#                            stops qemu, dnsmasq, libvirtd and virtlogd by pid
#   libvirt_host_virsh ARGS  virsh against it (for checks in tests only)
#
# Run the test in a network namespace of its own (it_netns in lib.sh):
# bridges, dnsmasq, iptables rules and guests then live and die there.
# Why the settings (see TESTING.md): /dev/kvm is hidden behind a mode-000
# file, or every define waits ~1 min for libvirt's KVM probe; then qemu's
# private /dev namespace must be off (namespaces = []); qemu stays in the
# test's cgroup (cgroup_controllers = []). qemu runs as libvirt-qemu, as on
# a real host (for root, a mode-000 /dev/kvm still opens, the KVM checks
# disagree and every define probes again): what it opens must be readable
# by that user, so DIR and the paths above it get o+x.

LIBVIRT_HOST_URI=""

libvirt_host_start() {
  local dir=$1 images=${2:-} net=()
  [[ -n $images ]] && net=(--net)
  # lib/dnsmasq: the package ships it (libvirt writes each network's MAC list
  # there, DHCP or not).
  mkdir -p "$dir"/{run,lib/dnsmasq,log/qemu,cache,etc/qemu/networks,images}
  local p=$dir
  while [[ $p != / ]]; do chmod o+x "$p"; p=$(dirname "$p"); done
  cat >"$dir/etc/libvirtd.conf" <<'CONF'
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
CONF
  cat >"$dir/etc/qemu.conf" <<'CONF'
namespaces = [ ]
cgroup_controllers = [ ]
CONF
  : >"$dir/etc/virtlogd.conf"
  : >"$dir/nokvm"
  chmod 000 "$dir/nokvm"
  mkdir -p /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /etc/libvirt
  local ovs=${LIBVIRT_HOST_OVS:-}
  [[ -n $ovs ]] && mkdir -p "$dir/ovs" /run/openvswitch
  # Not on the test manager's system bus (DBUS_SYSTEM_BUS_ADDRESS, for the
  # CLI): there libvirtd would register each guest with a systemd-machined
  # the sandbox does not run, and every guest start would fail.
  env -u DBUS_SYSTEM_BUS_ADDRESS unshare "${net[@]}" --mount --propagation private bash -c '
    set -e
    d=$1
    [ -n "$2" ] && mount --bind "$d/images" "$2"
    mount --bind "$d/run" /run/libvirt
    mount --bind "$d/lib" /var/lib/libvirt
    mount --bind "$d/log" /var/log/libvirt
    mount --bind "$d/cache" /var/cache/libvirt
    mount --bind "$d/etc" /etc/libvirt
    [ -e /dev/kvm ] && mount --bind "$d/nokvm" /dev/kvm
    if [ -n "$3" ]; then
      mount --bind "$d/ovs" /run/openvswitch
      ovsdb-tool create /run/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
      ovsdb-server /run/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
        --pidfile=/run/openvswitch/ovsdb-server.pid --detach --log-file="$d/ovsdb-server.log"
      ovs-vsctl --no-wait init
      ovs-vswitchd --pidfile=/run/openvswitch/ovs-vswitchd.pid --detach --log-file="$d/ovs-vswitchd.log"
    fi
    virtlogd -d -p "$d/run/virtlogd.pid" -f /etc/libvirt/virtlogd.conf
    exec libvirtd -p "$d/run/libvirtd.pid" -f /etc/libvirt/libvirtd.conf
  ' _ "$dir" "$images" "$ovs" >"$dir/libvirtd.out" 2>&1 &
  echo $! >"$dir/libvirtd.launch"
  LIBVIRT_HOST_URI="qemu+unix:///system?socket=$dir/run/libvirt-sock"
  local i
  for ((i = 0; i < 300; i++)); do
    if [[ -S $dir/run/libvirt-sock ]] && virsh -q -c "$LIBVIRT_HOST_URI" version >/dev/null 2>&1; then
      export LIBVIRT_HOST_URI
      return 0
    fi
    sleep 0.1
  done
  echo "libvirt host in $dir did not start:" >&2
  cat "$dir/libvirtd.out" >&2
  return 1
}

libvirt_host_virsh() { virsh -q -c "$LIBVIRT_HOST_URI" "$@"; }

# Ends a process we started, by pid, waiting up to 5 s before SIGKILL.
libvirt__end_pid() {
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

libvirt_host_stop() {
  local dir=$1 name f
  local LIBVIRT_HOST_URI="qemu+unix:///system?socket=$dir/run/libvirt-sock"
  if [[ -S $dir/run/libvirt-sock ]]; then
    for name in $(libvirt_host_virsh list --all --name 2>/dev/null); do
      libvirt_host_virsh destroy "$name" >/dev/null 2>&1 || true
    done
    for name in $(libvirt_host_virsh net-list --all --name 2>/dev/null); do
      libvirt_host_virsh net-destroy "$name" >/dev/null 2>&1 || true
    done
  fi
  # Whatever is left that this host started: qemu, dnsmasq (pid files in
  # its private run and lib directories), then the daemons.
  for f in "$dir"/run/qemu/*.pid "$dir"/run/network/*.pid "$dir"/lib/dnsmasq/*.pid; do
    [[ -s $f ]] && libvirt__end_pid "$(cat "$f")"
  done
  [[ -s $dir/run/libvirtd.pid ]] && libvirt__end_pid "$(cat "$dir/run/libvirtd.pid")"
  [[ -s $dir/libvirtd.launch ]] && libvirt__end_pid "$(cat "$dir/libvirtd.launch")"
  [[ -s $dir/run/virtlogd.pid ]] && libvirt__end_pid "$(cat "$dir/run/virtlogd.pid")"
  for f in "$dir"/ovs/ovs-vswitchd.pid "$dir"/ovs/ovsdb-server.pid; do
    [[ -s $f ]] && libvirt__end_pid "$(cat "$f")"
  done
  return 0
}

# ---------------------------------------------------------------- for tests
# A testbed integration test starts with
#   source "$(dirname "$0")/../testbed/libvirt-host.sh"
#   testbed_enter_netns "$0" "$@"      # builds the guest kit, re-runs the test in a network namespace
#   source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/runwarden.sh"
#   testbed_it_setup [--no-host]        # it_setup, a libvirt host (not with --no-host), a key pair, a base image
# and then has TB_KIT (vmlinuz, initrd.img), TB_KEY (private key; .pub
# beside it), TB_BASE (a 64 MiB qcow2) and TB_IMAGES (the pools' directory).

testbed_enter_netns() {
  [[ -n ${RW_IT_NETNS:-} ]] && { ip link set lo up; return 0; }
  local script=$1 kit
  shift
  # Built (or found in its cache) first: the namespace has no route to the
  # package mirror.
  kit=$("$(dirname "${BASH_SOURCE[0]}")/guest-kit.sh") || { echo "FAIL $(basename "$script" .sh): guest kit: $kit"; exit 1; }
  exec unshare --net env RW_IT_NETNS=1 RW_GUEST_KIT="$kit" bash "$script" "$@"
}

testbed_it_setup() {
  it_setup
  TB_KIT=$RW_GUEST_KIT
  if [[ ${1:-} != --no-host ]]; then
    libvirt_host_start "$IT_DIR/lvh" || fail "libvirt host did not start"
    IT_EXTRA_TEARDOWN+=("libvirt_host_stop '$IT_DIR/lvh'")
  fi
  TB_KEY=$IT_DIR/id_ed25519
  ssh-keygen -q -t ed25519 -N '' -C testbed -f "$TB_KEY"
  TB_BASE=$IT_DIR/base.qcow2
  qemu-img create -q -f qcow2 "$TB_BASE" 64M
  TB_IMAGES=$IT_DIR/images
  mkdir -p "$TB_IMAGES"
}

# The start of a test plan's testbed: section: this libvirt host, the base
# image, network "lab" on SUBNET, and EXTRA lines.
testbed__head() {
  cat <<YAML
version: 1
testbed:
  libvirt: "$LIBVIRT_HOST_URI"
  images_dir: $TB_IMAGES
${2}  images:
    base: {path: $TB_BASE, format: qcow2}
  networks:
    lab: {subnet: $1}
YAML
}

# testbed_assert_empty BUILD: nothing a testbed test made is left on the
# host: no guest, network, pool, volume file, bridge, or qemu of BUILD.
testbed_assert_empty() {
  assert_eq "$(libvirt_host_virsh list --all --name | grep -c . || true)" 0 "no guest left"
  assert_eq "$(libvirt_host_virsh net-list --all --name | grep -c . || true)" 0 "no network left"
  assert_eq "$(libvirt_host_virsh pool-list --all --name | grep -c . || true)" 0 "no pool left"
  assert_eq "$(ls "$TB_IMAGES" | grep -c . || true)" 0 "no volume file left"
  assert_eq "$(ip -o link show type bridge | grep -c rwb || true)" 0 "no bridge left"
  no_process_matching "guest=rw-$1-" || fail "a qemu process is left: $(pgrep -af "guest=rw-$1-")"
}

# testbed_cancel_while_up BUILD N: once N guests run, cancel-run BUILD; the
# run must end CANCELLED, its runner stop, its teardown run, and nothing it
# made be left.
testbed_cancel_while_up() {
  local build=$1 n=$2
  wait_for -t 120 -m "guests running" eval '[[ $(libvirt_host_virsh list --name | grep -c . || true) -ge '"$n"' ]]'
  cancel_run --build-name "$build" >/dev/null
  wait_status "$build" CANCELLED 60
  wait_for -t 60 -m "runner@$build stopped" unit_gone "runner@$build.service"
  testbed_assert_empty "$build"
  assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/$build/runner.log")" "testbed $build: removed" "the teardown ran"
}

# testbed_kill_during_up BUILD PLAN: starts BUILD from PLAN (network "lab"),
# SIGKILLs its runner once the network exists, and checks that systemd
# restarted it, the run COMPLETED, and the resumed up made the network only
# once.
testbed_kill_during_up() {
  local build=$1 plan=$2 log
  start_run -q --build-name "$build" --plan "$plan" --workdir "$IT_DIR/work"
  wait_for -t 120 -m "network made" eval '[[ $(libvirt_host_virsh net-list --name | grep -c . || true) -ge 1 ]]'
  kill -KILL "$(unit_pid "runner@$build.service")"
  wait_for -t 300 -m "run $build to end" eval '[[ $(run_status '"$build"') != PENDING && $(run_status '"$build"') != RUNNING ]]'
  assert_eq "$(run_status "$build")" COMPLETED "the resumed run: $(tail -n 5 "$RUNWARDEN_STATE_DIR/runs/$build/runner.log")"
  [[ $(run_field "$build" runner_starts) -ge 2 ]] || fail "the runner was not restarted"
  log=$(cat "$RUNWARDEN_STATE_DIR/runs/$build/runner.log")
  assert_eq "$(grep -c 'network lab created' <<<"$log")" 1 "the network was made once"
  assert_contains "$log" "network lab present" "the resumed up found it"
}

# testbed_plan FILE SUBNET COUNT [KEY: VALUE ...] < STAGES: writes a plan with
# one network "lab" (SUBNET) and COUNT tiny TCG guests "web-N" from the kit,
# then the stages read from stdin. Extra "key: value" arguments go into the
# testbed: section (teardown: never, up_timeout: 5m) or, prefixed with
# "guest.", into the guest group (guest.cmdline: ...).
testbed_plan() {
  local file=$1 subnet=$2 count=$3 arg tb_extra="" guest_extra="" cmdline="console=ttyS0 quiet"
  shift 3
  for arg in "$@"; do
    case $arg in
      guest.cmdline:*) cmdline=${arg#guest.cmdline: } ;;
      guest.*) guest_extra+="      ${arg#guest.}"$'\n' ;;
      *) tb_extra+="  $arg"$'\n' ;;
    esac
  done
  {
    testbed__head "$subnet" "$tb_extra"
    cat <<YAML
  guests:
    web:
      count: $count
      image: base
      memory: 160M
      disk: 64M
      accel: tcg
      kernel: $TB_KIT/vmlinuz
      initrd: $TB_KIT/initrd.img
      cmdline: $cmdline
      networks: [lab]
      ssh_key: $TB_KEY.pub
      identity: $TB_KEY
YAML
    printf '%s' "$guest_extra"
    cat
  } >"$file"
  "$RW_BIN" validate "$file" >/dev/null || fail "plan: $("$RW_BIN" validate "$file" 2>&1)"
}

# testbed_golden_plan FILE SUBNET COUNT SETUP [KEY: VALUE ...] < STAGES: writes
# a plan with one network "lab" (SUBNET), a golden "gold" of the base image
# whose one setup step "mark" runs SETUP (a YAML scalar, quoted by the
# caller), and COUNT tiny TCG clones of it ("web-N"; count 1: "web"), then
# the stages read from stdin. Extra "key: value" arguments go into the
# testbed: section (teardown: never, up_timeout: 3m, parallel: 1).
testbed_golden_plan() {
  local file=$1 subnet=$2 count=$3 setup=$4 arg tb_extra="" m
  shift 4
  for arg in "$@"; do tb_extra+="  $arg"$'\n'; done
  m=$(printf '      %s\n' "memory: 160M" "disk: 64M" "accel: tcg" "kernel: $TB_KIT/vmlinuz" \
    "initrd: $TB_KIT/initrd.img" "cmdline: console=ttyS0 quiet" "networks: [lab]" \
    "ssh_key: $TB_KEY.pub" "identity: $TB_KEY")
  {
    testbed__head "$subnet" "$tb_extra"
    cat <<YAML
  goldens:
    gold:
      image: base
$m
      setup:
        - {name: mark, run: $setup}
  guests:
    web:
      count: $count
      golden: gold
$m
YAML
    cat
  } >"$file"
  "$RW_BIN" validate "$file" >/dev/null || fail "plan: $("$RW_BIN" validate "$file" 2>&1)"
}

# testbed_sshd_config DIR ADDR:PORT NAME: an sshd for a test hypervisor in
# DIR (host key, $TB_KEY authorized, debug log of forwarded connections),
# checked by sshd -t; DIR/home is made for a clean /root.
testbed_sshd_config() {
  local dir=$1 listen=$2 name=$3
  mkdir -p "$dir/home" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$dir/host_key"
  cp "$TB_KEY.pub" "$dir/authorized_keys"
  cat >"$dir/sshd_config" <<CONF
ListenAddress $listen
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
UseDNS no
LogLevel DEBUG1
CONF
  /usr/sbin/sshd -t -f "$dir/sshd_config" || fail "sshd rejects $dir/sshd_config"
}

# testbed_hypervisor NAME ADDR: a hypervisor machine of its own for a
# testbed across hosts: libvirtd in its own network and mount namespaces,
# its own images directory over $TB_IMAGES, a veth into the test's namespace
# on bridge rwul0 (10.200.0.1/24) at ADDR, and an sshd on ADDR:22 in the
# same namespaces (a clean /root, $TB_KEY authorized; host key in
# $IT_DIR/NAME/host_key.pub, its line added to $IT_DIR/hv_known_hosts).
# hv_in NAME CMD... runs a command in its namespaces; hv_virsh NAME ARGS...
# asks its libvirtd.
testbed_hypervisor() {
  local name=$1 addr=$2 dir=$IT_DIR/$1 pid
  libvirt_host_start "$dir" "$TB_IMAGES" || fail "libvirt host $name did not start"
  IT_EXTRA_TEARDOWN+=("libvirt_host_stop '$dir'")
  pid=$(cat "$dir/libvirtd.launch")
  if ! ip link show rwul0 >/dev/null 2>&1; then
    ip link add rwul0 type bridge && ip addr add 10.200.0.1/24 dev rwul0 && ip link set rwul0 up ||
      fail "underlay bridge"
  fi
  ip link add "ul-$name" type veth peer name eth0 netns "$pid" && ip link set "ul-$name" master rwul0 up ||
    fail "veth to $name"
  nsenter --target "$pid" --net sh -c "ip link set lo up && ip addr add $addr/24 dev eth0 && ip link set eth0 up" ||
    fail "address of $name"
  testbed_sshd_config "$dir" "$addr:22" "$name"
  nsenter --target "$pid" --mount --net -- unshare --mount --propagation private /bin/sh -c \
    'mount --bind "$1/home" /root && exec /usr/sbin/sshd -D -f "$1/sshd_config" -E "$1/sshd.log"' sh "$dir" &
  IT_EXTRA_TEARDOWN+=("kill $! 2>/dev/null || true")
  wait_for -m "$name's sshd" eval "hv_in $name ss -Hltn 'sport = :22' | grep -q ."
  echo "$addr $(cut -d' ' -f1-2 "$dir/host_key.pub")" >>"$IT_DIR/hv_known_hosts"
}

# testbed_hv_head HYPERVISORS EXTRA NETWORK: the start of a plan on the
# hypervisors testbed_hypervisor made at 10.200.0.11 (hv1) and .12 (hv2):
# both as plan hosts, a testbed: section on HYPERVISORS ("hosts: [hv1, hv2]"
# or "host: hv1") with EXTRA lines (each "  key: value\n"), the base image,
# and network "lab" as NETWORK ("{subnet: ...}").
testbed_hv_head() {
  cat <<YAML
version: 1
hosts:
  hv1: {address: 10.200.0.11, identity: $TB_KEY, known_hosts: $IT_DIR/hv_known_hosts}
  hv2: {address: 10.200.0.12, identity: $TB_KEY, known_hosts: $IT_DIR/hv_known_hosts}
testbed:
  $1
  images_dir: $TB_IMAGES
  up_timeout: 4m
$2  images:
    base: {path: $TB_BASE, format: qcow2}
  networks:
    lab: $3
YAML
}

hv_in() {
  local name=$1
  shift
  nsenter --target "$(cat "$IT_DIR/$name/libvirtd.launch")" --net --mount -- "$@"
}

hv_virsh() {
  local name=$1
  shift
  virsh -q -c "qemu+unix:///system?socket=$IT_DIR/$name/run/libvirt-sock" "$@"
}

# testbed_assert_empty_on NAME BUILD: nothing of BUILD is left on
# hypervisor NAME: no guest, network, pool, volume file, bridge, VXLAN
# link or qemu.
testbed_assert_empty_on() {
  local name=$1 build=$2
  assert_eq "$(hv_virsh "$name" list --all --name | grep -c . || true)" 0 "no guest left on $name"
  assert_eq "$(hv_virsh "$name" net-list --all --name | grep -c . || true)" 0 "no network left on $name"
  assert_eq "$(hv_virsh "$name" pool-list --all --name | grep -c . || true)" 0 "no pool left on $name"
  assert_eq "$(ls "$IT_DIR/$name/images" | grep -c . || true)" 0 "no volume file left on $name"
  assert_eq "$(hv_in "$name" ip -o link show type bridge | grep -c rwb || true)" 0 "no bridge left on $name"
  assert_eq "$(hv_in "$name" ip -o link show type vxlan | grep -c rwx || true)" 0 "no VXLAN link left on $name"
  no_process_matching "guest=rw-$build-" || fail "a qemu process is left: $(pgrep -af "guest=rw-$build-")"
}
