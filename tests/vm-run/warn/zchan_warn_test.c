// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module for scripts/vm-run's own tests: its init triggers a kernel
 * WARNING, which must make `scripts/vm-run --module zchan_warn_test.ko` fail
 * with status 123 although the module loads and COMMAND succeeds.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init zchan_warn_test_init(void)
{
	WARN_ON(1);
	return 0;
}

static void __exit zchan_warn_test_exit(void)
{
}

module_init(zchan_warn_test_init);
module_exit(zchan_warn_test_exit);

MODULE_DESCRIPTION("zchan test: WARN_ON(1) on load (scripts/vm-run self-test)");
MODULE_LICENSE("GPL");
