# SPDX-License-Identifier: GPL-2.0
#
# The reliability suite (included by tests/Makefile, cwd = tests/): peer
# kills, leak accounting, permissions and isolation, limits, hostile peers
# and exit with io_uring waits in flight.  Guest only.  ZCHAN_REL_KILLS and
# ZCHAN_REL_EXITS scale it (fuzz/run-long.sh runs it with 1000 kills).

REL_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
	-Wno-sign-compare $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS) -I$(KSFT_INC)

GUEST_TESTS += reliability/zchan_reliability
TEST_CLEAN += reliability/zchan_reliability

reliability/zchan_reliability: reliability/zchan_reliability.c $(TEST_COMMON_HDRS) \
		$(KSFT_HDRS) $(LIBZCHAN_A) $(TOP)/include/uapi/linux/zchan.h $(TOP)/include/zchan.h
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $< $(LIBZCHAN_A) -luring -lpthread
