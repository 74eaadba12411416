# SPDX-License-Identifier: MIT OR LGPL-2.1
#
# The Python binding's tests (included by tests/Makefile, cwd = tests/):
# pytest, printing TAP through conftest.py.  Natively on the memfd
# backend; in the guest, test_kernel.py (names and permissions),
# test_habits.py (issue 20), test_futures.py and test_many.py on the kernel
# backend.  They need the extension built in place in python/.
# Natively about 10 s, and 40 s to 2 minutes more (with the load) for
# test_dask.py's real Dask clusters; in each guest 2 to 3 minutes, nearly
# all of it the interpreter importing pytest over 9p under TCG (the tests
# take 7 s).  run-dask-kernel: the Dask comm zchan+tcp:// on the kernel
# backend, in the guest, without pytest (10 to 50 s).

NATIVE_TESTS += python/run-pytest
GUEST_TESTS += python/run-pytest-kernel python/run-dask-kernel

python/run-pytest python/run-pytest-kernel python/run-dask-kernel: python-ext

.PHONY: python-ext
python-ext:
	$(Q)$(MAKE) --no-print-directory -C $(TOP)/python TOP=$(TOP)
