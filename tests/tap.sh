# SPDX-License-Identifier: GPL-2.0
#
# TAP for the tree's shell tests (sourced by bash scripts):
#
#   tap_plan N          the header and the plan, 1..N
#   result STATUS DESC  the next result: ok when STATUS is 0, else not ok
#   expect DESC CMD...  run CMD: ok if it succeeds, not ok otherwise
#   show [FILE...]      copy FILE (or stdin) as TAP comments
#   $failures           the number of not ok results so far

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

expect() {
	local desc=$1
	shift
	"$@"
	result $? "$desc"
}

show() { sed 's/^/# /' "$@"; }
