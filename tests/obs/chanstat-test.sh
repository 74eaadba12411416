#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# debugfs zchan/chanstat and the fdinfo of channel files, with a stream
# running (obs/zchan_obs_stream).  Guest, cwd tests/.  Only reads files:
# nothing here patches kernel text, so it runs in the main guest.  Prints
# TAP.

cd "$(dirname "$0")/.." || exit 1
STAT=/sys/kernel/debug/zchan/chanstat
OUT=/tmp/obs-chanstat
mkdir -p $OUT
[ -r $STAT ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

. ./obs/lib.sh
# field NAME COLUMN: COLUMN of channel NAME's line, by the header's names.
field() {
	awk -v name="$1" -v col="$2" '
		NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
		$idx["name"] == name { print $idx[col]; found = 1 }
		END { exit !found }' $STAT
}

tap_plan 10

expect "chanstat: root-only file" sh -c "[ \"\$(stat -c %a $STAT)\" = 400 ]"
expect "chanstat: header names every column" sh -c "head -n1 $STAT | grep -qx 'id name prod_open cons_open ring_entries pool_size published taken released backlog queued_bytes kicks waits recent_msgs recent_bytes producers lanes'"

start_stream obs-state 900 1000 5000
sleep 1

id=$(field obs-state id)
expect "chanstat: the channel, both ends held, library geometry" \
	sh -c "[ \"$(field obs-state prod_open) $(field obs-state cons_open) $(field obs-state ring_entries) $(field obs-state pool_size)\" = '1 1 1024 4194304' ]"
p1=$(field obs-state published)
sleep 1
p2=$(field obs-state published)
expect "chanstat: published counts messages as they go ($p1 -> $p2)" [ "${p2:-0}" -gt "${p1:-0}" ]
line=$(grep " obs-state " $STAT)
expect "chanstat: released <= taken <= published, backlog = published - released" \
	sh -c "echo '$line' | awk 'NR == 1 { exit !(\$9 <= \$8 && \$8 <= \$7 && \$10 == \$7 - \$9) }'"
expect "chanstat: kicks and waits counted, recent bytes of 1000-byte messages" \
	sh -c "echo '$line' | awk 'NR == 1 { exit !(\$12 > 0 && \$13 > 0 && \$14 > 0 && \$15 == \$14 * 1000) }'"

# fdinfo_of PID ROLE: the channel id in PID's fdinfo with ROLE.
fdinfo_of() {
	for f in /proc/$1/fdinfo/*; do
		if grep -q "^zchan-role:	$2\$" "$f" 2>/dev/null; then
			grep -q "^zchan-name:	obs-state\$" "$f" &&
				sed -n 's/^zchan-id:	//p' "$f"
		fi
	done
}
expect "fdinfo: the producer's file names the channel (id $id)" [ "$(fdinfo_of "$prod" producer)" = "$id" ]
expect "fdinfo: the consumer's file names the channel" [ "$(fdinfo_of "$cons" consumer)" = "$id" ]
expect "chanstat: not readable without root" \
	sh -c "! setpriv --reuid=65534 --regid=65534 --clear-groups cat $STAT >/dev/null 2>&1"
stop_stream
# The consumer releases its end once it has read the hang-up.
i=0
while [ $i -lt 200 ] && grep -q ' obs-state ' $STAT; do sleep 0.1; i=$((i + 1)); done
expect "chanstat: the line goes with the channel" sh -c "! grep -q ' obs-state ' $STAT"
finish 10
