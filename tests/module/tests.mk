# SPDX-License-Identifier: GPL-2.0
#
# zchan.ko selftests (kselftest harness), included by tests/Makefile with
# cwd = tests/.  They need the module, so they run in the guest.

GUEST_TESTS += module/zchan_test
TEST_CLEAN += module/zchan_test

module/zchan_test: module/zchan_test.c $(TEST_COMMON_HDRS) \
		$(TOP)/include/uapi/linux/zchan.h $(KSFT_HDRS)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS) -I$(KSFT_INC) \
		-o $@ $< -luring -lpthread

# ZCHAN_IOC_WAIT's ZCHAN_WAIT_SPIN.
GUEST_TESTS += module/zchan_spin_test
TEST_CLEAN += module/zchan_spin_test

module/zchan_spin_test: module/zchan_spin_test.c $(TEST_COMMON_HDRS) \
		$(TOP)/include/uapi/linux/zchan.h $(KSFT_HDRS)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS) -I$(KSFT_INC) \
		-o $@ $< -luring -lpthread

# libzchan's zchan_send_pages() and zchan_reap() on the kernel backend.
GUEST_TESTS += module/zchan_pages_lib_test
TEST_CLEAN += module/zchan_pages_lib_test

module/zchan_pages_lib_test: module/zchan_pages_lib_test.c \
		$(TEST_COMMON_HDRS) $(TOP)/include/zchan.h \
		$(TOP)/include/uapi/linux/zchan.h $(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS) -I$(KSFT_INC) \
		-o $@ $< $(LIBZCHAN_A) -luring -lpthread

# Many-ended channels at the ioctl level: roles, maxima, lanes; and
# libzchan's kernel backend making and using producer ends.
GUEST_TESTS += module/zchan_fanin_test
TEST_CLEAN += module/zchan_fanin_test

module/zchan_fanin_test: module/zchan_fanin_test.c $(TEST_COMMON_HDRS) \
		$(TOP)/include/zchan.h $(TOP)/include/uapi/linux/zchan.h \
		$(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS) -I$(KSFT_INC) \
		-o $@ $< $(LIBZCHAN_A) -luring -lpthread
