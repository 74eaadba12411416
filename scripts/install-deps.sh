#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages zchan's build, tests and benchmarks need, and
# only those that are missing.  Safe to run again: when everything is there
# it does nothing (no apt-get update).  Needs root only when something is
# missing; otherwise it prints the command to run and fails.
#
# Usage: scripts/install-deps.sh [-n|--dry-run] [-q|--quiet] [-h|--help]

set -euo pipefail

# What needs each package:
#   build-essential make gcc pkg-config  userspace library, tools, tests
#   linux-headers-amd64                  zchan.ko (Kbuild)
#   linux-image-amd64 kmod               the kernel vm-run boots; insmod/rmmod
#   qemu-system-x86 busybox-static cpio  tools/vm-run
#   xz-utils zstd                        unpacking kernels and linux-source
#   liburing-dev                         libzchan's io_uring notifications
#   libbpf-dev bpftool clang             benchmarks
#   linux-source-6.1                     kselftest harness and checkpatch.pl
#   sparse                               make lint
#   perl                                 checkpatch.pl
#   gnuplot-nox                          benchmark plots
#   python3-docutils                     man pages (rst2man)
#   git                                  version strings, CI clones
#   python3                              test checks of zchan-bench's JSON
#   flex bison bc libelf-dev libssl-dev  the debug kernel (make check-debug)
packages=(
	build-essential make gcc pkg-config
	linux-headers-amd64 linux-image-amd64 kmod
	qemu-system-x86 busybox-static cpio
	xz-utils zstd
	liburing-dev
	libbpf-dev bpftool clang
	linux-source-6.1
	sparse perl
	gnuplot-nox
	python3-docutils
	git
	python3
	flex bison bc libelf-dev libssl-dev
)

dry_run=""
quiet=""
while [ $# -gt 0 ]; do
	case $1 in
	-n|--dry-run) dry_run=1 ;;
	-q|--quiet) quiet=1 ;;
	-h|--help)
		sed -n '3,9s/^# \{0,1\}//p' "$0"
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

# The module is built against the newest linux-headers-VER and tested by
# booting /boot/vmlinuz-VER, so that exact image must be installed too
# (the two meta-packages can drift apart on a machine updated piecemeal).
headers_ver=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sed 's|.*/linux-headers-||' | sort -V | tail -n1)
if [ -n "$headers_ver" ] && [ ! -e "/boot/vmlinuz-$headers_ver" ]; then
	missing+=($(missing_packages "linux-image-$headers_ver"))
fi

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
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

still=($(missing_packages "${missing[@]}"))
if [ ${#still[@]} -gt 0 ]; then
	say "still missing after apt-get: ${still[*]}"
	exit 1
fi
# Once more for the kernel image matching the headers just installed.
if [ -z "${ZCHAN_INSTALL_DEPS_AGAIN:-}" ]; then
	ZCHAN_INSTALL_DEPS_AGAIN=1 exec "$0" --quiet
fi
