#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The tracepoint, zchan-top and zchan-lat tests (obs/guest-tools.sh) in a
# guest of their own with ONE vCPU: enabling tracepoints and attaching BPF
# patch kernel text, and under multi-threaded TCG that wedged a vCPU of a
# two-vCPU guest (soft lockups).  Runs natively from `make check`; the
# guest kernel is $ZCHAN_VM_KERNEL if set (as for the main guest run),
# more vm-run options come from $ZCHAN_VM_ARGS.  Prints the guest's TAP.

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
# shellcheck disable=SC2086
exec "$TOP/tools/vm-run" --timeout "${ZCHAN_OBS_TIMEOUT:-420}" \
	${ZCHAN_VM_KERNEL:+--kernel "$ZCHAN_VM_KERNEL"} ${ZCHAN_VM_ARGS:-} \
	--smp 1 -- "$TOP/tests/obs/guest-tools.sh"
