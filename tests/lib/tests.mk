# SPDX-License-Identifier: MIT OR LGPL-2.1
#
# libzchan tests (included by tests/Makefile, cwd = tests/).
#
# One source, two builds: lib/zchan_test_memfd runs natively with the memfd
# backend (NATIVE_TESTS); lib/zchan_test_kernel runs in the guest with the
# kernel backend and a shorter stream (GUEST_TESTS).  $ZCHAN_BACKEND and
# $ZCHAN_TEST_MSGS override the defaults of either binary.
# lib/doc_example is the example of Documentation/library.rst, extracted
# from the document and run as a test so it stays correct.
#
# SANITIZE=1 (passed down from `make check SANITIZE=1`) builds the tests
# with -fsanitize=address,undefined; userspace/Makefile builds the library
# the same way.  `make -C tests lib-valgrind` runs the memfd tests under
# valgrind (memcheck, definite leaks are errors).

LIB_TESTS_BIN := lib/zchan_test_memfd lib/zchan_test_kernel lib/doc_example
LIB_TEST_CFLAGS := $(CFLAGS) -std=gnu11 -D_GNU_SOURCE -Wall -Wextra \
	-Wno-sign-compare -Wno-unused-parameter $(ZCHAN_CFLAGS) -I$(KSFT_INC) \
	$(SANITIZE_CFLAGS)
LIB_TEST_LIBS := $(LIBZCHAN_A) -luring -pthread
LIB_GUEST_MSGS ?= 20000

NATIVE_TESTS += lib/zchan_test_memfd lib/doc_example
GUEST_TESTS += lib/zchan_test_kernel lib/doc_example
TEST_CLEAN += $(LIB_TESTS_BIN) lib/doc_example.c lib/.buildflags

# Rebuild the tests when their flags change (SANITIZE=1 and back).
lib/.buildflags: lib-buildflags
	@echo '$(CC) $(LIB_TEST_CFLAGS)' | cmp -s - $@ || \
		echo '$(CC) $(LIB_TEST_CFLAGS)' > $@

lib/zchan_test_memfd: lib/zchan_test.c $(TEST_COMMON_HDRS) lib/.buildflags $(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) \
		-DZCHAN_TEST_DEFAULT_BACKEND='"memfd"' -o $@ $< $(LIB_TEST_LIBS)

lib/zchan_test_kernel: lib/zchan_test.c $(TEST_COMMON_HDRS) lib/.buildflags $(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) \
		-DZCHAN_TEST_DEFAULT_BACKEND='"kernel"' \
		-DZCHAN_TEST_DEFAULT_MSGS=$(LIB_GUEST_MSGS) -o $@ $< $(LIB_TEST_LIBS)

# The example between the "example-begin"/"example-end" comments.
lib/doc_example.c: $(TOP)/Documentation/library.rst
	$(call quiet_cmd,GEN,$@)
	$(Q)awk '/example-end/ { on = 0 } \
		on && !/^\.\. / { sub(/^   /, ""); print } \
		/example-begin/ { on = 1 }' $< > $@

lib/doc_example: lib/doc_example.c lib/doc_example_test.c lib/.buildflags \
		$(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) -Dmain=doc_example_main \
		-c -o $@.o lib/doc_example.c && \
	$(CC) $(LIB_TEST_CFLAGS) -o $@ lib/doc_example_test.c $@.o \
		$(LIB_TEST_LIBS) && rm -f $@.o

lib-buildflags:

lib-valgrind: lib/zchan_test_memfd
	ZCHAN_BACKEND=memfd ZCHAN_TEST_MSGS=20000 ZCHAN_TEST_VALGRIND=1 valgrind -q \
		--error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite \
		./lib/zchan_test_memfd

.PHONY: lib-valgrind lib-buildflags

# Batches (ZCHAN_MORE, zchan_flush, zchan_release_batch): one binary, both
# backends as fixture variants; the kernel variant runs in the guest.
lib/zchan_batch_test: lib/zchan_batch_test.c $(TEST_COMMON_HDRS) lib/.buildflags $(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) -o $@ $< $(LIB_TEST_LIBS)

NATIVE_TESTS += lib/zchan_batch_test
GUEST_TESTS += lib/zchan_batch_test
TEST_CLEAN += lib/zchan_batch_test

# Fan-in (several producer ends, one consumer end): both backends as
# fixture variants; the kernel variant runs in the guest.
lib/zchan_fanin_test: lib/zchan_fanin_test.c $(TEST_COMMON_HDRS) lib/.buildflags $(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) -o $@ $< $(LIB_TEST_LIBS)

NATIVE_TESTS += lib/zchan_fanin_test
GUEST_TESTS += lib/zchan_fanin_test
TEST_CLEAN += lib/zchan_fanin_test

# Pool placement: where loans land (the offsets zchan_loan() hands out),
# both backends as fixture variants; the kernel variant runs in the guest.
lib/zchan_pool_test: lib/zchan_pool_test.c $(TEST_COMMON_HDRS) lib/.buildflags $(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) -o $@ $< $(LIB_TEST_LIBS)

NATIVE_TESTS += lib/zchan_pool_test
GUEST_TESTS += lib/zchan_pool_test
TEST_CLEAN += lib/zchan_pool_test

# A hostile peer and failed calls (errno presets, forged descriptors,
# handovers, waits with a ZCHAN_MORE queue, a mixed stream with borrows
# held): one binary, both backends as fixture variants.
lib/zchan_hostile_test: lib/zchan_hostile_test.c $(TEST_COMMON_HDRS) lib/.buildflags \
		$(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) -o $@ $< $(LIB_TEST_LIBS)

NATIVE_TESTS += lib/zchan_hostile_test
GUEST_TESTS += lib/zchan_hostile_test
TEST_CLEAN += lib/zchan_hostile_test

# Fan-in (max_producers > 1): the contract's acceptance and adversarial
# tests, one binary, both backends as fixture variants; the kernel
# variant runs in the guest and skips while zchan.ko has no fan-in.
lib/zchan_many_test: lib/zchan_many_test.c $(TEST_COMMON_HDRS) lib/.buildflags \
		$(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) -o $@ $< $(LIB_TEST_LIBS)

NATIVE_TESTS += lib/zchan_many_test
GUEST_TESTS += lib/zchan_many_test
TEST_CLEAN += lib/zchan_many_test

# Broadcast (ZCHAN_BROADCAST, several consumers): one binary, both
# backends as fixture variants; the kernel's skips until the module has it.
lib/zchan_bcast_test: lib/zchan_bcast_test.c $(TEST_COMMON_HDRS) lib/.buildflags \
		$(KSFT_HDRS) $(LIBZCHAN_A)
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(LIB_TEST_CFLAGS) -o $@ $< $(LIB_TEST_LIBS)

NATIVE_TESTS += lib/zchan_bcast_test
GUEST_TESTS += lib/zchan_bcast_test
TEST_CLEAN += lib/zchan_bcast_test

# userspace/*.c read errno nowhere but through syscall.h.
NATIVE_TESTS += lib/errno-check.sh
