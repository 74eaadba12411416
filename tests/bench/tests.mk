# SPDX-License-Identifier: MIT OR LGPL-2.1
#
# zchan-bench's tests (included by tests/Makefile, cwd = tests/): its
# options, its JSON/CSV/plot output, and the paths that must fail (a byte
# corrupted in transit, a stalled run), and the verdicts rst-tables.py
# gives on issue 10's targets.  Scripts printing TAP; the guest variant
# also requires the zchan kernel backend to run.

BENCH_BIN := $(TOP)/tools/zchan-bench/zchan-bench

NATIVE_TESTS += bench/test-zchan-bench.sh bench/test-rst-tables.py
GUEST_TESTS += bench/test-zchan-bench-guest.sh

bench/test-zchan-bench.sh bench/test-zchan-bench-guest.sh: $(BENCH_BIN)

# tools/Makefile knows how to build it (with the zchan methods once the
# library exists); asking it every time is cheap and never stale
$(BENCH_BIN): bench-tool-force | $(LIBZCHAN_A)
	$(Q)$(MAKE) --no-print-directory -C $(TOP)/tools TOP=$(TOP) all

.PHONY: bench-tool-force
bench-tool-force:
