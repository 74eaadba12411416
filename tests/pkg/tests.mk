# SPDX-License-Identifier: GPL-2.0
#
# Packaging tests (included by tests/Makefile, cwd = tests/); they run on
# the host and print TAP.
#
# pkg/deb-test.sh builds the Debian packages once (scripts/deb.sh
# --binary), runs lintian, checks their contents, and builds and runs a
# program outside the tree (pkg/zchan_outside.c) against the unpacked
# libzchan-dev and libzchan1 with `pkg-config --cflags --libs zchan`; the
# packaged zchan-bench and Python binding run on the unpacked library.
# pkg/dkms-test.sh builds zchan.ko through DKMS, with private DKMS trees,
# for every kernel installed with headers (6.1 and 6.12), and loads each
# build in a guest of that kernel (scripts/vm-run --module), where
# vm-run/zchan_dev_test and a zchan-bench stream on the kernel backend run.
# Both build their packages and modules at run time, in build/pkg-test/
# and build/pkg-dkms/.

NATIVE_TESTS += pkg/deb-test.sh pkg/dkms-test.sh

pkg/dkms-test.sh: vm-run/zchan_dev_test $(BENCH_BIN)
