#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the qemu guest (scripts/vm-run, cwd tests/): each GUEST_TESTS
# program in turn, its output between markers that tests/run-tests.sh uses
# to count each program's TAP results, exit status and run time on the
# host, after a line naming the kernel the results come from.
#
# Usage: ./guest-tests.sh PROG...   (paths relative to tests/)

timeout=${ZCHAN_GUEST_TEST_TIMEOUT:-300}
echo "@@zchan-test: kernel $(uname -r)"
for t in "$@"; do
	echo "@@zchan-test: begin $t"
	start=$(date +%s)
	case $t in /*) prog=$t ;; *) prog=./$t ;; esac
	if [ -x "$prog" ]; then
		timeout -k 10 "$timeout" "$prog" 2>&1
		status=$?
		[ "$status" -ne 124 ] || echo "guest-tests: $t timed out after ${timeout}s"
	else
		echo "guest-tests: $t is not built"
		status=127
	fi
	echo "@@zchan-test: end $t $status $(($(date +%s) - start)) s"
done
exit 0
