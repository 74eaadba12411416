# SPDX-License-Identifier: GPL-2.0
#
# TAP for the shell tests of the build (sourced by bash scripts):
#
#   tap_plan N          the header and the plan
#   expect DESC CMD...  run CMD: "ok" if it succeeds, "not ok" otherwise
#   $failures           the number of "not ok" lines so far

n=0
failures=0

tap_plan() {
	echo "TAP version 13"
	echo "1..$1"
}

expect() {
	local desc=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n $desc"
	else
		echo "not ok $n $desc"
		failures=$((failures + 1))
	fi
}
