#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernels zchan.ko is built and tested for: every installed Debian
# linux-headers-VERSION-amd64 of a supported series whose image
# /boot/vmlinuz-VERSION is installed too (scripts/vm-run boots it).  One line
# per kernel, oldest first: "VERSION HEADERS-DIR".
#
# Usage: scripts/kernels.sh [--series | --missing-images]
#   --series          print the supported series ("6.1 6.12")
#   --missing-images  print the VERSION of each supported linux-headers
#                     whose /boot/vmlinuz-VERSION is missing (the image
#                     package scripts/install-deps.sh must add)
# Environment: ZCHAN_USR_SRC (default /usr/src), ZCHAN_BOOT (default
# /boot), for tests.

set -eEuo pipefail
trap 'echo "kernels.sh: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

# Debian 12's kernels: 6.1 (linux-image-amd64) and 6.12
# (linux-image-6.12-amd64, Debian 13's kernel, in bookworm too).
series=(6.1 6.12)
usr_src=${ZCHAN_USR_SRC:-/usr/src}
boot=${ZCHAN_BOOT:-/boot}

supported() {
	local s
	for s in "${series[@]}"; do
		case $1 in "$s".*) return 0 ;; esac
	done
	return 1
}

mode=list
case ${1:-} in
"") ;;
--series) echo "${series[*]}"; exit 0 ;;
--missing-images) mode=missing ;;
-h|--help) sed -n '3,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) echo "kernels.sh: unknown option $1" >&2; exit 2 ;;
esac

# No headers at all (a fresh machine) is an empty list, not an error.
shopt -s nullglob
for dir in "$usr_src"/linux-headers-*-amd64; do
	ver=${dir##*/linux-headers-}
	[ -f "$dir/Makefile" ] && supported "$ver" || continue
	if [ -e "$boot/vmlinuz-$ver" ]; then
		[ "$mode" = missing ] || echo "$ver $dir"
	else
		[ "$mode" = list ] || echo "$ver"
	fi
done | sort -V
