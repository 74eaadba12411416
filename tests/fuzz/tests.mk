# SPDX-License-Identifier: GPL-2.0
#
# The zchan fuzzer (included by tests/Makefile, cwd = tests/).
#
# fuzz/zchan_fuzz is the fuzzer itself (see its -h); fuzz/fuzz-check.sh,
# a GUEST_TEST, runs a short fixed-seed pass of it in `make check`.
# fuzz/run-long.sh runs the long pass (`make fuzz`) through scripts/vm-run.

FUZZ_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
	-Wno-sign-compare $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS)

GUEST_TESTS += fuzz/fuzz-check.sh
TEST_CLEAN += fuzz/zchan_fuzz

fuzz/fuzz-check.sh: fuzz/zchan_fuzz

fuzz/zchan_fuzz: fuzz/zchan_fuzz.c $(TEST_COMMON_HDRS) $(TOP)/include/uapi/linux/zchan.h
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(FUZZ_CFLAGS) -o $@ $< -luring
