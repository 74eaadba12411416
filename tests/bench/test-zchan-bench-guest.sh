#!/bin/sh
# SPDX-License-Identifier: MIT OR LGPL-2.1
# zchan-bench's tests in the guest, where the kernel backend must run too.
ZCHAN_BENCH_GUEST=1 exec "$(dirname "$0")/test-zchan-bench.sh" "$@"
