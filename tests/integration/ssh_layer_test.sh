#!/bin/bash
# ssh_layer_test.sh: the SSH layer's integration test against real sshds.
#
#   RW_BUILD=build tests/integration/ssh_layer_test.sh [gtest args...]
#
# Brings up 3 SSH test hosts and a guest behind host 1 in network namespaces
# (netns-hosts.sh), runs $RW_BUILD/ssh_layer_it with RW_NETNS_DIR pointing at
# them, and tears everything down again, also on failure or Ctrl-C. Needs
# root, ip(8) and sshd; without them it exits 77 (ctest's SKIP_RETURN_CODE).
# Otherwise the exit status is the test binary's.
#
# Environment:
#   RW_BUILD           build directory holding ssh_layer_it (default: build)
#   RW_NETNS_PREFIX    passed to netns-hosts.sh, to run beside another set
#   RW_NETNS_NET, RW_NETNS_GNET   likewise (host and guest networks)
#   RW_KEEP_HOSTS=1    leave the hosts up afterwards (prints the directory)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${RW_BUILD:-$here/../../build}
bin=$build/ssh_layer_it

die() { echo "ssh_layer_test: $*" >&2; exit 1; }
skip() { echo "ssh_layer_test: skipped: $*" >&2; exit 77; }

[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces)"
command -v ip >/dev/null && [[ -x /usr/sbin/sshd ]] || skip "needs iproute2 and openssh-server"
[[ -x $bin ]] || die "no test binary at $bin (build the ssh_layer_it target, or set RW_BUILD)"

dir=$(mktemp -d /tmp/rw-ssh-hosts.XXXXXX)
cleanup() {
  if [[ ${RW_KEEP_HOSTS:-} == 1 ]]; then
    echo "ssh_layer_test: hosts left up in $dir (netns-hosts.sh down $dir)"
    return
  fi
  "$here/netns-hosts.sh" down "$dir" >/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$here/netns-hosts.sh" up "$dir" 3
rc=0
RW_NETNS_DIR=$dir "$bin" "$@" || rc=$?
exit "$rc"
