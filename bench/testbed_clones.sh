#!/bin/bash
# bench/testbed_clones.sh [N] [PARALLEL]: N (default 50) linked clones of a
# 64 MiB qcow2 base through the libvirt API (testbed_clone_bench: the pool,
# N overlays with an explicit backing format, the pool removed), against the
# shell loop it replaces (qemu-img create -b, N times, then rm), paired by
# farm-bench on a private libvirtd (tests/testbed/libvirt-host.sh).
# Prints farm-bench's medians and the ratio API/loop.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-50}
parallel=${2:-1}
build=${RW_BUILD:-$("$here/../scripts/build-dir.sh")}
source "$here/../tests/testbed/libvirt-host.sh"
dir=$(mktemp -d /var/lib/runwarden-bench-clones.XXXXXX)
trap 'libvirt_host_stop "$dir/lvh"; rm -rf "$dir"' EXIT
libvirt_host_start "$dir/lvh"
mkdir -p "$dir/images" "$dir/loop"
qemu-img create -q -f qcow2 "$dir/base.qcow2" 64M
farm-bench -n 7 --timeout 600 \
  --vs "sh -c 'for i in \$(seq $n); do qemu-img create -q -f qcow2 -F qcow2 -b $dir/base.qcow2 $dir/loop/c\$i.qcow2 64M; done; rm -f $dir/loop/*'" \
  -- "$build/testbed_clone_bench" "$LIBVIRT_HOST_URI" "$dir/images" "$dir/base.qcow2" "$n" "$parallel"
