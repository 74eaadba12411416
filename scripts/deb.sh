#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build zchan's Debian packages (`make deb`): copy the tree (what git
# tracks, plus new files it does not ignore) into OUTDIR/zchan-VERSION/,
# run dpkg-buildpackage there, so its results land in OUTDIR and nothing
# is written next to the tree, then lintian on them: any error fails.
#
# Usage: scripts/deb.sh [--binary] [--no-lintian] [OUTDIR]
#   OUTDIR        default build/deb (emptied first)
#   --binary      binary packages only (no source package), no clean step
#   --no-lintian  skip lintian
# Environment: ZCHAN_DEB_JOBS (dpkg-buildpackage -J, default 2),
# DEB_BUILD_OPTIONS (passed on; nocheck is always added).

set -euo pipefail

TOP=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
build_args=()
lintian=1
out=$TOP/build/deb
while [ $# -gt 0 ]; do
	case $1 in
	--binary) build_args+=(--build=binary --no-pre-clean) ;;
	--no-lintian) lintian="" ;;
	-h|--help) sed -n '3,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "deb.sh: unknown option $1" >&2; exit 2 ;;
	*) out=$1 ;;
	esac
	shift
done

die() { echo "deb.sh: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dh dh_dkms rst2man; do
	command -v "$tool" >/dev/null ||
		die "$tool not found: install debhelper dh-dkms python3-docutils (scripts/install-deps.sh)"
done
[ -z "$lintian" ] || command -v lintian >/dev/null || die "lintian not found: install lintian"

version=$(dpkg-parsechangelog -l "$TOP/debian/changelog" -S Version) ||
	die "cannot read the version from debian/changelog"
src=$out/zchan-$version
rm -rf "$out"
mkdir -p "$src"

# The copy: what a clean clone has, plus new files git does not ignore.
# Without git (an unpacked tarball), everything but build/ and .git.
if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$TOP" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$f" ] && printf '%s\0' "$f"
		done | tar --null -T - -cf -) | tar -xf - -C "$src" ||
		die "copying the tree into $src failed"
else
	tar -C "$TOP" --exclude=./build --exclude-vcs -cf - . | tar -xf - -C "$src" ||
		die "copying the tree into $src failed"
fi

export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck"
echo "  DEB     $src (log: ${out#"$TOP"/}/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -J"${ZCHAN_DEB_JOBS:-2}" \
		${build_args[@]+"${build_args[@]}"}) >"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log" >&2
	die "dpkg-buildpackage failed (full log: $out/build.log)"
fi
rm -rf "$src"
changes=$(ls "$out"/zchan_"$version"_*.changes)
for deb in "$out"/*.deb; do echo "  DEB     ${deb#"$TOP"/}"; done

if [ -n "$lintian" ]; then
	echo "  LINTIAN ${changes#"$TOP"/} (log: ${out#"$TOP"/}/lintian.log)"
	status=0
	lintian --fail-on error --display-info "$changes" >"$out/lintian.log" 2>&1 || status=$?
	sed 's/^/    /' "$out/lintian.log"
	[ "$status" -eq 0 ] || die "lintian reports errors (E: above)"
fi
