#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Take the few kernel-tree files zchan builds with out of Debian's
# linux-source tarball, in one pass (decompressing it takes about a minute):
#
#   OUTDIR/ksft/kselftest_harness.h, OUTDIR/ksft/kselftest.h
#   OUTDIR/checkpatch/checkpatch.pl, spelling.txt, const_structs.checkpatch
#
# Usage: scripts/extract-kernel-files.sh [TARBALL [OUTDIR]]
# Defaults: /usr/src/linux-source-6.1.tar.xz and build/ at the top of the tree.
# Nothing is extracted when all files are present; concurrent runs wait for
# each other.

set -eEuo pipefail
trap 'echo "extract-kernel-files: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
tarball=${1:-/usr/src/linux-source-6.1.tar.xz}
out=${2:-$top/build}

ksft_files=(kselftest_harness.h kselftest.h)
checkpatch_files=(checkpatch.pl spelling.txt const_structs.checkpatch)

all_present() {
	local f
	for f in "${ksft_files[@]}"; do [ -f "$out/ksft/$f" ] || return 1; done
	for f in "${checkpatch_files[@]}"; do [ -f "$out/checkpatch/$f" ] || return 1; done
}

mkdir -p "$out"
all_present && exit 0

exec 9>"$out/.extract-kernel-files.lock"
flock 9
all_present && exit 0

if [ ! -r "$tarball" ]; then
	echo "extract-kernel-files: $tarball not found: install linux-source-6.1 (scripts/install-deps.sh)" >&2
	exit 1
fi

echo "  EXTRACT $(basename "$tarball"): kselftest harness and checkpatch (about a minute, once)" >&2
tmp=$(mktemp -d "$out/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
patterns=()
for f in "${ksft_files[@]}"; do patterns+=("*/tools/testing/selftests/$f"); done
for f in "${checkpatch_files[@]}"; do patterns+=("*/scripts/$f"); done
tar -xJf "$tarball" -C "$tmp" --wildcards --no-anchored "${patterns[@]}"

mkdir -p "$tmp/ksft" "$tmp/checkpatch"
for f in "${ksft_files[@]}"; do
	src=$(find "$tmp" -mindepth 5 -maxdepth 5 -path "*/tools/testing/selftests/$f" -print -quit)
	[ -n "$src" ] || { echo "extract-kernel-files: $f missing from $tarball" >&2; exit 1; }
	mv "$src" "$tmp/ksft/$f"
done
for f in "${checkpatch_files[@]}"; do
	src=$(find "$tmp" -mindepth 3 -maxdepth 3 -path "*/scripts/$f" -print -quit)
	[ -n "$src" ] || { echo "extract-kernel-files: $f missing from $tarball" >&2; exit 1; }
	mv "$src" "$tmp/checkpatch/$f"
done
chmod +x "$tmp/checkpatch/checkpatch.pl"
rm -rf "$out/ksft" "$out/checkpatch"
mv "$tmp/ksft" "$tmp/checkpatch" "$out/"
