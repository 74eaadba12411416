#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run zchan's test suite and print one summary line, "N passed, N failed".
# `make check` builds the library, tools and tests first and then runs this.
#
#   1. lint: checkpatch.pl over the module (`make checkpatch`)
#   2. for each kernel zchan.ko is built for (`make print-kernels`: every
#      installed Debian 6.1 and 6.12 kernel, or KDIR's alone): build
#      zchan.ko into build/module-VERSION/ (one result: it must build
#      without a warning) and run sparse over it (one result)
#   3. NATIVE_TESTS (tests/*/tests.mk), one after another, on the host
#   4. for each of those kernels: GUEST_TESTS, all in one qemu guest
#      (scripts/vm-run --kernel /boot/vmlinuz-VERSION) with that kernel's
#      zchan.ko loaded; the guest kernel's log verdict (no
#      BUG/WARNING/Oops/...) is one more result.  Each result names the
#      kernel the guest reported (uname -r).  A kernel zchan.ko did not
#      build for has failed in step 2; its guest suite does not run.
#
# Every ok/not ok line a program prints at column 0 (TAP) is one result;
# a program that exits non-zero without a `not ok` line is one failure,
# and so is one that prints fewer results than its plan (1..N) announces
# (once: a crash that also cut the plan short is one failure).
# Logs go to build/test-results/ (latest: the last run); the time each
# phase took is printed with the results.
#
# Usage: tests/run-tests.sh [--no-lint] [--no-native] [--no-guest]
#                            [--native "PROGS"] [--guest "PROGS"]
# (--native/--guest replace the lists from tests/*/tests.mk; KDIR=DIR in
# the environment tests that one kernel only)
# Environment: ZCHAN_TEST_TIMEOUT (seconds per native program, default 900),
# ZCHAN_GUEST_TIMEOUT (each guest run, default 900),
# ZCHAN_GUEST_TEST_TIMEOUT (seconds per guest program, default 300),
# ZCHAN_VM_KERNEL (the guests' kernel images, space-separated, instead of
# the kernels of step 2: vm-run --kernel builds zchan.ko for each; step 2
# is skipped), ZCHAN_VM_ARGS (more vm-run options),
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
	-h|--help) sed -n '3,38s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "run-tests: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

rm -rf "$results"
mkdir -p "$results" || { echo "run-tests: cannot create $results" >&2; exit 1; }
if [ -z "${ZCHAN_TEST_RESULTS:-}" ]; then
	ln -sfn "$(basename "$results")" "$TOP/build/test-results/latest"
	ls -d "$TOP"/build/test-results/2*/ 2>/dev/null | sort | head -n -10 | xargs -r rm -rf
fi
passed=0
failed=0
report=()
declare -A kernel_passed=() kernel_failed=() kernel_note=()
kernel_labels=()
phases=()
run_start=$SECONDS

# record NAME LOG STATUS [KERNEL [WHERE [SECONDS]]]: count the TAP results
# of one program; KERNEL (a release) and WHERE ("guest") label it, SECONDS
# is how long it ran (make check has a time budget: this shows what eats it).
record() {
	local name=$1 log=$2 status=$3 kernel=${4:-} where=${5:-} secs=${6:-}
	local ok notok plan fail detail label
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
	[ -z "$secs" ] || detail="$detail ($secs s)"
	passed=$((passed + ok))
	failed=$((failed + fail))
	label=$name
	if [ -n "$kernel" ]; then
		label="$name (${where:+$where }$kernel)"
		kernel_passed[$kernel]=$((${kernel_passed[$kernel]:-0} + ok))
		kernel_failed[$kernel]=$((${kernel_failed[$kernel]:-0} + fail))
	fi
	if [ "$fail" -eq 0 ]; then
		report+=("$(printf 'PASS  %-34s %s' "$label" "$detail")")
	else
		report+=("$(printf 'FAIL  %-34s %s  (log: %s)' "$label" "$detail" "${log#"$TOP"/}")")
	fi
}

# record_step NAME LOG STATUS [KERNEL [WHERE]]: a step whose output has no
# TAP (a build, a list): exit 0 is one pass, anything else one failure,
# explained at the end of LOG.
record_step() {
	grep -v '^\(not \)\{0,1\}ok ' "$2" >"$2.step"
	mv -f "$2.step" "$2"
	record "$@"
}

# phase NAME: the time since the last call goes to the previous phase.
phase_start=$SECONDS
phase_name=""
phase() {
	[ -z "$phase_name" ] || phases+=("$phase_name $((SECONDS - phase_start)) s")
	phase_name=$1
	phase_start=$SECONDS
}

# The kernel's label, once per kernel, in the order first seen.
add_kernel_label() {
	local k
	for k in ${kernel_labels[@]+"${kernel_labels[@]}"}; do [ "$k" != "$1" ] || return 0; done
	kernel_labels+=("$1")
}

logname() { echo "$results/$(echo "$1" | tr '/ ' '__').log"; }

cd "$TOP/tests" || { echo "run-tests: cannot cd to $TOP/tests" >&2; exit 1; }
# The lists come from make; a make that fails is a failure, not an empty list.
list_tests() { # list_tests TARGET
	local log
	log=$(logname "$1")
	if ! make -s --no-print-directory -C "$TOP/tests" "$1" >"$log" 2>&1; then
		echo "run-tests: make -C tests $1 failed:" >&2
		cat "$log" >&2
		record_step "make -C tests $1" "$log" 1
		return 1
	fi
	cat "$log"
}
if [ -n "$native_list" ]; then
	native=$native_list
elif [ -n "$do_native" ]; then
	native=$(list_tests print-native-tests) || native=""
fi
if [ -n "$guest_list" ]; then
	guest=$guest_list
elif [ -n "$do_guest" ]; then
	guest=$(list_tests print-guest-tests) || guest=""
fi

# The kernels: "VERSION HEADERS" lines from make, or ZCHAN_VM_KERNEL's
# images (then vm-run builds zchan.ko for each).
kernels=""
images=""
if [ -n "${ZCHAN_VM_KERNEL:-}" ]; then
	images=$ZCHAN_VM_KERNEL
elif [ -n "$do_lint$do_guest" ]; then
	log=$(logname kernels)
	if make -s --no-print-directory -C "$TOP" print-kernels >"$log" 2>&1 && [ -s "$log" ]; then
		kernels=$(cat "$log")
	else
		echo "run-tests: no kernel to build zchan.ko for: install the kernel headers and images (scripts/install-deps.sh)" >>"$log"
		record_step "kernels (make print-kernels)" "$log" 1
	fi
fi

if [ -n "$do_lint" ]; then
	phase lint
	echo "=== lint: make checkpatch"
	log=$(logname checkpatch)
	make --no-print-directory -C "$TOP" checkpatch 2>&1 | tee "$log"
	record checkpatch "$log" "${PIPESTATUS[0]}"
fi

# zchan.ko for each kernel, then sparse over it.  A kernel it does not
# build for is dropped from the guest runs.
built=()
while read -r kver kdir; do
	[ -n "$kver" ] || continue
	phase "build $kver"
	add_kernel_label "$kver"
	out=$TOP/build/module-$kver
	echo "=== zchan.ko for $kver: make module KDIR=$kdir O=${out#"$TOP"/}"
	log=$(logname "zchan.ko $kver")
	# Compile every file again, or the warnings of an earlier build
	# would go unseen.
	[ ! -d "$out/module" ] || find "$out/module" -name '*.o' -delete
	make --no-print-directory -C "$TOP" module KDIR="$kdir" O="$out" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	if [ "$status" -eq 0 ] && grep -q 'warning:' "$log"; then
		echo "run-tests: zchan.ko for $kver built with warnings" | tee -a "$log"
		status=1
	elif [ "$status" -ne 0 ]; then
		echo "run-tests: zchan.ko does not build for $kver: FAILED (its guest suite does not run)" | tee -a "$log"
	fi
	record_step "zchan.ko build" "$log" "$status" "$kver"
	if [ "$status" -eq 0 ]; then
		built+=("/boot/vmlinuz-$kver")
	else
		kernel_note[$kver]=" (zchan.ko did not build: no guest suite)"
	fi
	if [ -n "$do_lint" ] && [ "$status" -eq 0 ]; then
		echo "=== sparse for $kver: make sparse KDIR=$kdir O=${out#"$TOP"/}"
		log=$(logname "sparse $kver")
		make --no-print-directory -C "$TOP" sparse KDIR="$kdir" O="$out" 2>&1 | tee "$log"
		record_step sparse "$log" "${PIPESTATUS[0]}" "$kver"
	fi
done <<<"$kernels"
[ -n "$images" ] || images=${built[*]+"${built[*]}"}

if [ -n "$do_native" ]; then
	phase native
	for t in $native; do
		echo "=== $t"
		log=$(logname "$t")
		case $t in /*) prog=$t ;; *) prog=./$t ;; esac
		prog_start=$SECONDS
		if [ -x "$prog" ]; then
			timeout -k 10 "${ZCHAN_TEST_TIMEOUT:-900}" "$prog" </dev/null 2>&1 | tee "$log"
			status=${PIPESTATUS[0]}
		else
			echo "run-tests: $t was not built" | tee "$log"
			status=127
		fi
		[ "$status" -ne 124 ] || echo "run-tests: $t timed out" | tee -a "$log"
		record "$t" "$log" "$status" "" "" $((SECONDS - prog_start))
	done
fi

# The guest suite on one kernel image: one vm-run.
run_guest() {
	local image=$1 kver k log vm_status t tlog status secs klog
	kver=${image#/boot/vmlinuz-}
	echo "=== guest $kver: scripts/vm-run --kernel $image -- tests/guest-tests.sh $guest"
	log=$(logname "guest $image")
	# A guest that dies before it starts the suite is booted once more:
	# under multi-threaded TCG the kernel's own boot-time code patching
	# can crash it (an int3 Oops with no module loaded, seen on 6.12).
	# A crash that repeats, such as zchan.ko failing to load, still fails.
	for attempt in 1 2; do
		# shellcheck disable=SC2086
		"$TOP/scripts/vm-run" --timeout "${ZCHAN_GUEST_TIMEOUT:-900}" --kernel "$image" \
			${ZCHAN_VM_ARGS:-} --env ZCHAN_GUEST_TEST_TIMEOUT -- ./guest-tests.sh $guest 2>&1 | tee "$log"
		vm_status=${PIPESTATUS[0]}
		[ "$attempt" = 1 ] && [ "$vm_status" = 125 ] &&
			grep -q 'the guest did not boot' "$log" || break
		mv "$log" "$log.boot-failed"
		echo "run-tests: the $kver guest did not boot (log: ${log#"$TOP"/}.boot-failed); booting it once more"
	done
	# The kernel the guest says it ran, if it got that far.
	k=$(sed -n 's/^@@zchan-test: kernel \(.*\)/\1/p' "$log" | tr -d '\r' | head -n1)
	[ -z "$k" ] || kver=$k
	add_kernel_label "$kver"
	# Split the guest's output into one log per program.
	for t in $guest; do
		tlog=$(logname "$t $kver")
		sed -n "\\|^@@zchan-test: begin $t\$|,\\|^@@zchan-test: end $t |p" "$log" >"$tlog"
		status=$(sed -n "s|^@@zchan-test: end $t \\([0-9]*\\).*|\\1|p" "$tlog" | tail -n1)
		secs=$(sed -n "s|^@@zchan-test: end $t [0-9]* \\([0-9]*\\) s.*|\\1|p" "$tlog" | tail -n1)
		if [ -z "$status" ]; then
			echo "run-tests: $t did not finish in the guest (vm-run exit $vm_status)" >>"$tlog"
			status=255
		fi
		record "$t" "$tlog" "$status" "$kver" guest "$secs"
	done
	# The guest kernel's verdict: vm-run fails a run whose kernel log shows
	# a problem (123), that timed out (124) or that did not boot (125).
	klog=$(logname "guest kernel log $kver")
	case $vm_status in
	123) echo "not ok 1 guest kernel log: the kernel reported a problem (see $log)" ;;
	124) echo "not ok 1 guest kernel log: vm-run timed out (see $log)" ;;
	125) echo "not ok 1 guest kernel log: the guest did not boot or zchan.ko did not load (see $log)" ;;
	*) echo "ok 1 guest kernel log: no BUG, WARNING, Oops, KASAN or lockdep report" ;;
	esac >"$klog"
	record "kernel log" "$klog" 0 "$kver" guest
}

if [ -n "$do_guest" ] && [ -n "$guest" ]; then
	export ZCHAN_GUEST_TEST_TIMEOUT=${ZCHAN_GUEST_TEST_TIMEOUT:-300}
	for image in $images; do
		phase "guest ${image#/boot/vmlinuz-}"
		run_guest "$image"
	done
fi
phase ""

echo
echo "=== results"
for r in ${report[@]+"${report[@]}"}; do echo "$r"; done
for k in ${kernel_labels[@]+"${kernel_labels[@]}"}; do
	echo "kernel $k: ${kernel_passed[$k]:-0} passed, ${kernel_failed[$k]:-0} failed${kernel_note[$k]:-}"
done
[ ${#phases[@]} -eq 0 ] || echo "time: $(IFS=,; echo "${phases[*]}" | sed 's/,/, /g'), total $((SECONDS - run_start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
