#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The short fuzz pass of `make check` (in the guest, zchan.ko loaded): a
# fixed seed, so a failure reproduces with the same command line.  About
# 20 s under TCG.  ZCHAN_FUZZ_ITERATIONS / ZCHAN_FUZZ_SEED override.
exec "$(dirname "$0")/zchan_fuzz" --seed "${ZCHAN_FUZZ_SEED:-20261121}" \
	--iterations "${ZCHAN_FUZZ_ITERATIONS:-20000}" --procs 3 --time 120
