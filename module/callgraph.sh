#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The file-level call graph of zchan.ko, from its built objects: one
# "caller -> callee" line for each pair of source files where the first
# uses a function or variable the second defines (tracepoints left out),
# then whether the graph has a cycle.  Documentation/module.rst's
# "Source map" gives the order the files keep.
#
#   module/callgraph.sh [build/module-VERSION/module]

dir=${1:-$(ls -d build/module-*/module 2>/dev/null | head -n 1)}
[ -n "$dir" ] && [ -f "$dir/zchan_main.o" ] || {
	echo "callgraph: no built zchan.ko objects (make module first)" >&2
	exit 2
}
defs=$(mktemp) && edges=$(mktemp) || exit 2
trap 'rm -f "$defs" "$edges"' EXIT
objs=$(cd "$dir" && ls zchan_*.o | grep -v '\.mod\.o$')
for o in $objs; do
	nm "$dir/$o" | awk -v f="${o%.o}" '$2 ~ /^[TDBR]$/ { print $3, f }'
done > "$defs"
for o in $objs; do
	nm "$dir/$o" | awk -v f="${o%.o}" -v defs="$defs" '
		BEGIN { while ((getline l < defs) > 0) { split(l, a, " "); d[a[1]] = a[2] } }
		$1 == "U" && ($2 in d) && d[$2] != f && d[$2] != "zchan_trace" {
			print f, d[$2]
		}'
done | sort -u > "$edges"
sed 's/ / -> /' "$edges"
if tsort "$edges" > /dev/null 2>&1; then
	echo "no cycle"
else
	echo "cycle:" >&2
	tsort "$edges" 2>&1 >/dev/null | sed 's/^/  /' >&2
	exit 1
fi
