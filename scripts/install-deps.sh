#!/bin/bash
# Installs what runwarden needs to build, test and run, from Debian 12.
# Skips apt entirely when everything is already there.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  libsystemd-dev libcurl4-openssl-dev nlohmann-json3-dev libyaml-cpp-dev
  libvirt-dev libssh2-1-dev libssl-dev libcli11-dev libgtest-dev libgmock-dev libmicrohttpd-dev
  # run and test: a service manager, sshd hosts in namespaces, a receiver
  systemd dbus openssh-server openssh-client iproute2 procps psmisc util-linux curl python3 strace
  # testbeds: a libvirt host with qemu (TCG in tests), the tiny test guest
  # (kernel fetched by tests/testbed/guest-kit.sh), readers of the seed image
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  dnsmasq-base iptables busybox-static dropbear-bin cpio mtools dosfstools
  # Open vSwitch networks (tests/integration/testbed_ovs_test.sh)
  openvswitch-switch
  # fuzzing
  clang libclang-rt-14-dev
  # the .deb (scripts/package.sh, tests/integration/package_test.sh)
  debhelper dpkg-dev fakeroot lintian
  # the web view's pages in a real browser (tests/integration/web_test.sh)
  chromium
)
# Benchmarks compare against these peers.
if [[ "${1:-}" == --bench ]]; then PACKAGES+=(pssh ansible); fi

# Every runner and watcher holds an inotify instance; the default of 128 per
# user caps a controller (and the test suite) at about 60 concurrent runs.
if [[ $EUID -eq 0 && $(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 1024) -lt 1024 ]]; then
  sysctl -qw fs.inotify.max_user_instances=1024 || true
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: everything is installed"
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
