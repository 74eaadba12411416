#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run zchan's test suite and print one summary line, "N passed, N failed".
# `make check` builds everything first and then runs this.
#
#   1. lint (`make lint`): one test
#   2. NATIVE_TESTS (tests/*/tests.mk), one after another, on the host
#   3. GUEST_TESTS, all in one qemu guest (tools/vm-run) with zchan.ko
#      loaded; the guest kernel's log verdict (no BUG/WARNING/Oops/...)
#      is one more test
#
# Every ok/not ok line a program prints at column 0 (TAP) is one result;
# a program that exits non-zero without a `not ok` line is one failure,
# and so is one that prints fewer results than its plan (1..N) announces
# (once: a crash that also cut the plan short is one failure).
# Logs go to build/test-results/ (latest: the last run).
#
# Usage: tests/run-tests.sh [--no-lint] [--no-native] [--no-guest]
#                            [--native "PROGS"] [--guest "PROGS"]
# (--native/--guest replace the lists from tests/*/tests.mk)
# Environment: ZCHAN_TEST_TIMEOUT (seconds per native program, default 900),
# ZCHAN_GUEST_TIMEOUT (the whole guest run, default 900),
# ZCHAN_GUEST_TEST_TIMEOUT (seconds per guest program, default 300),
# ZCHAN_VM_KERNEL (the guest's kernel image, vm-run --kernel; default: the
# one zchan.ko was built for), ZCHAN_VM_ARGS (more vm-run options),
# ZCHAN_TEST_RESULTS (log directory, default build/test-results/DATE-PID).

set -uo pipefail

TOP=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
# One log directory per run (runs in the same tree may overlap), the
# newest linked as build/test-results/latest, the last 10 kept.
if [ -n "${ZCHAN_TEST_RESULTS:-}" ]; then
	results=$ZCHAN_TEST_RESULTS
else
	results=$TOP/build/test-results/$(date +%Y%m%d-%H%M%S)-$$
fi
do_lint=1 do_native=1 do_guest=1
native_list="" guest_list=""
while [ $# -gt 0 ]; do
	case $1 in
	--no-lint) do_lint="" ;;
	--no-native) do_native="" ;;
	--no-guest) do_guest="" ;;
	--native) native_list=${2-}; [ $# -ge 2 ] && shift ;;
	--guest) guest_list=${2-}; [ $# -ge 2 ] && shift ;;
	-h|--help) sed -n '3,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "run-tests: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

rm -rf "$results"
mkdir -p "$results" || exit 1
if [ -z "${ZCHAN_TEST_RESULTS:-}" ]; then
	ln -sfn "$(basename "$results")" "$TOP/build/test-results/latest"
	ls -d "$TOP"/build/test-results/2*/ 2>/dev/null | sort | head -n -10 | xargs -r rm -rf
fi
passed=0
failed=0
report=()

# record NAME LOG STATUS [WHERE]: count the TAP results of one program.
record() {
	local name=$1 log=$2 status=$3 where=${4:-} ok notok plan fail detail
	ok=$(grep -c '^ok ' "$log")
	notok=$(grep -c '^not ok ' "$log")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
	fail=$notok
	detail="$ok ok"
	[ "$notok" -eq 0 ] || detail="$detail, $notok not ok"
	if [ -n "$plan" ] && [ $((ok + notok)) -lt "$plan" ]; then
		detail="$detail, $((plan - ok - notok)) of $plan never ran"
	fi
	# One failure for a program that died or stopped early without a
	# not ok line to show for it.
	if [ "$status" -ne 0 ] && [ "$notok" -eq 0 ]; then
		fail=$((fail + 1))
	elif [ -n "$plan" ] && [ $((ok + notok)) -lt "$plan" ]; then
		fail=$((fail + 1))
	fi
	[ "$status" -eq 0 ] || detail="$detail, exit $status"
	if [ $((ok + notok)) -eq 0 ] && [ "$fail" -eq 0 ]; then
		ok=1	# no TAP output and exit 0: one passing test
		detail="passed"
	fi
	passed=$((passed + ok))
	failed=$((failed + fail))
	if [ "$fail" -eq 0 ]; then
		report+=("$(printf 'PASS  %-34s %s' "$name$where" "$detail")")
	else
		report+=("$(printf 'FAIL  %-34s %s  (log: %s)' "$name$where" "$detail" "${log#"$TOP"/}")")
	fi
}

logname() { echo "$results/$(echo "$1" | tr '/ ' '__').log"; }

cd "$TOP/tests" || exit 1
if [ -n "$native_list" ]; then
	native=$native_list
else
	native=$(make -s --no-print-directory -C "$TOP/tests" print-native-tests) || native=""
fi
if [ -n "$guest_list" ]; then
	guest=$guest_list
else
	guest=$(make -s --no-print-directory -C "$TOP/tests" print-guest-tests) || guest=""
fi

if [ -n "$do_lint" ]; then
	echo "=== lint (make lint)"
	log=$(logname lint)
	make --no-print-directory -C "$TOP" lint 2>&1 | tee "$log"
	record lint "$log" "${PIPESTATUS[0]}"
fi

if [ -n "$do_native" ]; then
	for t in $native; do
		echo "=== $t"
		log=$(logname "$t")
		case $t in /*) prog=$t ;; *) prog=./$t ;; esac
		if [ -x "$prog" ]; then
			timeout -k 10 "${ZCHAN_TEST_TIMEOUT:-900}" "$prog" </dev/null 2>&1 | tee "$log"
			status=${PIPESTATUS[0]}
		else
			echo "run-tests: $t was not built" | tee "$log"
			status=127
		fi
		[ "$status" -ne 124 ] || echo "run-tests: $t timed out" | tee -a "$log"
		record "$t" "$log" "$status"
	done
fi

if [ -n "$do_guest" ] && [ -n "$guest" ]; then
	echo "=== guest: tools/vm-run -- tests/guest-tests.sh $guest"
	log=$results/guest.log
	ZCHAN_GUEST_TEST_TIMEOUT=${ZCHAN_GUEST_TEST_TIMEOUT:-300} \
	# shellcheck disable=SC2086
	"$TOP/tools/vm-run" --timeout "${ZCHAN_GUEST_TIMEOUT:-900}" \
		${ZCHAN_VM_KERNEL:+--kernel "$ZCHAN_VM_KERNEL"} ${ZCHAN_VM_ARGS:-} \
		--env ZCHAN_GUEST_TEST_TIMEOUT -- ./guest-tests.sh $guest 2>&1 | tee "$log"
	vm_status=${PIPESTATUS[0]}
	# Split the guest's output into one log per program.
	for t in $guest; do
		tlog=$(logname "$t")
		sed -n "\\|^@@zchan-test: begin $t\$|,\\|^@@zchan-test: end $t |p" "$log" >"$tlog"
		status=$(sed -n "s|^@@zchan-test: end $t \\([0-9]*\\).*|\\1|p" "$tlog" | tail -n1)
		if [ -z "$status" ]; then
			echo "run-tests: $t did not finish in the guest (vm-run exit $vm_status)" >>"$tlog"
			status=255
		fi
		record "$t" "$tlog" "$status" " (guest)"
	done
	# The guest kernel's verdict: vm-run fails a run whose kernel log shows
	# a problem (123), that timed out (124) or that did not boot (125).
	klog=$(logname "guest kernel log")
	case $vm_status in
	123) echo "not ok 1 guest kernel log: the kernel reported a problem (see $log)" ;;
	124) echo "not ok 1 guest kernel log: vm-run timed out (see $log)" ;;
	125) echo "not ok 1 guest kernel log: the guest did not boot or zchan.ko did not load (see $log)" ;;
	*) echo "ok 1 guest kernel log: no BUG, WARNING, Oops, KASAN or lockdep report" ;;
	esac >"$klog"
	record "kernel log" "$klog" 0 " (guest)"
fi

echo
echo "=== results"
for r in ${report[@]+"${report[@]}"}; do echo "$r"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
