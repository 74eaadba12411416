# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the obs/ guest scripts (cwd tests/): tests/tap.sh's TAP
# helpers and a background stream.  OUT must name a writable directory.

. ./tap.sh

# finish PLANNED: say if the count is off; exit 1 on any failure.
finish() {
	[ $n -eq "$1" ] || echo "# planned $1 results, ran $n"
	[ $failures -eq 0 ]
}

# start_stream NAME SECONDS SIZE INTERVAL_US [VAR=VALUE...]: run
# obs/zchan_obs_stream in the background (pid in stream_pid) and wait until
# both ends are open; prod and cons are then the two processes' pids.
# With producers=N set (N > 1) the channel is fan-in with N producer ends;
# the attached producers' pids are then in prods.
# A guest on a busy host can be very slow: give streams that the test
# stops itself far more SECONDS than they need; one still running when
# the script exits is stopped then.
stream_pid=""
trap '[ -z "$stream_pid" ] || kill "$stream_pid" 2>/dev/null' EXIT
start_stream() {
	name=$1 secs=$2 size=$3 every=$4
	shift 4
	env "$@" ./obs/zchan_obs_stream "$name" "$secs" "$size" "$every" ${producers:-} >"$OUT/$name.pids" &
	stream_pid=$!
	i=0
	while [ $i -lt 300 ] && ! grep -q consumer "$OUT/$name.pids"; do
		sleep 0.1
		i=$((i + 1))
	done
	set -- $(cat "$OUT/$name.pids")
	prod=${2:-0} cons=${4:-0}
	prods=$(sed -n 's/^producers //p' "$OUT/$name.pids")
}

# stop_stream [SIGNAL]: stop the last stream's producer, reap it.
stop_stream() {
	kill ${1:+-$1} "$stream_pid" 2>/dev/null
	wait "$stream_pid" 2>/dev/null
	stream_pid=""
}

# wait_stream: wait for the last stream to end by itself; its status.
wait_stream() {
	wait "$stream_pid"
	set -- $?
	stream_pid=""
	return "$1"
}
