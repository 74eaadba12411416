#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/vm-run's own tests (NATIVE_TESTS: runs on the host, boots a few
# short guests, on vm-run's default kernel).  Prints TAP.  vm-run builds
# zchan.ko for that kernel; the test modules in vm-run/warn/ come from
# make -C tests.

set -u

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
VM_RUN=$TOP/scripts/vm-run
WARN_DIR=$TOP/tests/vm-run/warn
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-run-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

. "$TOP/tests/tap.sh"
tap_plan 26

has_line() { grep -qxF -- "$1" "$2"; }

# run NAME VM-RUN-ARGS...: run vm-run, output in $tmp/NAME.out and
# $tmp/NAME.err, exit status in $status, wall time in $elapsed (s).
run() {
	local name=$1 start
	shift
	start=$(date +%s)
	"$VM_RUN" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
	status=$?
	elapsed=$(($(date +%s) - start))
	echo "# vm-run ($name): exit $status after ${elapsed}s"
}

# 1. The module is loaded, /dev/zchan is 0666, rmmod and insmod again work,
# and the module is the one built for the kernel the guest booted.
run module --timeout 300 -- sh -c '
	grep -q "^zchan " /proc/modules && echo loaded
	test -c /dev/zchan && echo chardev
	test "$(stat -c %a /dev/zchan)" = 666 && echo mode-0666
	case $ZCHAN_KO in */build/module-$(uname -r)/module/zchan.ko) echo ko-for-this-kernel ;; esac
	rmmod zchan && echo rmmod
	! grep -q "^zchan " /proc/modules && test ! -e /dev/zchan && echo gone
	insmod "$ZCHAN_KO" && test -c /dev/zchan && echo insmod-again
	rmmod zchan && echo rmmod-again'
expect "vm-run with zchan.ko exits 0" test "$status" -eq 0
for c in loaded chardev mode-0666 ko-for-this-kernel rmmod gone insmod-again rmmod-again; do
	expect "module: $c" has_line "$c" "$tmp/module.out"
done
[ "$failures" -eq 0 ] || show "$tmp/module.out" "$tmp/module.err"

# 2. Exit status, arguments, cwd, environment, stderr and /tmp pass through.
f=$failures
ZCHAN_VMRUN_VAR='a b' ZCHAN_VMRUN_SECRET=x run pass --no-module \
	--env ZCHAN_VMRUN_VAR --env ZCHAN_VMRUN_SET=1 -- sh -c '
	echo "cwd=$(pwd)"
	echo "uid=$(id -u)"
	echo "var=$ZCHAN_VMRUN_VAR set=$ZCHAN_VMRUN_SET secret=${ZCHAN_VMRUN_SECRET-unset}"
	echo to-stderr >&2
	echo written >/tmp/f && echo "tmp=$(cat /tmp/f)"
	printf "[%s]" "$@"; echo
	exit 7' sh "a b" "c'd" '$HOME'
expect "exit status 7 passes through" test "$status" -eq 7
expect "cwd is the caller's" has_line "cwd=$(pwd -P)" "$tmp/pass.out"
expect "COMMAND runs as root" has_line "uid=0" "$tmp/pass.out"
expect "--env passes variables, nothing else leaks" \
	has_line "var=a b set=1 secret=unset" "$tmp/pass.out"
expect "stderr goes to stdout" has_line "to-stderr" "$tmp/pass.out"
expect "/tmp is writable" has_line "tmp=written" "$tmp/pass.out"
expect "arguments keep spaces, quotes and dollars" \
	has_line "[a b][c'd][\$HOME]" "$tmp/pass.out"
[ "$failures" -eq "$f" ] || show "$tmp/pass.out" "$tmp/pass.err"

run false --no-module -- false
expect "vm-run -- false exits 1" test "$status" -eq 1

# 3. A hanging command hits --timeout: 124, promptly.
run timeout --no-module --timeout 15 -- sleep 1000
expect "--timeout on a hanging command exits 124" test "$status" -eq 124
# Not a speed check: only that the guest is stopped long before the
# command would have ended on its own.
expect "--timeout stops the guest, not waiting for COMMAND" test "$elapsed" -lt 500
expect "--timeout says what happened" grep -q "timed out after 15s" "$tmp/timeout.err"

# 4. A kernel WARNING fails the run (123) although COMMAND succeeded.
run warn --module "$WARN_DIR/zchan_warn_test.ko" -- true
expect "a kernel WARNING makes vm-run exit 123" test "$status" -eq 123
expect "the WARNING report is shown" grep -q "WARNING:.*zchan_warn_test" "$tmp/warn.err"
[ "$status" -eq 123 ] || show "$tmp/warn.out" "$tmp/warn.err"

# 5. A module that does not load: 125, COMMAND does not run.
run fail --module "$WARN_DIR/zchan_fail_test.ko" -- echo command-ran
expect "a module that fails to load makes vm-run exit 125" test "$status" -eq 125
expect "COMMAND does not run when the module fails" \
	test ! -s "$tmp/fail.out"
expect "the console tail is shown" grep -q "guest console" "$tmp/fail.err"

# 6. Bad usage fails without booting.
run usage --smp many -- true
expect "bad usage exits 125" test "$status" -eq 125

[ "$failures" -eq 0 ]
