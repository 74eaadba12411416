#!/bin/sh
# SPDX-License-Identifier: MIT OR LGPL-2.1
#
# libzchan never reads errno outside userspace/syscall.h: its system calls
# return -errno from there at once, so no error path can take a later
# call's errno, or the caller's stale one, for its own (issue 23).  Only
# saving and restoring the caller's value (saved_errno, __zchan_keep_errno()
# in zchan_int.h) is allowed; comments do not count.  TAP, one result.
top=$(cd "$(dirname "$0")/../.." && pwd)
echo "1..1"
hits=$(cd "$top/userspace" && for f in *.c; do
	sed 's|/\*.*||; s|^[[:space:]]*\*.*||' "$f" |
		grep -nE '(^|[^_a-z])errno([^_a-z.]|$)' | grep -v saved_errno |
		sed "s|^|$f:|"
done)
if [ -n "$hits" ]; then
	echo "$hits" | sed 's/^/# /'
	echo "not ok 1 userspace/*.c read errno (use syscall.h's __sys_*())"
	exit 1
fi
echo "ok 1 userspace/*.c never read errno"
