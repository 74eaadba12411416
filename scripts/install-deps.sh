#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages zchan's build, tests and benchmarks need, and
# only those that are missing.  Safe to run again: when everything is there
# it does nothing (no apt-get update).  Needs root only when something is
# missing; otherwise it prints the command to run and fails.
#
# Usage: scripts/install-deps.sh [-n|--dry-run] [-q|--quiet] [--list] [-h|--help]
#   --dry-run  only say what is missing and the command that would install it
#   --list     print every package zchan needs, one a line

set -eEuo pipefail
trap 'echo "install-deps: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

# What needs each package:
#   build-essential make gcc pkg-config  userspace library, tools, tests
#   linux-headers-amd64                  zchan.ko for Debian 12's 6.1 kernel
#   linux-image-amd64 kmod               the 6.1 kernel vm-run boots; insmod/rmmod
#   linux-headers-6.12-amd64             zchan.ko for the 6.12 kernel (Debian 13's,
#   linux-image-6.12-amd64                 also in bookworm): make check runs the
#                                          guest suite on both (scripts/kernels.sh)
#   linux-image-VERSION                  the exact image of each installed
#                                          linux-headers-VERSION-amd64, when the
#                                          meta-packages drifted apart (below)
#   qemu-system-x86 busybox-static cpio  scripts/vm-run
#   xz-utils zstd                        unpacking kernels and linux-source
#   liburing-dev                         libzchan's io_uring notifications
#   libbpf-dev bpftool clang             BPF tools (tools/)
#   linux-source-6.1                     kselftest harness and checkpatch.pl; the
#                                          6.1 debug kernel (make check-debug)
#   linux-source-6.12                    the 6.12 debug kernel (make check-debug)
#   sparse                               make lint
#   perl                                 checkpatch.pl
#   gnuplot-nox                          benchmark plots
#   python3-docutils                     man pages (rst2man)
#   git                                  version strings, CI clones
#   python3                              test checks of zchan-bench's JSON
#   python3-numpy python3-pytest         python binding (python/) and its tests
#   python3-setuptools python3-dev         (run them with /usr/bin/python3)
#   python3-distributed python3-dask     the Dask comm backend zchan+tcp:// and
#   iproute2                               its tests (ip netns: a second "host")
#   iceoryx libiceoryx-binding-c-dev     zchan-bench's iceoryx peer
#   valgrind                             make -C tests lib-valgrind
#   dkms dh-dkms debhelper dpkg-dev      make deb, the DKMS and package tests
#   lintian fakeroot dh-python
#   python3-all-dev                        (python3-zchan: debian/control)
#   flex bison bc libelf-dev libssl-dev  the debug kernels (make check-debug)
packages=(
	build-essential make gcc pkg-config
	linux-headers-amd64 linux-image-amd64 kmod
	linux-headers-6.12-amd64 linux-image-6.12-amd64
	qemu-system-x86 busybox-static cpio
	xz-utils zstd
	liburing-dev
	libbpf-dev bpftool clang
	linux-source-6.1 linux-source-6.12
	sparse perl
	gnuplot-nox
	python3-docutils
	git
	python3
	python3-numpy python3-pytest python3-setuptools python3-dev
	python3-distributed python3-dask iproute2
	iceoryx libiceoryx-binding-c-dev
	valgrind
	dkms dh-dkms debhelper dpkg-dev lintian fakeroot dh-python python3-all-dev
	flex bison bc libelf-dev libssl-dev
)

dry_run=""
quiet=""
while [ $# -gt 0 ]; do
	case $1 in
	-n|--dry-run) dry_run=1 ;;
	-q|--quiet) quiet=1 ;;
	--list) printf '%s\n' "${packages[@]}"; exit 0 ;;
	-h|--help)
		sed -n '3,11s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	*) echo "install-deps: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

say() { echo "install-deps: $*" >&2; }

# Installed means dpkg's status is "install ok installed".
missing_packages() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=""
		[ "$status" = "install ok installed" ] || echo "$p"
	done
}

command -v dpkg-query >/dev/null || { say "not a Debian system (no dpkg-query)"; exit 1; }

missing=($(missing_packages "${packages[@]}"))

# zchan.ko is built against each installed linux-headers-VERSION-amd64 of a
# supported series and tested by booting /boot/vmlinuz-VERSION, so that
# exact image must be installed too (a headers meta-package updated without
# its image meta-package leaves them apart).  On a fresh machine there are
# no headers yet: the meta-packages above bring matching pairs, and the
# second pass after installing checks again.
kernels=$(dirname "$(readlink -f "$0")")/kernels.sh
images=$("$kernels" --missing-images) || { say "$kernels failed"; exit 1; }
for ver in $images; do
	missing+=($(missing_packages "linux-image-$ver"))
done

if [ ${#missing[@]} -eq 0 ]; then
	[ -n "$quiet" ] || say "all ${#packages[@]} packages are installed"
	exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ -n "$dry_run" ]; then
	say "missing: ${missing[*]}"
	say "would run: $cmd"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	say "missing packages: ${missing[*]}"
	say "run as root: $cmd"
	say "(or: sudo $0)"
	exit 1
fi

say "installing: ${missing[*]}"
say "running: $cmd"
apt-get update || { say "apt-get update failed (exit $?): check the network and /etc/apt/sources.list"; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
	{ say "apt-get install failed (exit $?) for: ${missing[*]}"; exit 1; }

still=($(missing_packages "${missing[@]}"))
if [ ${#still[@]} -gt 0 ]; then
	say "still missing after apt-get: ${still[*]}"
	exit 1
fi
# Once more for the kernel images matching the headers just installed.
if [ -z "${ZCHAN_INSTALL_DEPS_AGAIN:-}" ]; then
	ZCHAN_INSTALL_DEPS_AGAIN=1 exec "$0" --quiet
fi
