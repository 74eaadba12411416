#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# zchan.ko through DKMS (NATIVE_TESTS), for every kernel installed with
# its headers (/lib/modules/VERSION/build): `make dkms-source` (what the
# zchan-dkms package ships, see deb-test.sh), then `dkms add` and
# `dkms build` with private --sourcetree, --dkmstree and --installtree and
# a private module-signing key, all under build/pkg-dkms/, so nothing on
# the host changes (checked).  Each module built is then loaded in a guest
# of its kernel (scripts/vm-run --module), where vm-run/zchan_dev_test and a
# verified zchan-bench stream over the kernel backend run.  One result per
# kernel and step, each naming its kernel.  Prints TAP.

set -u

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
work=$TOP/build/pkg-dkms
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$TOP/dkms.conf")
dev_test=$TOP/tests/vm-run/zchan_dev_test
bench=$TOP/tools/zchan-bench/zchan-bench

kernels=()
for d in /lib/modules/*/; do
	k=$(basename "$d")
	[ -f "$d/build/Makefile" ] && kernels+=("$k")
done
mapfile -t kernels < <(printf '%s\n' ${kernels[@]+"${kernels[@]}"} | sort -V)

. "$TOP/tests/tap.sh"
tap_plan "$((2 * ${#kernels[@]} + 1))"

start=$(date +%s)
rm -rf "$work"
mkdir -p "$work/src" "$work/dkms" "$work/install" "$work/ko"
stamp=$work/stamp
touch "$stamp"
dkms_args=(-m zchan -v "$version" --sourcetree "$work/src"
	--dkmstree "$work/dkms" --installtree "$work/install")
# dkms signs what it builds, creating /var/lib/dkms/mok.key unless told
# otherwise: a private key instead.
export mok_signing_key=$work/mok.key mok_certificate=$work/mok.der

make -s -f "$TOP/scripts/deb.mk" TOP="$TOP" dkms-source DKMS_SRC="$work/src/zchan-$version" &&
	dkms add "${dkms_args[@]}" >"$work/add.log" 2>&1
added=$?
[ "$added" -eq 0 ] || show "$work/add.log"

for k in ${kernels[@]+"${kernels[@]}"}; do
	t=$(date +%s)
	log=$work/build-$k.log
	if [ "$added" -eq 0 ]; then
		dkms build "${dkms_args[@]}" -k "$k" -j 2 >"$log" 2>&1
		status=$?
	else
		echo "dkms add failed" >"$log"
		status=1
	fi
	ko=""
	built=$(ls "$work/dkms/zchan/$version/$k"/*/module/zchan.ko* 2>/dev/null | head -n1)
	case $built in
	*.ko) ko=$built ;;
	*.ko.xz) xz -dc "$built" >"$work/ko/zchan-$k.ko" && ko=$work/ko/zchan-$k.ko ;;
	*.ko.zst) zstd -qdc "$built" >"$work/ko/zchan-$k.ko" && ko=$work/ko/zchan-$k.ko ;;
	*.ko.gz) gzip -dc "$built" >"$work/ko/zchan-$k.ko" && ko=$work/ko/zchan-$k.ko ;;
	esac
	if [ "$status" -ne 0 ] || [ -z "$ko" ]; then
		show "$log"
		# dkms keeps the compiler's output in the build directory.
		mlog=$work/dkms/zchan/$version/build/make.log
		[ -f "$mlog" ] && grep -E 'error|warning' "$mlog" | head -n 20 | show
		result 1 "dkms build for $k FAILED (exit $status; log: ${log#"$TOP"/})"
		result 1 "DKMS-built zchan.ko loads in a $k guest: skipped, nothing built"
		continue
	fi
	result 0 "dkms build for $k ($(($(date +%s) - t)) s)"

	t=$(date +%s)
	# One vCPU: under multi-threaded TCG, boot-time text patching now and
	# then crashes a two-vCPU 6.12 guest (an int3 Oops, no module loaded).
	(cd "$TOP/tests" && "$TOP/scripts/vm-run" --module "$ko" --smp 1 --timeout 300 -- sh -c '
		test "$(uname -r)" = "$1" || { echo "guest runs $(uname -r), not $1"; exit 1; }
		grep "^zchan " /proc/modules || exit 1
		"$2" || exit 1
		"$3" -q -m zchan -M stream -s 4K -n 1000 -r 1' sh "$k" "$dev_test" "$bench") \
		>"$work/load-$k.log" 2>&1
	status=$?
	show "$work/load-$k.log"
	result $status "DKMS-built zchan.ko loads in a $k guest: zchan_dev_test and a verified zchan-bench stream pass (vm-run exit $status, $(($(date +%s) - t)) s)"
done

# Nothing of this run outside build/pkg-dkms: no DKMS state or key in
# /var/lib/dkms, no module installed under /lib/modules.
changed=$(find /var/lib/dkms /lib/modules/*/updates /lib/modules/*/extra \
	-newer "$stamp" 2>/dev/null | head -n 5)
[ -z "$changed" ] || echo "$changed" | show
[ -z "$changed" ]
result $? "the host's /var/lib/dkms and /lib/modules are untouched"

echo "# dkms-test: $(($(date +%s) - start)) s for ${#kernels[@]} kernels: ${kernels[*]-none}"
[ "$failures" -eq 0 ]
