# SPDX-License-Identifier: GPL-2.0
#
# TAP helpers for the tests/pkg scripts (sourced, bash).
#
#   tap_plan N          the header and the plan, 1..N
#   result STATUS DESC  result N+1: ok when STATUS is 0, else not ok;
#                       $failures counts the not ok
#   show [FILE...]      copy FILE (or stdin) as TAP comments

n=0
failures=0

tap_plan() {
	echo "TAP version 13"
	echo "1..$1"
}

result() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		failures=$((failures + 1))
	fi
}

show() { sed 's/^/# /' "$@"; }
