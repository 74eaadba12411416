// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Runs the example of Documentation/library.rst (extracted into
 * doc_example.c by tests.mk, its main() renamed doc_example_main) on the
 * backend of the environment, so the documented example keeps working.
 */
#include <stdio.h>

#include "kselftest_harness.h"

int doc_example_main(void);

TEST(library_rst_example)
{
	fflush(NULL);	/* the example forks: no buffered output twice */
	ASSERT_EQ(0, doc_example_main());
}

TEST_HARNESS_MAIN
