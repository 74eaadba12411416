#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The long reliability pass (`make fuzz`): in one throwaway guest
# (scripts/vm-run), the fuzzer for a million calls, then the reliability
# suite with 1000 producer and 1000 consumer kills and 100 exit-with-waits
# rounds, then a leak check (debugfs zchan/stats, kmemleak when the kernel
# has it) and `rmmod zchan`.  The guest kernel log must stay clean
# (vm-run fails the run on any BUG/WARNING/KASAN/lockdep/kmemleak report).
#
# The figures land in build/fuzz-results/ (log + summary); the script
# prints a summary and exits non-zero if anything failed.
#
# Usage: tests/fuzz/run-long.sh [--calls N] [--procs N] [--kills N]
#            [--exits N] [--seed S] [--kernel VMLINUZ] [--append ARGS]
#            [--smp N] [--timeout S]
# Example (debug kernel):
#   tests/fuzz/run-long.sh --kernel "$(scripts/debug-kernel/build.sh --print)" \
#       --append no5lvl --smp 1

set -uo pipefail

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
calls=1000000
procs=4
kills=1000
exits=100
seed=$(date +%s)
kernel=""
append=""
smp=""
timeout=5400

if [ "${1:-}" = "--in-guest" ]; then
	# Inside the guest (cwd tests/): run the passes, then the leak check.
	shift
	calls=$1 procs=$2 kills=$3 exits=$4 seed=$5
	status=0
	echo "@@long: fuzz begin"
	fuzz/zchan_fuzz --seed "$seed" --iterations "$calls" --procs "$procs" \
		--time 3000 --json || status=1
	echo "@@long: fuzz end"
	echo "@@long: reliability begin"
	ZCHAN_REL_KILLS=$kills ZCHAN_REL_EXITS=$exits ZCHAN_REL_SEED=$seed \
		reliability/zchan_reliability || status=1
	echo "@@long: reliability end"
	echo "@@long: stats $(tr '\n' ' ' </sys/kernel/debug/zchan/stats)"
	if [ -w /sys/kernel/debug/kmemleak ]; then
		sleep 6
		echo scan >/sys/kernel/debug/kmemleak
		sleep 6
		echo scan >/sys/kernel/debug/kmemleak
		leaks=$(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak)
		echo "@@long: kmemleak $leaks"
		[ "$leaks" -eq 0 ] || { cat /sys/kernel/debug/kmemleak; status=1; }
	fi
	if rmmod zchan; then
		echo "@@long: rmmod ok"
	else
		echo "@@long: rmmod failed"
		status=1
	fi
	exit $status
fi

while [ $# -gt 0 ]; do
	case $1 in
	--calls) calls=$2; shift 2 ;;
	--procs) procs=$2; shift 2 ;;
	--kills) kills=$2; shift 2 ;;
	--exits) exits=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--kernel) kernel=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	-h|--help) sed -n '3,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "run-long: unknown option $1" >&2; exit 2 ;;
	esac
done

make -s -C "$TOP" lib >/dev/null && make -s -C "$TOP/tests" fuzz/zchan_fuzz reliability/zchan_reliability ||
	{ echo "run-long: build failed" >&2; exit 1; }
results=$TOP/build/fuzz-results
mkdir -p "$results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log=$results/long-$stamp.log
vm_args=(--timeout "$timeout")
[ -z "$kernel" ] || vm_args+=(--kernel "$kernel")
[ -z "$append" ] || vm_args+=(--append "$append")
[ -z "$smp" ] || vm_args+=(--smp "$smp")

echo "run-long: seed $seed, $calls calls in $procs processes, $kills kills per direction, $exits exit rounds${kernel:+, kernel $kernel}"
echo "run-long: log $log"
start=$(date +%s)
cd "$TOP/tests" || exit 1
"$TOP/scripts/vm-run" "${vm_args[@]}" -- ./fuzz/run-long.sh --in-guest \
	"$calls" "$procs" "$kills" "$exits" "$seed" >"$log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))

json=$(grep -m1 '^{"seed"' "$log")
fuzz_calls=$(sed -n 's/.*"calls":\([0-9]*\),"seconds".*/\1/p' <<<"$json")
fuzz_failed=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' <<<"$json")
prod_kills=$(sed -n 's/^# \([0-9]*\) producer kills survived, \([0-9]*\) messages.*/\1 \2/p' "$log")
cons_kills=$(sed -n 's/^# \([0-9]*\) consumer kills survived.*/\1/p' "$log")
rel=$(grep -E '^# (Totals|FAILED|PASSED)' "$log" | tail -n1)
{
	echo "date: $stamp"
	echo "kernel: ${kernel:-default (vm-run)}"
	echo "seed: $seed"
	echo "elapsed_s: $elapsed"
	echo "vm_run_status: $status"
	echo "fuzz_calls: ${fuzz_calls:-0}"
	echo "fuzz_failed: ${fuzz_failed:-?}"
	echo "producer_kills_survived: ${prod_kills%% *}"
	echo "messages_received_intact: ${prod_kills##* }"
	echo "consumer_kills_survived: ${cons_kills:-0}"
	echo "reliability: ${rel:-?}"
	echo "$(grep -m1 '^@@long: stats' "$log" | sed 's/^@@long: //')"
	echo "$(grep -m1 '^@@long: kmemleak' "$log" | sed 's/^@@long: //')"
	echo "$(grep -m1 '^@@long: rmmod' "$log" | sed 's/^@@long: //')"
} | tee "$results/long-$stamp.summary"
ln -sfn "long-$stamp.summary" "$results/latest.summary"
if [ "$status" -ne 0 ]; then
	echo "run-long: FAILED (vm-run status $status; see $log)"
	grep -E '^not ok|^# first unexpected|vm-run:' "$log" | head -n 20
	exit 1
fi
echo "run-long: passed in ${elapsed}s"
