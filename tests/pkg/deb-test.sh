#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Debian packages (NATIVE_TESTS).  Builds them once (binary only,
# scripts/deb.sh --binary) into build/pkg-test/deb/, runs lintian (errors
# fail), checks what each package holds, unpacks libzchan1 and
# libzchan-dev into a temporary root (dpkg-deb -x) and builds an outside
# program (zchan_outside.c) against them with nothing but
# `pkg-config --cflags --libs zchan`, then runs it on the memfd backend,
# and zchan-tools' zchan-bench and python3-zchan's binding, all on the
# unpacked libzchan.so.1.  Prints TAP.

set -u

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
HERE=$TOP/tests/pkg
out=$TOP/build/pkg-test/deb
root=$TOP/build/pkg-test/root
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
version=$(dpkg-parsechangelog -l "$TOP/debian/changelog" -S Version 2>/dev/null)
dkms_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$TOP/dkms.conf")

. "$TOP/tests/tap.sh"
plan=15
tap_plan $plan
deb() { ls "$out/$1"_"$version"_*.deb 2>/dev/null | head -n1; }
# has PKG PATH...: every PATH (relative, ./usr/...) is in package PKG
has() {
	local pkg=$1 missing=0 list
	shift
	list=$(dpkg-deb -c "$(deb "$pkg")" | awk '{ print $6 }')
	for p in "$@"; do
		grep -qxF -- "$p" <<<"$list" || { echo "# $pkg lacks $p"; missing=1; }
	done
	return $missing
}
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
# Every global symbol of userspace/libzchan.map, with its version node,
# is in libzchan1's symbols file (and so in the library).
symbols_cover_map() {
	local symbols missing=0 node="" line
	symbols=$(dpkg-deb -I "$(deb libzchan1)" symbols) || return 1
	while read -r line; do
		case $line in
		*"{"*) node=${line%% *} ;;
		global:|local:|"*;"|"}"*|/*|"") ;;
		*";") grep -qF " ${line%;}@$node " <<<"$symbols" ||
			{ echo "# symbols file lacks ${line%;}@$node"; missing=1; } ;;
		esac
	done <"$TOP/userspace/libzchan.map"
	[ -n "$node" ] && return $missing
}

start=$(date +%s)
rm -rf "$TOP/build/pkg-test"
mkdir -p "$TOP/build/pkg-test"
# No -dbgsym packages: nothing here uses them.
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }noddebs" \
	"$TOP/scripts/deb.sh" --binary --no-lintian "$out" >"$TOP/build/pkg-test/deb.log" 2>&1
status=$?
[ "$status" -eq 0 ] || show "$TOP/build/pkg-test/deb.log"
built=1
for p in zchan-dkms libzchan1 libzchan-dev zchan-tools python3-zchan; do
	[ -n "$(deb $p)" ] || { echo "# no $p package in $out"; built=0; }
done
[ "$status" -eq 0 ] && [ "$built" -eq 1 ]
result $? "dpkg-buildpackage builds zchan-dkms, libzchan1, libzchan-dev, zchan-tools and python3-zchan ($(($(date +%s) - start)) s)"
if [ "$built" -ne 1 ]; then
	for i in $(seq 2 $plan); do result 1 "skipped: no packages"; done
	exit 1
fi

t=$(date +%s)
lintian --fail-on error "$out"/*.deb >"$TOP/build/pkg-test/lintian.log" 2>&1
status=$?
show "$TOP/build/pkg-test/lintian.log"
result $status "lintian reports no error ($(($(date +%s) - t)) s)"

# zchan-dkms: exactly the DKMS source tree `make dkms-source` makes (which
# dkms-test.sh builds), the udev rule, and DKMS registration on install.
src=$TOP/build/pkg-test/dkms-source
make -s -f "$TOP/scripts/deb.mk" TOP="$TOP" dkms-source DKMS_SRC="$src" &&
	dpkg-deb -x "$(deb zchan-dkms)" "$TOP/build/pkg-test/dkms-pkg" &&
	diff -r "$src" "$TOP/build/pkg-test/dkms-pkg/usr/src/zchan-$dkms_version" | show &&
	[ "${PIPESTATUS[0]}" -eq 0 ] &&
	cmp "$TOP/udev/60-zchan.rules" "$TOP/build/pkg-test/dkms-pkg/lib/udev/rules.d/60-zchan.rules" &&
	dpkg-deb -I "$(deb zchan-dkms)" postinst | grep -q 'dkms' &&
	field zchan-dkms Depends | grep -q '\bdkms\b'
result $? "zchan-dkms: the module's DKMS source in /usr/src/zchan-$dkms_version, the udev rule, dkms in postinst and Depends"

# libzchan1: the runtime library alone, in the multiarch libdir.
has libzchan1 "./usr/lib/$ma/libzchan.so.1" "./usr/lib/$ma/libzchan.so.1.0.0" &&
	! dpkg-deb -c "$(deb libzchan1)" | grep -E '\.a$|\.h$|/usr/src/|\.pc$' &&
	field libzchan1 Depends | grep -q liburing &&
	symbols_cover_map
result $? "libzchan1: libzchan.so.1 in /usr/lib/$ma, nothing else, Depends on liburing, a symbols file naming every symbol of libzchan.map"

# One man page per Documentation/man/*.rst: the library's (3, 7) in
# libzchan-dev, the tools' (1, 8) in zchan-tools.
man_pages=() lib_pages=() tool_pages=()
for f in "$TOP"/Documentation/man/*.rst; do
	page=$(basename "$f" .rst)
	path=./usr/share/man/man${page##*.}/$page.gz
	man_pages+=("$path")
	case $page in
	*.[18]) tool_pages+=("$path") ;;
	*) lib_pages+=("$path") ;;
	esac
done

# libzchan-dev: headers, .a, .so link, .pc and the library's man pages.
has libzchan-dev ./usr/include/zchan.h ./usr/include/zchan/linux/zchan.h \
	"./usr/lib/$ma/libzchan.a" "./usr/lib/$ma/libzchan.so" \
	"./usr/lib/$ma/pkgconfig/zchan.pc" "${lib_pages[@]}" &&
	field libzchan-dev Depends | grep -qF "libzchan1 (= $version)"
result $? "libzchan-dev: headers, libzchan.a, libzchan.so, zchan.pc, ${#lib_pages[@]} man pages, Depends on libzchan1 (= $version)"

# zchan-tools: each tool with its man page (lintian: no-manual-page),
# zchan-bench and the BPF tools (built when clang, bpftool, libbpf-dev).
tools=$(dpkg-deb -c "$(deb zchan-tools)" | awk '$6 ~ "^./usr/s?bin/." { print $6 }')
tool_man=()
for t in $tools; do
	case $t in
	./usr/sbin/*) tool_man+=("./usr/share/man/man8/$(basename "$t").8.gz") ;;
	*) tool_man+=("./usr/share/man/man1/$(basename "$t").1.gz") ;;
	esac
done
[ -n "$tools" ] && has zchan-tools ./usr/bin/zchan-bench ./usr/sbin/zchan-top \
	./usr/sbin/zchan-lat "${tool_man[@]}" "${tool_pages[@]}" &&
	field zchan-tools Depends | grep -q libzchan1
result $? "zchan-tools: $(echo $tools | sed 's|\./usr/s*bin/||g') with man pages, Depends on libzchan1"

# The outside program, against the unpacked packages only.
for p in libzchan1 libzchan-dev zchan-tools; do dpkg-deb -x "$(deb $p)" "$root"; done
export PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_LIBDIR=$root/usr/lib/$ma/pkgconfig:/usr/lib/$ma/pkgconfig:/usr/share/pkgconfig
cflags=$(pkg-config --cflags zchan) && libs=$(pkg-config --libs zchan)
status=$?
echo "# pkg-config: $cflags $libs"
[ "$status" -eq 0 ] && [[ " $cflags " == *" -I$root/usr/include "* ]] &&
	[[ " $libs " == *" -L$root/usr/lib/$ma "* ]]
result $? "pkg-config --cflags --libs zchan names the unpacked headers and library"

prog=$TOP/build/pkg-test/zchan_outside
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror -o "$prog" "$HERE/zchan_outside.c" $cflags $libs 2>&1 | show
result "${PIPESTATUS[0]}" "an outside program builds with \`pkg-config --cflags --libs zchan\` alone"

# shellcheck disable=SC2086
cc -Wall -Wextra -Werror -o "$prog-static" "$HERE/zchan_outside.c" $cflags \
	"$root/usr/lib/$ma/libzchan.a" $(pkg-config --static --libs-only-l zchan | sed 's/-lzchan//') 2>&1 | show
[ "${PIPESTATUS[0]}" -eq 0 ] && ZCHAN_BACKEND=memfd "$prog-static" | show && [ "${PIPESTATUS[0]}" -eq 0 ]
result $? "the same program linked with the package's libzchan.a runs (memfd)"

export LD_LIBRARY_PATH=$root/usr/lib/$ma
ldd "$prog" | grep -qF "libzchan.so.1 => $root/usr/lib/$ma/libzchan.so.1" &&
	ZCHAN_BACKEND=memfd "$prog" | show && [ "${PIPESTATUS[0]}" -eq 0 ]
result $? "it runs on the unpacked libzchan.so.1: 1000 messages over memfd, intact"

ldd "$root/usr/bin/zchan-bench" | grep -qF "libzchan.so.1 => $root/usr/lib/$ma/libzchan.so.1" &&
	"$root/usr/bin/zchan-bench" --list | show && [ "${PIPESTATUS[0]}" -eq 0 ] &&
	"$root/usr/bin/zchan-bench" -q -m zchan-memfd -M stream -s 4K -n 2000 -r 1 | show &&
	[ "${PIPESTATUS[0]}" -eq 0 ]
result $? "the packaged zchan-bench runs a verified zchan-memfd stream on it"

# Each packaged tool answers -h (no module or privilege needed for that).
bad=0
for t in $tools; do
	"$root/${t#./}" -h >"$TOP/build/pkg-test/help.out" 2>&1 ||
		{ echo "# ${t#./} -h failed:"; show "$TOP/build/pkg-test/help.out"; bad=1; }
done
result $bad "each packaged tool answers -h"

# python3-zchan: the binding, on the unpacked libzchan.so.1.
pydir=$root/usr/lib/python3/dist-packages
dpkg-deb -x "$(deb python3-zchan)" "$root" &&
	{ ! find "$pydir" -name '*.c' | grep . || { echo "# C source shipped"; false; }; } &&
	ldd "$pydir"/zchan/_zchan.*.so | grep -qF "libzchan.so.1 => $root/usr/lib/$ma/libzchan.so.1" &&
	(cd / && ZCHAN_BACKEND=memfd PYTHONPATH=$pydir /usr/bin/python3 -c '
import multiprocessing, sys, zchan
assert zchan.__file__.startswith(sys.argv[1]), zchan.__file__
def child(w):
    for i in range(100):
        w.send(b"message %d" % i)
r, w = zchan.pipe()
p = multiprocessing.Process(target=child, args=(w,))
p.start()
w.close()
got = [bytes(m) for m in r]
p.join()
assert got == [b"message %d" % i for i in range(100)], got
print("100 messages through the packaged binding")' "$pydir") 2>&1 | show &&
	[ "${PIPESTATUS[0]}" -eq 0 ]
result $? "python3-zchan: the unpacked binding (no C source), on the unpacked libzchan.so.1, passes 100 messages"

# zchan-bench(1) keeps up with zchan-bench -h: every long option.
missing=$("$root/usr/bin/zchan-bench" -h | grep -oE -- '--[a-z][a-z-]*' | sort -u |
	while read -r opt; do
		grep -qF -- "**$opt**" "$TOP/Documentation/man/zchan-bench.1.rst" || echo "$opt"
	done)
[ -z "$missing" ] || echo "# not in Documentation/man/zchan-bench.1.rst:" $missing
[ -z "$missing" ]
result $? "zchan-bench(1) describes every long option zchan-bench -h lists"

# Every man page renders without a groff warning.
bad=0
for p in "${man_pages[@]}"; do
	w=$(cd "$root/usr/share/man" && LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$root/${p#./}" 2>&1 >/dev/null)
	[ -z "$w" ] || { echo "# ${p#./}: $w"; bad=1; }
done
result $bad "the ${#man_pages[@]} man pages render without groff warnings"

echo "# deb-test: $(($(date +%s) - start)) s"
[ "$failures" -eq 0 ]
