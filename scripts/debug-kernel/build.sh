#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build a debug kernel (KASAN, lockdep, kmemleak, DEBUG_ATOMIC_SLEEP) of
# one supported series, 6.1 or 6.12, from Debian's linux-source-SERIES
# tarball, for running the guest suite under scripts/vm-run --kernel.
# Everything lives outside the tree, one directory per series, in
# ${XDG_CACHE_HOME:-$HOME/.cache}/zchan/debug-kernel-SERIES:
#
#   src/          the unpacked source (once per tarball)
#   build/        the object tree (O=), also the headers zchan.ko builds against
#   vmlinuz       the kernel image (a copy of build/arch/x86/boot/bzImage)
#   lib/modules/VERSION/
#                 modules_install output (modules.dep, modules.builtin, ...)
#                 and a `build` link to build/: scripts/vm-run --kernel finds
#                 modules and headers there, next to the image
#   build.log     the last build's log
#
# A finished build is reused; the script then only prints the image path.

set -eEuo pipefail
trap 'echo "debug-kernel: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

series=6.1
tarball=""
cache=""
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/zchan
jobs=2
nice_level=19
force=""
print_only=""
config_only=""
install=""
localversion=-zchan-debug

usage() {
	cat <<USAGE
Usage: scripts/debug-kernel/build.sh [OPTIONS]

Build (or reuse) a debug kernel with KASAN, PROVE_LOCKING, DEBUG_KMEMLEAK
and DEBUG_ATOMIC_SLEEP for scripts/vm-run --kernel, and print the path of its
image on stdout.

Options:
  --series S       6.1 or 6.12 (default: $series)
  --tarball FILE   kernel source (default: /usr/src/linux-source-SERIES.tar.xz,
                   Debian package linux-source-SERIES)
  --cache DIR      where to unpack and build
                   (default: $cache_root/debug-kernel-SERIES)
  -j N             parallel jobs (default: $jobs)
  --nice N         niceness of the build (default: $nice_level)
  --force          reconfigure and rebuild even if a build exists
  --print          only print the image path if it is built (exit 1 if not)
  --config-only    unpack and configure, check the debug options, print
                   the .config path; no compiling
  --install        also link /lib/modules/VERSION to the cached modules
                   directory (root; only for tools other than vm-run,
                   which looks next to the image)
  -h, --help       this help

Examples:
  scripts/debug-kernel/build.sh                # ~1 h on 2 idle cores, once
  scripts/debug-kernel/build.sh --series 6.12  # the same for 6.12
  cd tests && ../scripts/vm-run --kernel "\$(../scripts/debug-kernel/build.sh --print)" \\
      --append no5lvl --timeout 3600 -- ./guest-tests.sh \$(make -s print-guest-tests)
USAGE
}

while [ $# -gt 0 ]; do
	case $1 in
	--series) series=$2; shift 2 ;;
	--tarball) tarball=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	-j) jobs=$2; shift 2 ;;
	-j*) jobs=${1#-j}; shift ;;
	--nice) nice_level=$2; shift 2 ;;
	--force) force=1; shift ;;
	--print) print_only=1; shift ;;
	--config-only) config_only=1; shift ;;
	--install) install=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

say() { echo "debug-kernel: $*" >&2; }
die() { say "$*"; exit 1; }

case $series in
6.1|6.12) ;;
*) die "--series: $series is not a supported series (6.1, 6.12)" ;;
esac
tarball=${tarball:-/usr/src/linux-source-$series.tar.xz}
if [ -z "$cache" ]; then
	cache=$cache_root/debug-kernel-$series
	# The 6.1 kernel used to be cached in debug-kernel/: keep using it
	# there (the object tree's paths are absolute, it cannot move).
	if [ ! -e "$cache" ] && [ -f "$cache_root/debug-kernel/.built" ] &&
		grep -q "^$series\." "$cache_root/debug-kernel/.built"; then
		ln -s debug-kernel "$cache"
	fi
fi

src=$cache/src
out=$cache/build
image=$cache/vmlinuz
stamp=$cache/.built

install_modules_link() {
	local kver
	kver=$(cat "$stamp")
	[ -n "$install" ] || return 0
	if [ -L "/lib/modules/$kver" ] || [ ! -e "/lib/modules/$kver" ]; then
		ln -sfn "$cache/lib/modules/$kver" "/lib/modules/$kver" ||
			die "cannot link /lib/modules/$kver (run as root)"
		say "linked /lib/modules/$kver -> $cache/lib/modules/$kver"
	else
		die "/lib/modules/$kver exists and is not a link: not touching it"
	fi
}

if [ -n "$print_only" ]; then
	[ -f "$stamp" ] && [ -f "$image" ] || die "no debug kernel built in $cache (run $0 --series $series)"
	install_modules_link
	echo "$image"
	exit 0
fi

if [ -z "$force" ] && [ -f "$stamp" ] && [ -f "$image" ]; then
	if [ -n "$config_only" ]; then
		echo "$out/.config"
		exit 0
	fi
	install_modules_link
	echo "$image"
	exit 0
fi

[ -r "$tarball" ] || die "$tarball missing: apt-get install linux-source-$series (scripts/install-deps.sh)"
for tool in flex bison bc gcc make; do
	command -v $tool >/dev/null ||
		die "$tool missing: apt-get install flex bison bc build-essential libelf-dev libssl-dev"
done

mkdir -p "$cache"
log=$cache/build.log
: >"$log"
say "building in $cache (log: $log)"

# Unpack once per tarball.
src_key=$(stat -c '%s %Y' "$tarball")
if [ ! -f "$src/.zchan-src" ] || [ "$(cat "$src/.zchan-src")" != "$src_key" ]; then
	say "unpacking $tarball"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	nice -n "$nice_level" tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
	echo "$src_key" >"$src.tmp/.zchan-src"
	mv "$src.tmp" "$src"
fi

mk() { nice -n "$nice_level" make -C "$src" O="$out" "$@" >>"$log" 2>&1; }
cfg() { "$src/scripts/config" --file "$out/.config" "$@"; }

# Boot it with --append no5lvl: under TCG's -cpu max (LA57) KASAN reports a
# wild-memory-access in early boot with 5-level paging.  PVH is off: its
# uncompressed-image entry point does not boot this kernel under qemu, so
# vm-run boots the bzImage instead.
#
# A small, quick-to-build guest kernel: x86_64 defconfig plus the KVM guest
# fragment, the debug options, and what vm-run's guest needs built in
# (virtio-9p root, devtmpfs, tmpfs, serial console, unix sockets).  What
# such a guest never uses (block devices and local file systems,
# NICs, graphics, sound, USB, NFS, tracing, suspend) is dropped: the build
# is about a third of defconfig's.
configure() {
	mk defconfig
	mk kvm_guest.config
	cfg --set-str LOCALVERSION "$localversion" -d LOCALVERSION_AUTO \
		-e MODULES -e MODULE_UNLOAD -d MODULE_SIG \
		-e DEVTMPFS -e TMPFS -e BLK_DEV_INITRD -e SERIAL_8250 -e SERIAL_8250_CONSOLE \
		-d PVH -e VIRTIO -e VIRTIO_PCI -e NET_9P -e NET_9P_VIRTIO -e 9P_FS -e 9P_FS_POSIX_ACL \
		-e IO_URING -e DEBUG_FS -e CGROUPS -e MEMCG -e NAMESPACES -e IPC_NS -e USER_NS \
		-e KASAN -e KASAN_GENERIC -e KASAN_INLINE -e KASAN_VMALLOC \
		-e PROVE_LOCKING -e DEBUG_ATOMIC_SLEEP \
		-e DEBUG_KMEMLEAK -d DEBUG_KMEMLEAK_DEFAULT_OFF -e DEBUG_KMEMLEAK_AUTO_SCAN \
		--set-val DEBUG_KMEMLEAK_MEM_POOL_SIZE 65536 \
		-e DEBUG_LIST -e DEBUG_VM -e DETECT_HUNG_TASK -e SOFTLOCKUP_DETECTOR \
		-d DEBUG_INFO -d DEBUG_INFO_BTF \
		-e UNIX -e SYSVIPC -e POSIX_MQUEUE -e FUTEX -e EPOLL -e EVENTFD -e SHMEM \
		-d DRM -d SOUND -d WLAN -d WIRELESS -d CFG80211 -d MAC80211 -d RFKILL -d BT \
		-d USB_SUPPORT -d HID -d AGP -d FB -d VT -d MEDIA_SUPPORT -d INPUT_JOYSTICK \
		-d INPUT_TABLET -d INPUT_TOUCHSCREEN -d INPUT_MOUSE -d NETFILTER -d ETHERNET \
		-d WAN -d NETDEVICES -d IP_PNP -d IP_MULTICAST -d XFRM -d NETLABEL -d NET_SCHED -d WIRELESS \
		-d BLOCK -d SCSI -d ATA -d MD -d EXT4_FS -d FAT_FS -d ISO9660_FS -d QUOTA \
		-d AUTOFS_FS -d NFS_FS -d NFSD -d CIFS -d SECURITY -d AUDIT -d EFI \
		-d HIBERNATION -d SUSPEND -d CPU_FREQ -d KPROBES -d FTRACE -d PROFILING \
		-d PERF_EVENTS_INTEL_UNCORE -d DEBUG_KERNEL_DC -d MICROCODE -d X86_MCE \
		-d HW_RANDOM -d AGP -d DRM -d I2C -d HWMON -d THERMAL -d WATCHDOG -d RTC_CLASS \
		-d MACINTOSH_DRIVERS -d X86_EXTENDED_PLATFORM -d CRYPTO_AES_NI_INTEL
	mk olddefconfig
}

# Configure once per (tarball, configure()): an interrupted build resumes.
mkdir -p "$out"
rm -f "$stamp"
config_key=$( { echo "$src_key"; declare -f configure; } | md5sum | cut -c1-32)
if [ -n "$force" ] || [ ! -f "$out/.config" ] || [ "$(cat "$cache/.config-key" 2>/dev/null)" != "$config_key" ]; then
	say "configuring"
	rm -f "$cache/.config-key"
	configure
	echo "$config_key" >"$cache/.config-key"
fi

# Refuse a config where olddefconfig dropped something we rely on.
for opt in KASAN PROVE_LOCKING DEBUG_KMEMLEAK DEBUG_ATOMIC_SLEEP MODULES MODULE_UNLOAD \
	9P_FS NET_9P_VIRTIO VIRTIO_PCI IO_URING DEBUG_FS MEMCG DEVTMPFS IPC_NS UNIX TMPFS \
	SERIAL_8250_CONSOLE BLK_DEV_INITRD; do
	grep -q "^CONFIG_$opt=y" "$out/.config" || die "CONFIG_$opt is not =y after olddefconfig"
done

if [ -n "$config_only" ]; then
	say "configured $(make -s -C "$src" O="$out" kernelversion 2>/dev/null || echo "$series") in $out"
	echo "$out/.config"
	exit 0
fi

say "compiling with -j$jobs at nice $nice_level (this takes a while; tail -f $log)"
start=$(date +%s)
mk -j"$jobs" bzImage modules || die "build failed, see $log"

kver=$(cat "$out/include/config/kernel.release")
say "installing modules for $kver"
rm -rf "$cache/lib/modules/$kver"
mk INSTALL_MOD_PATH="$cache" INSTALL_MOD_STRIP=1 modules_install
ln -sfn "$out" "$cache/lib/modules/$kver/build"
rm -f "$cache/lib/modules/$kver/source"
cp "$out/arch/x86/boot/bzImage" "$image.tmp"
mv -f "$image.tmp" "$image"
echo "$kver" >"$stamp"
say "built $kver in $(($(date +%s) - start)) s"
install_modules_link
echo "$image"
