#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs in a one-vCPU guest (obs/obs-tools-test.sh boots it), cwd tests/:
# zchan.ko's tracepoints through tracefs, then zchan-top and zchan-lat
# against live streams (obs/zchan_obs_stream), their JSON parsed, and
# every error path the guest can produce.  Prints TAP.

cd "$(dirname "$0")/.." || exit 1
TOP=$(cd .. && pwd)
TOPBIN=$TOP/tools/zchan-top/zchan-top
LATBIN=$TOP/tools/zchan-lat/zchan-lat
STREAM=./obs/zchan_obs_stream
PY=/usr/bin/python3
EVENTS=/sys/kernel/tracing/events/zchan
OUT=/tmp/obs-tools
mkdir -p $OUT

. ./obs/lib.sh
# expect_fail NAME STATUS PATTERN COMMAND...: exits STATUS, says PATTERN.
expect_fail() {
	name=$1 want=$2 pattern=$3
	shift 3
	"$@" >$OUT/err.out 2>&1
	status=$?
	if [ "$status" -eq "$want" ] && grep -q "$pattern" $OUT/err.out; then
		result 0 "$name"
	else
		show $OUT/err.out
		result 1 "$name (exit $status, want $want and '$pattern')"
	fi
}
tap_plan 37

# --- error paths, before anything is mounted ---------------------------
expect_fail "zchan-top: no debugfs, clear error" 1 "debugfs is not mounted" $TOPBIN -n 1
expect_fail "zchan-top: usage error exits 2" 2 "invalid number" $TOPBIN -n 0
expect_fail "zchan-lat: usage error exits 2" 2 "invalid interval" $LATBIN 0
expect_fail "zchan-top: not root" 1 "must be run as root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups $TOPBIN -n 1
expect_fail "zchan-lat: not root" 1 "must be run as root" \
	setpriv --reuid=65534 --regid=65534 --clear-groups $LATBIN 1 1

mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null

if rmmod zchan; then
	expect_fail "zchan-top: zchan.ko not loaded" 1 "zchan.ko is not loaded.*memfd" $TOPBIN -n 1
	expect_fail "zchan-lat: zchan.ko not loaded" 1 "zchan.ko is not loaded" $LATBIN 1 1
	insmod "${ZCHAN_KO:-$TOP/module/zchan.ko}" || { echo "Bail out! cannot reload zchan.ko"; exit 1; }
else
	result 1 "zchan-top: zchan.ko not loaded (rmmod zchan failed)"
	result 1 "zchan-lat: zchan.ko not loaded (rmmod zchan failed)"
fi

# --- tracepoints through tracefs ---------------------------------------
missing=""
for e in zchan_create zchan_attach zchan_peer_fd zchan_release \
	 zchan_wait_begin zchan_wait_end zchan_kick zchan_limit; do
	[ -f $EVENTS/$e/format ] || missing="$missing $e"
done
expect "tracepoints: all eight events exist${missing:+ (missing:$missing)}" [ -z "$missing" ]

echo > /sys/kernel/tracing/trace
echo 1 > $EVENTS/enable
start_stream obs-trace 1 4096 2000
wait_stream
uring_status=$?
start_stream - 1 4096 2000
wait_stream
peer_prod=$prod
start_stream obs-kill 900 4096 2000
stop_stream KILL
kill_prod=$prod
start_stream obs-trace-io 1 4096 2000 ZCHAN_WAIT=syscall
wait_stream
ioctl_status=$?
echo 0 > /sys/module/zchan/parameters/max_channels_per_user
$STREAM obs-limit 1 >/dev/null 2>&1
limit_status=$?
echo 1024 > /sys/module/zchan/parameters/max_channels_per_user
echo 0 > $EVENTS/enable
cp /sys/kernel/tracing/trace $OUT/trace
t=$OUT/trace
expect "tracepoints: both streams ran" [ "$uring_status$ioctl_status" = 00 ]
expect "zchan_create: name, geometry and the producer's tgid" \
	grep -q "zchan_create: id=[0-9]* name=obs-trace-io pool_size=[1-9][0-9]* ring_entries=[1-9][0-9]* max_msg=[1-9][0-9]* uid=0 tgid=$prod\$" $t
expect "zchan_attach: the consumer's tgid" grep -q "zchan_attach: id=[0-9]* name=obs-trace-io tgid=$cons\$" $t
expect "zchan_wait_begin/end: uring waits that ended with data" \
	grep -q "zchan_wait_end: .*role=consumer kind=uring .*reason=data" $t
expect "zchan_wait_begin/end: ioctl waits that ended with data" \
	grep -q "zchan_wait_end: .*role=consumer kind=ioctl .*reason=data revents=0x41 err=0" $t
# Every ended wait began with the same cookie.
expect "zchan_wait_end: every end pairs with a begin" $PY - $t <<'EOF'
import re, sys
begun, ends = set(), 0
for line in open(sys.argv[1]):
    m = re.search(r'zchan_wait_(begin|end): id=(\d+) .*cookie=(\S+)', line)
    if not m:
        continue
    key = (m.group(2), m.group(3))
    if m.group(1) == 'begin':
        begun.add(key)
    elif key in begun:
        begun.discard(key)
        ends += 1
    else:
        sys.exit('end without begin: ' + line)
sys.exit(0 if ends > 0 else 'no wait ended')
EOF
expect "zchan_kick: kicks of an armed consumer" grep -q "zchan_kick: id=[0-9]* role=consumer armed=1" $t
expect "zchan_release: the producer leaves first, the consumer is told" \
	grep -q "zchan_release: id=[0-9]* name=obs-trace-io role=producer tgid=$prod peer_open=1 exiting=0" $t
expect "zchan_release: then the consumer, alone" \
	grep -q "zchan_release: id=[0-9]* name=obs-trace-io role=consumer tgid=$cons peer_open=0" $t
expect "zchan_peer_fd: an anonymous channel's consumer fd, made by the producer" \
	grep -q "zchan_peer_fd: id=[0-9]* name= tgid=$peer_prod\$" $t
expect "zchan_release: peer death (SIGKILL) while the consumer still holds its end" \
	grep -q "zchan_release: id=[0-9]* name=obs-kill role=producer tgid=$kill_prod peer_open=1 exiting=1" $t
expect "zchan_limit: max_channels_per_user refused a create" \
	sh -c "[ $limit_status -ne 0 ] && grep -q 'zchan_limit: limit=max_channels_per_user allowed=0 requested=[0-9]* uid=0' $t"

# --- zchan-top -----------------------------------------------------------
start_stream obs-top 900 4096 2000
$TOPBIN -n 2 -i 1 --json >$OUT/top.json 2>$OUT/top.err
expect "zchan-top -n 2 --json: exits 0, two samples" \
	sh -c "[ \$(wc -l <$OUT/top.json) -eq 2 ]"
expect "zchan-top: the channel with non-zero rates and the right pids" \
	$PY - $OUT/top.json $prod $cons <<'EOF'
import json, sys
last = json.loads(open(sys.argv[1]).read().splitlines()[-1])
prod, cons = int(sys.argv[2]), int(sys.argv[3])
ch = [c for c in last['channels'] if c['name'] == 'obs-top']
assert len(ch) == 1, last
c = ch[0]
assert c['producer_open'] and c['consumer_open'], c
assert [p['pid'] for p in c['producers']] == [prod], c
assert [p['pid'] for p in c['consumers']] == [cons], c
assert c['producers'][0]['comm'].startswith('zchan_obs_strea'), c
assert c['msgs_per_sec'] > 0 and c['bytes_per_sec'] > 0, c
assert c['waits_per_sec'] > 0 and c['kicks_per_sec'] > 0, c
assert 'lanes' not in c and 'lane' not in c['producers'][0], c
EOF
expect "zchan-top: wait percentiles from the tracepoints" \
	$PY - $OUT/top.json <<'EOF'
import json, sys
last = json.loads(open(sys.argv[1]).read().splitlines()[-1])
c = [c for c in last['channels'] if c['name'] == 'obs-top'][0]
assert c['waits_timed'] > 0, c
assert 0 < c['wait_p50_us'] <= c['wait_p99_us'], c
EOF
$TOPBIN -n 1 -i 0.5 -p "$cons" --json >$OUT/top-pid.json 2>&1
$TOPBIN -n 1 -i 0.5 -p 1 --json >$OUT/top-init.json 2>&1
expect "zchan-top -p: only the channels the process holds" \
	$PY - $OUT/top-pid.json $OUT/top-init.json <<'EOF'
import json, sys
mine = json.loads(open(sys.argv[1]).read())
init = json.loads(open(sys.argv[2]).read())
assert [c['name'] for c in mine['channels']] == ['obs-top'], mine
assert init['channels'] == [], init
EOF
$TOPBIN -n 1 -i 0.5 -s backlog >$OUT/top.txt 2>&1
expect "zchan-top: the table has the header and the channel's row" \
	sh -c "grep -q 'MSGS/s.*BYTES/s.*BACKLOG.*WAITS/s.*KICKS/s.*P50us.*P99us' $OUT/top.txt &&
	       grep -q \"obs-top .*$prod(zchan_obs_strea) .*$cons(zchan_obs_strea)\" $OUT/top.txt"
expect "zchan-top -h: examples, and the memfd backend is not visible" \
	sh -c "$TOPBIN -h 2>&1 | grep -q 'EXAMPLES' && $TOPBIN -h 2>&1 | grep -q 'memfd backend'"
stop_stream

# --- zchan-top: a fan-in channel of three producer ends ----------------
producers=3
start_stream obs-fanin 900 4096 2000
producers=
$TOPBIN -n 2 -i 1 --json >$OUT/fanin.json 2>$OUT/fanin.err
expect "zchan-top fan-in: three lanes, each its producer's pid and counters" \
	$PY - $OUT/fanin.json $prod $cons $prods <<'EOF'
import json, sys
last = json.loads(open(sys.argv[1]).read().splitlines()[-1])
prod, cons = int(sys.argv[2]), int(sys.argv[3])
pids = {prod} | {int(p) for p in sys.argv[4:]}
assert len(pids) == 3, sys.argv
ch = [c for c in last['channels'] if c['name'] == 'obs-fanin']
assert len(ch) == 1, last
c = ch[0]
assert {p['pid'] for p in c['producers']} == pids, c
assert sorted(p['lane'] for p in c['producers']) == [0, 1, 2], c
assert [p['pid'] for p in c['consumers']] == [cons], c
assert [l['lane'] for l in c['lanes']] == [0, 1, 2], c
seen = set()
for l in c['lanes']:
    assert l['state'] == 'open', l
    assert len(l['producers']) == 1 and l['producers'][0]['lane'] == l['lane'], l
    seen.add(l['producers'][0]['pid'])
    assert l['msgs_per_sec'] > 0 and l['published'] > 0, l
    assert l['released'] <= l['taken'] <= l['published'], l
    assert l['backlog'] == l['published'] - l['released'], l
assert seen == pids, c
EOF
$TOPBIN -n 1 -i 0.5 -s id >$OUT/fanin.txt 2>&1
expect "zchan-top fan-in: a sub-row per lane under the channel's row" \
	sh -c "grep -q 'obs-fanin .*$cons(zchan_obs_strea)' $OUT/fanin.txt &&
	       [ \$(grep -c '^ *lane [012] open *[0-9]*(zchan_obs_strea) ' $OUT/fanin.txt) -eq 3 ]"
expect "zchan-top: the 1:1 channel's text has no lane sub-rows" \
	sh -c "! grep -q 'lane' $OUT/top.txt"
kill $prods 2>/dev/null
stop_stream

# --- zchan-lat -----------------------------------------------------------
start_stream obs-lat 900 4096 2000 ZCHAN_WAIT=syscall
$LATBIN --json 1 2 >$OUT/lat.json 2>$OUT/lat.err
expect "zchan-lat --json 1 2: two summaries" sh -c "[ \$(wc -l <$OUT/lat.json) -eq 2 ]"
expect "zchan-lat: consumer waits and kick-to-wake counted" $PY - $OUT/lat.json <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
tot = {}
for s in lines:
    assert s['unit'] == 'usecs', s
    for h in s['histograms']:
        tot[h['role']] = tot.get(h['role'], 0) + h['hist']['total']
        assert sum(b['count'] for b in h['hist']['buckets']) == h['hist']['total'], h
assert tot.get('consumer', 0) > 0, tot
assert tot.get('kick-to-wake', 0) > 0, tot
EOF
$LATBIN -c obs-lat -C --json 1 1 >$OUT/lat-c.json 2>&1
$LATBIN -c no-such-channel --json 1 1 >$OUT/lat-none.json 2>$OUT/lat-none.err
expect "zchan-lat -c NAME -C: that channel's histograms only" \
	$PY - $OUT/lat-c.json $OUT/lat-none.json <<'EOF'
import json, sys
mine = json.loads(open(sys.argv[1]).read())
none = json.loads(open(sys.argv[2]).read())
assert mine['histograms'] and all(h['channel'] == 'obs-lat' for h in mine['histograms']), mine
assert any(h['role'] == 'consumer' and h['hist']['total'] > 0 for h in mine['histograms']), mine
assert none['histograms'] == [], none
EOF
expect "zchan-lat -c: says when no channel has the name" grep -q "no channel named no-such-channel" $OUT/lat-none.err
$LATBIN -p "$cons" --json 1 1 >$OUT/lat-p.json 2>&1
expect "zchan-lat -p PID: only that process's waits (the consumer's)" \
	$PY - $OUT/lat-p.json <<'EOF'
import json, sys
s = json.loads(open(sys.argv[1]).read())
roles = {h['role']: h['hist']['total'] for h in s['histograms']}
assert roles.get('consumer', 0) > 0 and 'producer' not in roles, roles
EOF
$LATBIN -m 1 1 >$OUT/lat.txt 2>&1
expect "zchan-lat: text histogram with a non-zero count" \
	sh -c "grep -q 'role = consumer' $OUT/lat.txt && grep -q 'msecs.*: count.*distribution' $OUT/lat.txt &&
	       grep -Eq ': [1-9][0-9]* *\|\*' $OUT/lat.txt"
expect_fail "zchan-lat -p: no such process" 1 "no process" $LATBIN -p 999999 1 1
stop_stream

# Nothing left loaded: the tools' programs go when they exit.
expect "no zchan BPF program left loaded" sh -c "! bpftool prog show | grep -q zchan_"
finish 37
