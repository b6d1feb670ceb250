#!/bin/bash
# tests/testbed/guest-kit.sh [CACHE_DIR]: builds, once, a tiny bootable guest
# for testbed tests from Debian packages, and prints the directory holding
#   vmlinuz      the Debian cloud kernel (linux-image-*-cloud-amd64)
#   initrd.img   busybox-static + dropbear + the virtio, vfat modules
# The kit is rebuilt only when a package version or this script changes;
# CACHE_DIR (default /var/cache/runwarden-guest-kit) must be readable by qemu.
#
# The guest's /init, the consumer of what runwarden writes:
# - loads the modules, brings up every ethN: the static address the seed's
#   network-config gives its MAC, else DHCP (udhcpc);
# - finds the NoCloud seed: a read-only virtio disk with a vfat file system
#   holding meta-data and user-data (the FAT12 image labelled CIDATA that
#   runwarden's testbed writes);
# - takes local-hostname from meta-data and every "  - <key>" line under
#   ssh_authorized_keys: in user-data (quotes removed) as root's keys;
# - takes its SSH host key from ed25519_private under ssh_keys: in user-data
#   (else makes one), starts dropbear on port 22 (keys only) and logs
#   "rw-guest: ready" on the console;
# - powers off on `poweroff` (a golden's seal steps end with it).
set -euo pipefail

cache=${1:-/var/cache/runwarden-guest-kit}
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
[[ -n $kernel_pkg ]] || { echo "guest-kit: no linux-image-cloud-amd64 in apt's lists (apt-get update?)" >&2; exit 1; }
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || apt-cache policy "$1" | awk '/Candidate:/{print $2}'; }
key=$( { echo "$kernel_pkg $(apt-cache policy "$kernel_pkg" | awk '/Candidate:/{print $2}')";
         ver busybox-static; ver dropbear-bin; sha256sum <"$0"; } | sha256sum | cut -c1-16)
out=$cache/$key
if [[ -s $out/vmlinuz && -s $out/initrd.img ]]; then echo "$out"; exit 0; fi

for p in busybox-static dropbear-bin cpio; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    { echo "guest-kit: package $p is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
work=$(mktemp -d "$cache.build-XXXXXX" 2>/dev/null || { mkdir -p "$cache"; mktemp -d "$cache.build-XXXXXX"; })
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$kernel_pkg" >/dev/null 2>&1) ||
  { echo "guest-kit: cannot download $kernel_pkg" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
kver=$(ls "$work/k/lib/modules")
mods=$work/k/lib/modules/$kver/kernel

root=$work/root
mkdir -p "$root"/{bin,sbin,etc/udhcpc,etc/dropbear,proc,sys,dev,run,tmp,root/.ssh,mnt/seed,lib/modules,var/log}
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done
cp /usr/sbin/dropbear "$root/sbin/dropbear"
cp /usr/bin/dropbearconvert "$root/sbin/dropbearconvert"
# dropbear is dynamically linked: its libraries and the loader come along.
for lib in $( (ldd /usr/sbin/dropbear; ldd /usr/bin/dropbearconvert) | awk '/=>/{print $3} /ld-linux/{print $1}' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# Loaded in this order, each once its dependencies are in.
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev virtio/virtio_pci_modern_dev \
         virtio/virtio_pci ../net/core/failover net/net_failover net/virtio_net block/virtio_blk \
         ../fs/fat/fat ../fs/fat/vfat ../fs/nls/nls_cp437 ../fs/nls/nls_iso8859-1 ../fs/nls/nls_ascii \
         ../net/packet/af_packet; do
  f=$mods/drivers/$m.ko
  [[ -e $f ]] || continue  # built into this kernel
  cp "$f" "$root/lib/modules/"
  echo "$(basename "$f")" >>"$root/lib/modules/order"
done

echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:*:19000:0:99999:7:::' >"$root/etc/shadow"
echo 'root:x:0:' >"$root/etc/group"
echo '/bin/sh' >"$root/etc/shells"
cat >"$root/etc/udhcpc/default.script" <<'SH'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
SH
chmod +x "$root/etc/udhcpc/default.script"
cat >"$root/init" <<'SH'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
# In order; a module whose dependencies failed is tried again in the next pass.
left=$(cat /lib/modules/order)
for pass in 1 2 3; do
  next=""
  for m in $left; do insmod /lib/modules/$m 2>/dev/null || next="$next $m"; done
  left=$next
  [ -z "$left" ] && break
done
[ -n "$left" ] && echo "rw-guest: modules not loaded:$left"
ip link set lo up
# The seed: a vfat disk with meta-data.
for d in /sys/block/vd*; do
  dev=/dev/${d##*/}
  if mount -t vfat -o ro "$dev" /mnt/seed 2>/dev/null; then
    [ -f /mnt/seed/meta-data ] && break
    umount /mnt/seed
  fi
done
if [ -f /mnt/seed/meta-data ]; then
  h=$(sed -n 's/^local-hostname: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /mnt/seed/meta-data)
  [ -n "$h" ] && hostname "$h"
  awk '/^ssh_authorized_keys:/{k=1; next} k && /^  - /{sub(/^  - /,""); gsub(/^"|"$/,""); gsub(/\\"/,"\""); print; next} {k=0}' \
    /mnt/seed/user-data >/root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
  echo "rw-guest: seed read, hostname $(hostname), $(wc -l </root/.ssh/authorized_keys) key(s)"
else
  echo "rw-guest: no seed disk"
fi
# Each NIC: its static address from the seed's network-config (matched by
# MAC), else DHCP.
for i in /sys/class/net/eth*; do
  n=${i##*/}
  ip link set "$n" up
  a=""
  [ -f /mnt/seed/network-config ] &&
    a=$(awk -v mac="$(cat "$i/address")" '/macaddress:/{gsub(/"/,""); m=($2==mac); next}
        m && /^      - /{gsub(/[" ]/,""); sub(/^-/,""); print; exit}' /mnt/seed/network-config)
  if [ -n "$a" ]; then
    ip addr add "$a" dev "$n"
    echo "rw-guest: $n has $a from the seed"
  else
    udhcpc -i "$n" -s /etc/udhcpc/default.script -t 20 -T 1 -A 1 -b -q 2>/dev/null &
  fi
done
wait
# The host key runwarden made for this guest (ssh_keys: ed25519_private),
# else one made here.
hostkey=""
if [ -f /mnt/seed/user-data ]; then
  awk '/^  ed25519_private: \|/{k=1; next} k && /^    /{sub(/^    /,""); print; next} {k=0}' \
    /mnt/seed/user-data >/tmp/seed_host_key
  if [ -s /tmp/seed_host_key ] &&
     dropbearconvert openssh dropbear /tmp/seed_host_key /etc/dropbear/seed_ed25519_key >/dev/null 2>&1; then
    hostkey="-r /etc/dropbear/seed_ed25519_key"
    echo "rw-guest: host key from the seed"
  fi
  rm -f /tmp/seed_host_key
fi
[ -n "$hostkey" ] || hostkey="-R"
/sbin/dropbear $hostkey -s -p 22 -E 2>/var/log/dropbear.log
echo "rw-guest: ready $(hostname) $(ip -4 -o addr show | awk '$2!="lo"{print $4}' | tr '\n' ' ')"
# busybox poweroff signals PID 1 (USR2): this shell is PID 1, so it acts.
trap 'echo "rw-guest: powering off"; sync; poweroff -f' USR2 TERM
while true; do sleep 3600 & wait $!; done
SH
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.img"
# Kits of older package versions go: one kit in the cache.
for old in "$cache"/*/; do [[ ${old%/} == "$out" ]] || rm -rf "${old%/}"; done
mkdir -p "$out"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz"
mv "$work/initrd.img" "$out/initrd.img"
chmod 0644 "$out/vmlinuz" "$out/initrd.img"
chmod 0755 "$cache" "$out"
echo "$out"
