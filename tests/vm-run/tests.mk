# SPDX-License-Identifier: GPL-2.0
#
# Tests of scripts/vm-run and of the module's basics (included by
# tests/Makefile, cwd = tests/).
#
# vm-run/vm-run-test.sh (native) boots a few short guests of its own:
# module loaded, 0666 node and rmmod; exit status, environment and cwd
# passthrough; --timeout; and the test-only modules in vm-run/warn/ whose
# load WARNs (status 123) or fails (status 125).
# vm-run/zchan_dev_test (guest) checks /dev/zchan and ENOTTY.
# vm-run/run-tests-test.sh (native) checks how tests/run-tests.sh counts.

VM_RUN_TEST_MODULES := vm-run/warn/zchan_warn_test.ko vm-run/warn/zchan_fail_test.ko

NATIVE_TESTS += vm-run/run-tests-test.sh vm-run/vm-run-test.sh
GUEST_TESTS += vm-run/zchan_dev_test
TEST_CLEAN += vm-run/zchan_dev_test $(addprefix vm-run/warn/,*.o *.ko *.mod \
	*.mod.c .*.cmd modules.order Module.symvers)

vm-run/vm-run-test.sh: $(VM_RUN_TEST_MODULES)

vm-run/zchan_dev_test: vm-run/zchan_dev_test.c $(KSFT_HDRS) $(TOP)/include/uapi/linux/zchan.h
	$(call quiet_cmd,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Wall -Wextra -Wno-unused-parameter $(SANITIZE_CFLAGS) $(ZCHAN_CFLAGS) \
		-I$(KSFT_INC) -o $@ $<

$(VM_RUN_TEST_MODULES) &: vm-run/warn/zchan_warn_test.c vm-run/warn/zchan_fail_test.c vm-run/warn/Kbuild
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR)/vm-run/warn modules
