# SPDX-License-Identifier: GPL-2.0
#
# Packaging tests (included by tests/Makefile, cwd = tests/); they run on
# the host and print TAP.
#
# pkg/deb-test.sh builds the Debian packages once (scripts/deb.sh
# --binary), runs lintian, checks their contents, and builds and runs a
# program outside the tree (pkg/zchan_outside.c) against the unpacked
# libzchan-dev and libzchan1 with `pkg-config --cflags --libs zchan`.
# It builds in build/pkg-test/ at run time: nothing to build beforehand.

NATIVE_TESTS += pkg/deb-test.sh
