# SPDX-License-Identifier: MIT OR LGPL-2.1
#
# The test helper library (included by tests/Makefile, cwd = tests/, before
# the fragments that use it): header-only.  A test program that includes
# any of its headers lists $(TEST_COMMON_HDRS) among its prerequisites.
#
# common/helpers_test (native) tests the helpers themselves: a payload
# checker that passed anything, or a child helper that took a crash for
# an exit, would let every test built on them pass.

TEST_COMMON_HDRS := $(wildcard common/*.h)

NATIVE_TESTS += common/helpers_test
TEST_CLEAN += common/helpers_test

common/helpers_test: common/helpers_test.c $(TEST_COMMON_HDRS) $(KSFT_HDRS)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(CFLAGS) -std=gnu11 -D_GNU_SOURCE -Wall -Wextra \
		-Wno-unused-parameter -Wno-sign-compare $(SANITIZE_CFLAGS) \
		-I$(KSFT_INC) -o $@ $<
