# SPDX-License-Identifier: MIT OR LGPL-2.1
#
# The test helper library (included by tests/Makefile, cwd = tests/, before
# the fragments that use it): header-only, so it builds nothing itself.
# A test program that includes any of its headers lists
# $(TEST_COMMON_HDRS) among its prerequisites.

TEST_COMMON_HDRS := $(wildcard common/*.h)
