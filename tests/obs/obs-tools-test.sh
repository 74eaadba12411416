#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The tracepoint, zchan-top and zchan-lat tests (obs/guest-tools.sh) on
# every kernel the guest suite runs on, each in a guest of its own with ONE
# vCPU: enabling tracepoints and attaching BPF patch kernel text, and under
# multi-threaded TCG that wedged a vCPU of a two-vCPU guest (soft lockups).
# The one-vCPU guests run side by side, a host CPU apiece.
# Runs natively from `make check`.  The kernels are $ZCHAN_VM_KERNEL's
# images if set, else those of `make print-kernels`, as for the main guest
# suite; more vm-run options come from $ZCHAN_VM_ARGS.
#
# Prints one TAP stream: each guest's results renumbered and labelled
# with the kernel, then the guest's kernel-log verdict.

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
GUEST_PLAN=37	# obs/guest-tools.sh's plan

if [ -n "${ZCHAN_VM_KERNEL:-}" ]; then
	images=$ZCHAN_VM_KERNEL
else
	images=$(make -s --no-print-directory -C "$TOP" print-kernels |
		 while read -r kver _; do echo "/boot/vmlinuz-$kver"; done)
fi
# shellcheck disable=SC2086
set -- $images
if [ $# -eq 0 ]; then
	echo "1..1"
	echo "not ok 1 no kernel to boot (make print-kernels lists none)"
	exit 1
fi
echo "TAP version 13"
echo "1..$(($# * (GUEST_PLAN + 1)))"

outdir=$(mktemp -d)
trap 'rm -rf "$outdir"' EXIT
i=0
for image; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	( "$TOP/scripts/vm-run" --timeout "${ZCHAN_OBS_TIMEOUT:-420}" \
		--kernel "$image" ${ZCHAN_VM_ARGS:-} --smp 1 -- \
		"$TOP/tests/obs/guest-tools.sh" >"$outdir/$i.out" 2>&1
	  echo $? >"$outdir/$i.status" ) &
done
wait

n=0
failures=0
i=0
for image; do
	i=$((i + 1))
	kver=${image##*/vmlinuz-}
	out=$(cat "$outdir/$i.out")
	vm_status=$(cat "$outdir/$i.status" 2>/dev/null || echo 125)
	results=$(printf '%s\n' "$out" | awk -v base=$n -v k="$kver" '
		/^(not )?ok [0-9]+/ {
			verdict = $1 == "not" ? "not ok" : "ok"
			sub(/^(not )?ok [0-9]+/, "")
			printf "%s %d%s [%s]\n", verdict, base + ++c, $0, k
			next
		}
		/^1\.\.|^TAP version/ { next }
		{ print "# " $0 }')
	printf '%s\n' "$results"
	got=$(printf '%s\n' "$results" | grep -c '^\(not \)\{0,1\}ok ')
	failures=$((failures + $(printf '%s\n' "$results" | grep -c '^not ok ')))
	n=$((n + got))
	while [ "$got" -lt $GUEST_PLAN ]; do
		got=$((got + 1))
		n=$((n + 1))
		failures=$((failures + 1))
		echo "not ok $n obs/guest-tools.sh result $got did not run (vm-run exit $vm_status) [$kver]"
	done
	n=$((n + 1))
	case $vm_status in
	0|1) echo "ok $n guest kernel log: no BUG, WARNING, Oops or lockup report [$kver]" ;;
	*) failures=$((failures + 1))
	   echo "not ok $n guest kernel log or boot: vm-run exit $vm_status [$kver]" ;;
	esac
done
[ $failures -eq 0 ]
