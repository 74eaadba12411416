#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-debug: the whole guest suite on the KASAN + lockdep + kmemleak
# kernel of each series (scripts/debug-kernel/build.sh builds it once),
# in guests of one vCPU each, run side by side: one host CPU apiece, and
# about half an hour each under TCG.  One vCPU because qemu's TCG code
# patching races with perf_event_open and boot-time text patching on two.
#
# Usage: scripts/debug-kernel/check.sh [SERIES...]   (default: every
# supported series, scripts/kernels.sh --series)
#
# Each series' output goes to build/check-debug-SERIES.log and is printed
# when all are done, followed by one summary line per series.  Exit
# status: 0 if every series passed.

set -uo pipefail

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '3,/^$/s/^# \{0,1\}//p' "$0"
	exit 0
fi
# shellcheck disable=SC2046
[ $# -gt 0 ] || set -- $("$TOP/scripts/kernels.sh" --series)
[ $# -gt 0 ] || { echo "check-debug: no supported kernel series" >&2; exit 1; }

# Build (or reuse) every kernel first: a build takes both CPUs.
declare -A image
for s; do
	image[$s]=$("$TOP/scripts/debug-kernel/build.sh" --series "$s") || {
		echo "check-debug: building the $s debug kernel FAILED" >&2
		exit 1
	}
done

mkdir -p "$TOP/build"
start=$(date +%s)
for s; do
	echo "check-debug: $s: ${image[$s]} (log: build/check-debug-$s.log)"
	(
		ZCHAN_VM_KERNEL=${image[$s]} ZCHAN_VM_ARGS="--append no5lvl --smp 1" \
		ZCHAN_GUEST_TIMEOUT=5400 ZCHAN_GUEST_TEST_TIMEOUT=2400 \
			"$TOP/tests/run-tests.sh" --no-lint --no-native \
			>"$TOP/build/check-debug-$s.log" 2>&1
		echo $? >"$TOP/build/check-debug-$s.status"
	) &
done
wait

failed=0
for s; do
	cat "$TOP/build/check-debug-$s.log"
done
for s; do
	status=$(cat "$TOP/build/check-debug-$s.status" 2>/dev/null || echo 1)
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$TOP/build/check-debug-$s.log" | tail -n1)
	echo "check-debug: $s debug kernel: ${summary:-no summary} (exit $status)"
	[ "$status" -eq 0 ] || failed=1
done
echo "check-debug: $(($(date +%s) - start)) s for the guest suites"
exit $failed
