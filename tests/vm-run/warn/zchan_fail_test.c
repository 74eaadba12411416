// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module for scripts/vm-run's own tests: its init fails, which must
 * make `scripts/vm-run --module zchan_fail_test.ko` fail with status 125
 * (the module did not load) before COMMAND runs.
 */
#include <linux/errno.h>
#include <linux/module.h>

static int __init zchan_fail_test_init(void)
{
	return -ENODEV;
}

module_init(zchan_fail_test_init);

MODULE_DESCRIPTION("zchan test: fails to load (scripts/vm-run self-test)");
MODULE_LICENSE("GPL");
