#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest suite's last program (tests/Makefile appends it after every
# fragment's GUEST_TESTS): once every test has run, nothing of zchan may
# be left - debugfs zchan/stats back to zero, no kmemleak report (on a
# kernel with kmemleak) - and `rmmod zchan` must succeed.  TAP output.

stats=/sys/kernel/debug/zchan/stats
[ -r "$stats" ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
kmemleak=/sys/kernel/debug/kmemleak
plan=2
[ -w "$kmemleak" ] && plan=3
echo "TAP version 13"
echo "1..$plan"
status=0
n=0

live() { grep -E '^(channels|files|pages|uring_waits|pinned) ' "$stats" | grep -vE ' 0$'; }

# Teardown is partly asynchronous (io_uring exit work): allow 30 s.
i=0
while [ $i -lt 150 ] && [ -n "$(live)" ]; do
	sleep 0.2
	i=$((i + 1))
done
n=$((n + 1))
if [ ! -r "$stats" ]; then
	echo "not ok $n no live zchan channel, file, page, uring wait or pinned page (no $stats)"
	status=1
elif [ -n "$(live)" ]; then
	echo "not ok $n no live zchan channel, file, page, uring wait or pinned page: $(tr '\n' ' ' <"$stats")"
	status=1
else
	echo "ok $n no live zchan channel, file, page, uring wait or pinned page ($(tr '\n' ' ' <"$stats"))"
fi

if [ -w "$kmemleak" ]; then
	# An object is reported once unreferenced for two scans, 5 s apart.
	echo scan >"$kmemleak"
	sleep 6
	echo scan >"$kmemleak"
	n=$((n + 1))
	if grep -q '^unreferenced object' "$kmemleak"; then
		echo "not ok $n kmemleak: no leaked kernel object"
		sed 's/^/# /' "$kmemleak" | head -n 60
		status=1
	else
		echo "ok $n kmemleak: no leaked kernel object"
	fi
fi

n=$((n + 1))
if out=$(rmmod zchan 2>&1); then
	echo "ok $n rmmod zchan"
else
	echo "not ok $n rmmod zchan: $out"
	status=1
fi
exit $status
