# SPDX-License-Identifier: GPL-2.0
#
# scripts/install-deps.sh on a simulated fresh machine (included by
# tests/Makefile, cwd = tests/): a private mount namespace with empty
# /usr/src and /boot and stub dpkg-query/apt-get reporting nothing
# installed.  Native, about a second.

NATIVE_TESTS += install/install-deps-test.sh
