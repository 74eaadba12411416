#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests of tests/run-tests.sh's counting (NATIVE_TESTS, no guest): fake
# test programs with known TAP output and exit statuses, and the summary
# line and per-program verdicts they must produce; and a fake kernel tree
# zchan.ko cannot build against.  Prints TAP.

set -u

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-tests-test.XXXXXX")
trap 'rm -rf "$tmp" "$TOP/build/module-9.9.9-fake"' EXIT

. "$TOP/tests/tap.sh"
tap_plan 12

# fake NAME EXIT LINES...: a program printing LINES and exiting EXIT.
fake() {
	local name=$1 status=$2
	shift 2
	{
		echo '#!/bin/sh'
		for l in "$@"; do printf 'echo %q\n' "$l"; done
		echo "exit $status"
	} >"$tmp/$name"
	chmod +x "$tmp/$name"
}

fake all-ok 0 "TAP version 13" "1..2" "ok 1 a" "ok 2 b"
fake one-bad 1 "1..3" "ok 1 a" "not ok 2 b" "ok 3 c"
fake crash 139 "1..2" "ok 1 a"                       # 1 ok, dies: +1 fail
fake short-plan 0 "1..3" "ok 1 a" "ok 2 b"           # 2 ok, plan short: +1 fail
fake silent-ok 0 "no TAP here"                       # counts as 1 passed
fake indented 0 "1..1" "ok 1 a" "  not ok 1 nested"  # only column 0 counts

list=""
for p in all-ok one-bad crash short-plan silent-ok indented; do list="$list $tmp/$p"; done
ZCHAN_TEST_RESULTS=$tmp/results "$TOP/tests/run-tests.sh" --no-lint --no-guest \
	--native "$list" >"$tmp/out" 2>&1
status=$?

# passed: 2 + 2 + 1 + 2 + 1 + 1 = 9; failed: 1 + 1 + 1 = 3
expect "summary counts ok lines and failures" test "$(tail -n1 "$tmp/out")" = "9 passed, 3 failed"
expect "exits non-zero when something failed" test "$status" -ne 0
expect "a passing program is reported PASS" grep -q "^PASS  $tmp/all-ok " "$tmp/out"
expect "a not ok line makes its program FAIL" grep -q "^FAIL  $tmp/one-bad " "$tmp/out"
expect "a crash without not ok is a failure" grep -q "^FAIL  $tmp/crash .*exit 139" "$tmp/out"
expect "results missing from the plan are a failure" grep -q "^FAIL  $tmp/short-plan .*1 of 3 never ran" "$tmp/out"
expect "indented TAP lines are not counted" grep -q "^PASS  $tmp/indented " "$tmp/out"

ZCHAN_TEST_RESULTS=$tmp/results "$TOP/tests/run-tests.sh" --no-lint --no-guest \
	--native "$tmp/all-ok $tmp/silent-ok" >"$tmp/out2" 2>&1
status=$?
expect "all passing: exit 0" test "$status" -eq 0
expect "all passing: summary" test "$(tail -n1 "$tmp/out2")" = "3 passed, 0 failed"

# A kernel zchan.ko does not build for: a named failure, and no guest.
mkdir -p "$tmp/kdir/include/generated"
printf 'modules:\n\t@echo "fake kernel tree: error: cannot build"; exit 1\n' >"$tmp/kdir/Makefile"
echo '#define UTS_RELEASE "9.9.9-fake"' >"$tmp/kdir/include/generated/utsrelease.h"
KDIR=$tmp/kdir ZCHAN_TEST_RESULTS=$tmp/results "$TOP/tests/run-tests.sh" --no-lint \
	--no-native --guest "$tmp/all-ok" >"$tmp/out3" 2>&1
status=$?
expect "unbuildable kernel: exit non-zero" test "$status" -ne 0
expect "unbuildable kernel: its build FAILs, by name" \
	grep -q "^FAIL  zchan.ko build (9.9.9-fake) " "$tmp/out3"
expect "unbuildable kernel: said so in its line, no guest run" sh -c \
	'grep -qx "kernel 9.9.9-fake: 0 passed, 1 failed (zchan.ko did not build: no guest suite)" "$1" &&
	! grep -q "=== guest" "$1"' sh "$tmp/out3"

[ "$failures" -eq 0 ] || show "$tmp/out" "$tmp/out3"
[ "$failures" -eq 0 ]
