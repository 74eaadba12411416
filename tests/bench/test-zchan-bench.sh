#!/bin/bash
# SPDX-License-Identifier: MIT OR LGPL-2.1
#
# zchan-bench's own behaviour, as TAP: options and usage errors, the JSON
# and CSV output, and the paths that must fail - a corrupted byte in
# transit (exit 3) and a stalled or overlong run (exit 1, never a hang);
# the peers iceoryx and cma, run and verified where they can run, and
# reported "not available" with the reason where their package or kernel
# support is missing (simulated: another iox-roudi path, a build with
# ICEORYX=0, process_vm_readv failing with ENOSYS).  Runs are tiny (a few
# hundred messages); no timing is asserted.
#
# ZCHAN_BENCH_GUEST=1 (the guest variant) also requires the kernel
# backend: /dev/zchan must exist there and the zchan methods must run.

set -u

TOP=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BENCH=${ZCHAN_BENCH:-$TOP/tools/zchan-bench/zchan-bench}
GUEST=${ZCHAN_BENCH_GUEST:-0}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/zchan-bench-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

# tiny runs: the same on every method (TCG is ~50x slower: fewer there)
if [ "$GUEST" = 1 ]; then
	N=30
else
	N=200
fi
SMALL=(-n $N -w 2 -r 1 -q -t 60)

n=0
failures=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	failures=$((failures + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do
		echo "# $line"
	done
}
# check DESC COMMAND...: the command's success is the test's
check() {
	local desc=$1
	shift
	if "$@" >"$TMP/check.out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc" "$(tail -n 5 "$TMP/check.out")"
	fi
}
# run EXPECTED_STATUS OUT ARGS...: run the tool, keep stdout in OUT and
# stderr in OUT.err, and succeed when it exits with EXPECTED_STATUS
run() {
	local want=$1 out=$2 st
	shift 2
	timeout 120 "$BENCH" "$@" >"$out" 2>"$out.err"
	st=$?
	if [ "$st" != "$want" ]; then
		echo "exit status $st, expected $want: zchan-bench $*" >>"$out.err"
		return 1
	fi
	return 0
}

# the system interpreter: wrappers (pyenv shims) cost seconds under TCG
if [ -x /usr/bin/python3 ]; then
	PY=/usr/bin/python3
else
	PY=python3
fi
have_python() { command -v "$PY" >/dev/null; }

if [ ! -x "$BENCH" ]; then
	echo "1..1"
	not_ok "zchan-bench is built" "$BENCH missing"
	exit 1
fi

# the methods this build can run here, from --list
"$BENCH" --list >"$TMP/list" 2>&1
# shellcheck disable=SC2207
LISTED=($(awk '/^  [a-z]/ { print $1 }' "$TMP/list"))
RUNNABLE=()
FAN_ONLY=()
for m in "${LISTED[@]}"; do
	if grep -A1 "^  $m " "$TMP/list" | grep -q "not available"; then
		continue
	elif grep "^  $m " "$TMP/list" | grep -q "fan modes only"; then
		FAN_ONLY+=("$m")
	else
		RUNNABLE+=("$m")
	fi
done
MODES=stream,handoff,pingpong,pingpong-busy
NMODES=4
if [ "$GUEST" = 1 ]; then
	# the guest adds the kernel backend; the rest is covered natively,
	# and spinning under TCG is slow
	RUNNABLE=(pipe zchan zchan-copy zchan-memfd)
	MODES=stream,handoff,pingpong
	NMODES=3
fi
METHODS=$(IFS=,; echo "${RUNNABLE[*]}")

if [ "$GUEST" = 1 ]; then
	echo "1..7"
else
	echo "1..34"
fi

# 1: -h
if run 0 "$TMP/help" -h && grep -q '^usage: zchan-bench' "$TMP/help" &&
   grep -q '^Examples:' "$TMP/help" && grep -q -- '--json' "$TMP/help" &&
   grep -q 'pipe ' "$TMP/help"; then
	ok "-h prints usage, options, examples and methods, exit 0"
else
	not_ok "-h prints usage, options, examples and methods, exit 0" \
		"$(head -n 3 "$TMP/help" "$TMP/help.err")"
fi

if [ "$GUEST" != 1 ]; then
# 2-6: bad usage gives the usage text on stderr and status 2
bad_usage() {
	local desc=$1
	shift
	if run 2 "$TMP/bad" "$@" && grep -q '^usage: zchan-bench' "$TMP/bad.err" &&
	   [ ! -s "$TMP/bad" ]; then
		ok "$desc"
	else
		not_ok "$desc" "$(tail -n 3 "$TMP/bad.err")"
	fi
}
bad_usage "unknown option is a usage error" --no-such-option
bad_usage "unknown method is a usage error" -m pipe,carrier-pigeon
bad_usage "unknown mode is a usage error" -M stream,teleport
bad_usage "bad size is a usage error" -s 64,3
bad_usage "stray argument is a usage error" -s 64 extra

# 7: every method of this build is listed, the classic ones can run
if [ "${#LISTED[@]}" -ge 5 ] && printf '%s\n' "${RUNNABLE[@]}" | grep -qx pipe &&
   printf '%s\n' "${RUNNABLE[@]}" | grep -qx socketpair &&
   printf '%s\n' "${LISTED[@]}" | grep -qx zchan; then
	ok "--list names the methods (${#RUNNABLE[@]} of ${#LISTED[@]} runnable here)"
else
	not_ok "--list names the methods" "listed: ${LISTED[*]}" "runnable: ${RUNNABLE[*]}"
fi

fi # native only

# 8: the JSON of a small run of every runnable method and mode
if ! have_python; then
	not_ok "--json has the required fields" "python3 is needed to check JSON"
elif run 0 "$TMP/json" -m "$METHODS" -M "$MODES" -s 4K "${SMALL[@]}" --json; then
	if "$PY" - "$TMP/json" "$((${#RUNNABLE[@]} * NMODES))" "$N" "$GUEST" >"$TMP/json.check" 2>&1 <<'PY'
import json, sys

doc = json.load(open(sys.argv[1]))
npoints = int(sys.argv[2])
# A TCG guest marks its TSC unstable and clamps sched_clock to the last
# tick there, so a process's CPU time can stand still for tens of
# microseconds - a whole tiny run of one side.  There, each point only has
# to be consistent, and the run as a whole must have measured CPU time.
guest = sys.argv[4] == "1"
cpu_total = 0
required = ["method", "mode", "msg_size", "messages", "seconds",
            "bytes_per_sec", "msgs_per_sec", "rtt_p50_ns", "rtt_p99_ns",
            "rtt_p999_ns", "rtt_max_ns", "cpu_ns_per_msg",
            "syscalls_per_msg", "env"]
env_fields = ["kernel", "cpu", "guest"]
res = doc["results"]
assert all(f in doc["env"] for f in env_fields), "top-level env incomplete"
assert len(res) == npoints, "%d results, expected %d" % (len(res), npoints)
seen = set()
for r in res:
    where = "%s/%s" % (r.get("method"), r.get("mode"))
    missing = [f for f in required if f not in r]
    assert not missing, "%s lacks %s" % (where, missing)
    assert r["status"] == "ok", "%s: %s %s" % (where, r["status"], r["why"])
    assert r["msg_size"] == 4096, where
    assert all(f in r["env"] for f in env_fields), where + ": env incomplete"
    assert isinstance(r["env"]["guest"], bool), where
    assert r["seconds"] > 0 and r["bytes_per_sec"] > 0 and r["msgs_per_sec"] > 0, where
    sides = r["producer_cpu_ns_per_msg"] + r["consumer_cpu_ns_per_msg"]
    assert r["cpu_ns_per_msg"] >= 0 and abs(r["cpu_ns_per_msg"] - sides) <= 1, where
    assert guest or r["cpu_ns_per_msg"] > 0, where + ": no CPU time"
    cpu_total += r["cpu_ns_per_msg"]
    assert r["syscalls_per_msg"] is None or r["syscalls_per_msg"] >= 0, where
    pp = r["mode"].startswith("pingpong")
    n = int(sys.argv[3])
    assert r["messages"] == (2 * n if pp else n), "%s: %s messages" % (where, r["messages"])
    for f in ["rtt_p50_ns", "rtt_p99_ns", "rtt_p999_ns", "rtt_max_ns"]:
        if pp:
            assert r[f] is not None and r[f] > 0, "%s: %s" % (where, f)
        else:
            assert r[f] is None, "%s: %s should be null" % (where, f)
    if pp:
        assert r["rtt_p50_ns"] <= r["rtt_p99_ns"] <= r["rtt_p999_ns"] <= r["rtt_max_ns"], where
    seen.add((r["method"], r["mode"]))
assert len(seen) == len(res), "duplicate (method, mode)"
assert cpu_total > 0, "no CPU time measured in the whole run"
print("checked %d results" % len(res))
PY
	then
		ok "--json: one object per method and mode with all fields ($(cat "$TMP/json.check"))"
	else
		not_ok "--json has the required fields" "$(tail -n 3 "$TMP/json.check")"
	fi
else
	not_ok "--json run of every runnable method" "$(tail -n 3 "$TMP/json.err")"
fi

if [ "$GUEST" != 1 ]; then
# 9: CSV to a file next to the table, sizes with suffixes and odd lengths
if run 0 "$TMP/table" -m pipe,socketpair -M stream -s 100,1K "${SMALL[@]}" \
	--csv="$TMP/out.csv" &&
   [ "$(head -n 1 "$TMP/out.csv" | cut -d, -f1-4)" = "method,mode,msg_size,status" ] &&
   [ "$(grep -c ',stream,' "$TMP/out.csv")" = 4 ] &&
   [ "$(grep -c ',ok,' "$TMP/out.csv")" = 4 ] &&
   grep -q '^100 B' "$TMP/table" && grep -q '^1 KiB' "$TMP/table"; then
	ok "--csv=FILE beside the table; odd sizes verify"
else
	not_ok "--csv=FILE beside the table" "$(cat "$TMP/table.err" | tail -n 3)" \
		"$(head -n 3 "$TMP/out.csv" 2>/dev/null)"
fi

fi # native only

# 10-11: a byte flipped in transit is caught, whatever the method and mode
if [ "$GUEST" = 1 ]; then
	:
elif run 3 "$TMP/corrupt" -m pipe -M stream -s 64K "${SMALL[@]}" --corrupt &&
   grep -q 'CHECKSUM MISMATCH' "$TMP/corrupt.err" &&
   grep -q 'corrupt' "$TMP/corrupt"; then
	ok "--corrupt: pipe stream fails verification, exit 3"
else
	not_ok "--corrupt: pipe stream fails verification, exit 3" \
		"$(tail -n 3 "$TMP/corrupt.err")"
fi
if run 3 "$TMP/corrupt2" -m "$METHODS" -M "$MODES" -s 1K "${SMALL[@]}" --corrupt --json &&
   "$PY" -c '
import json, sys
res = json.load(open(sys.argv[1]))["results"]
bad = [(r["method"], r["mode"], r["status"]) for r in res if r["status"] != "corrupt"]
assert res and not bad, bad
' "$TMP/corrupt2" 2>"$TMP/corrupt2.py"; then
	ok "--corrupt is caught for every method ($METHODS) and mode"
else
	not_ok "--corrupt is caught for every method and mode" \
		"$(tail -n 3 "$TMP/corrupt2.err" "$TMP/corrupt2.py")"
fi

if [ "$GUEST" != 1 ]; then
# 12-13: the watchdog: no progress, and a time limit, never a hang
if run 1 "$TMP/stall" -m pipe -M stream -s 1K "${SMALL[@]}" --debug-stall \
	--stall 0.5 && grep -q 'stalled: no progress' "$TMP/stall.err"; then
	ok "a run that stops making progress is reported as stalled, exit 1"
else
	not_ok "a stalled run is reported" "$(tail -n 3 "$TMP/stall.err")"
fi
if run 1 "$TMP/limit" -m shm-flag -M pingpong -s 1K -n 200 -r 1 -q \
	--debug-stall --stall 60 -t 1 && grep -q 'time limit' "$TMP/limit.err"; then
	ok "a run over --time is stopped and reported, exit 1"
else
	not_ok "a run over --time is reported" "$(tail -n 3 "$TMP/limit.err")"
fi

# 14: same-core runs; busy pingpong is declined there, with the reason
if run 0 "$TMP/same" -m pipe -M pingpong,pingpong-busy -s 64 "${SMALL[@]}" \
	--same-core --json && "$PY" -c '
import json, sys
res = {r["mode"]: r for r in json.load(open(sys.argv[1]))["results"]}
assert res["pingpong"]["status"] == "ok", res["pingpong"]
assert res["pingpong-busy"]["status"] == "unavailable", res["pingpong-busy"]
assert res["pingpong-busy"]["why"], "no reason given"
' "$TMP/same" 2>"$TMP/same.py"; then
	ok "--same-core runs; pingpong-busy is declined with a reason"
else
	not_ok "--same-core" "$(tail -n 3 "$TMP/same.err" "$TMP/same.py")"
fi

# 15: --rt: SCHED_FIFO children as root, a clear refusal otherwise
if [ "$(id -u)" = 0 ]; then
	if run 0 "$TMP/rt" -m pipe -M pingpong -s 64 "${SMALL[@]}" --rt --json &&
	   grep -q '"sched": "fifo"' "$TMP/rt"; then
		ok "--rt runs the children SCHED_FIFO"
	else
		not_ok "--rt runs the children SCHED_FIFO" "$(tail -n 3 "$TMP/rt.err")"
	fi
elif run 2 "$TMP/rt" -m pipe -M pingpong -s 64 "${SMALL[@]}" --rt &&
     grep -q 'SCHED_FIFO' "$TMP/rt.err"; then
	ok "--rt without privilege is refused with a reason"
else
	not_ok "--rt without privilege is refused" "$(tail -n 3 "$TMP/rt.err")"
fi
fi # native only

# 16: the zchan kernel backend runs where /dev/zchan exists, and says
# why not elsewhere (in the guest it must run)
if [ -c /dev/zchan ] || [ "$GUEST" = 1 ]; then
	if run 0 "$TMP/kern" -m zchan,zchan-copy -M stream,pingpong -s 4K \
		"${SMALL[@]}" --json && "$PY" -c '
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert len(res) == 4 and all(r["status"] == "ok" for r in res), res
' "$TMP/kern" 2>"$TMP/kern.py"; then
		ok "zchan kernel backend runs and verifies (/dev/zchan present)"
	else
		not_ok "zchan kernel backend runs (/dev/zchan present)" \
			"$(tail -n 3 "$TMP/kern.err" "$TMP/kern.py")"
	fi
elif run 0 "$TMP/kern" -m zchan -M stream -s 4K "${SMALL[@]}" &&
     grep -q 'not available: ' "$TMP/kern"; then
	ok "zchan kernel backend without /dev/zchan: 'not available' with a reason, exit 0"
else
	not_ok "zchan kernel backend without /dev/zchan is reported" \
		"$(tail -n 3 "$TMP/kern" "$TMP/kern.err")"
fi

# 16b: the fan modes on the kernel backend: N 1:1 channels polled through
# zchan_fd() and a copy per consumer run and verify; the many-ended
# channel runs, or says why not (a shape the module does not build yet)
if [ -c /dev/zchan ] || [ "$GUEST" = 1 ]; then
	if run 0 "$TMP/kfan" -m zchan,zchan-many -M fanin,fanout -N 1,2 -s 64K \
		-n 10 -w 2 -r 1 -q -t 120 --stall 30 --json && "$PY" -c '
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert len(res) == 8, len(res)
for r in res:
    assert r["status"] == "ok" or (r["method"] == "zchan-many" and
        r["status"] == "unavailable" and r["why"]), r
' "$TMP/kfan" 2>"$TMP/kfan.py"; then
		ok "fan modes on the kernel backend verify"
	else
		not_ok "fan modes on the kernel backend" \
			"$(tail -n 3 "$TMP/kfan.err" "$TMP/kfan.py")"
	fi
elif run 0 "$TMP/kfan" -m zchan-many -M fanin -N 2 -s 4K -n 10 -w 2 -r 1 -q &&
     grep -q 'not available: no /dev/zchan' "$TMP/kfan"; then
	ok "zchan-many without /dev/zchan: 'not available' with a reason, exit 0"
else
	not_ok "zchan-many without /dev/zchan is reported" \
		"$(tail -n 3 "$TMP/kfan" "$TMP/kfan.err")"
fi

# zchan-pages (issue 14): the memfd backend has no pages to hand over, so
# the method is declined there with the reason, the run goes on
if ZCHAN_BACKEND=memfd run 0 "$TMP/pgmemfd" -m zchan-pages,pipe -M stream \
	-s 4K "${SMALL[@]}" --json && "$PY" -c '
import json, sys
res = {r["method"]: r for r in json.load(open(sys.argv[1]))["results"]}
assert res["pipe"]["status"] == "ok", res["pipe"]
p = res["zchan-pages"]
assert p["status"] == "unavailable", p
assert "memfd backend" in p["why"] and "zchan_send_pages" in p["why"], p["why"]
' "$TMP/pgmemfd" 2>"$TMP/pgmemfd.py"; then
	ok "zchan-pages on the memfd backend: not available, with the reason, exit 0"
else
	not_ok "zchan-pages on the memfd backend is reported" \
		"$(tail -n 3 "$TMP/pgmemfd.err" "$TMP/pgmemfd.py")"
fi

# zchan-pages on the kernel backend: page-sized messages move and verify
# in stream and handoff (a flipped byte is caught: the consumer reads the
# producer's pages), a size that is not whole pages is declined
if [ "$GUEST" = 1 ]; then
	if run 0 "$TMP/pages" -m zchan-pages,zchan-copy -M stream,handoff \
		-s 100,4K,64K "${SMALL[@]}" --json && "$PY" -c '
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert len(res) == 12, len(res)
for r in res:
    where = "%s/%s/%d" % (r["method"], r["mode"], r["msg_size"])
    if r["method"] == "zchan-pages" and r["msg_size"] == 100:
        assert r["status"] == "unavailable" and "whole pages" in r["why"], (where, r["why"])
    else:
        assert r["status"] == "ok", (where, r["status"], r["why"])
        assert r["messages"] == int(sys.argv[2]), where
' "$TMP/pages" "$N" 2>"$TMP/pages.py" &&
	   run 3 "$TMP/pgbad" -m zchan-pages -M stream -s 64K "${SMALL[@]}" --corrupt &&
	   grep -q 'CHECKSUM MISMATCH' "$TMP/pgbad.err"; then
		ok "zchan-pages runs and verifies (stream, handoff), a corrupted byte is caught, 100 B declined"
	else
		not_ok "zchan-pages runs and verifies on the kernel backend" \
			"$(tail -n 3 "$TMP/pages.err" "$TMP/pages.py" "$TMP/pgbad.err" 2>/dev/null)"
	fi
fi

# 17: --plot writes a PNG
if [ "$GUEST" = 1 ]; then
	:
elif ! command -v gnuplot >/dev/null; then
	not_ok "--plot writes a PNG" "gnuplot (gnuplot-nox) is not installed"
elif run 0 "$TMP/plot" -m pipe,socketpair -M stream,pingpong -s 64,4K \
	"${SMALL[@]}" --plot "$TMP/p.png" &&
   [ "$(head -c 4 "$TMP/p.png" | od -An -c | tr -d ' ')" = '211PNG' ]; then
	ok "--plot writes a PNG"
else
	not_ok "--plot writes a PNG" "$(tail -n 3 "$TMP/plot.err")"
fi

if [ "$GUEST" != 1 ]; then
# iceoryx's daemon: what it leaves behind (nothing, when all goes well)
iox_leftovers() {
	local f
	for f in /dev/shm/iceoryx_mgmt "$TMP"/zchan-bench-iox.*; do
		[ -e "$f" ] && echo "left: $f"
	done
	pgrep -af 'iox-roudi -c .*/zchan-bench-iox\.' | sed 's/^/running: /'
}
if [ -e /dev/shm/iceoryx_mgmt ]; then
	IOX_BUSY="an iox-roudi is already running here (/dev/shm/iceoryx_mgmt)"
else
	IOX_BUSY=
fi
iox_built() { grep -q '^  iceoryx .*' "$TMP/list" && ! grep -q 'built without iceoryx' "$TMP/list"; }

# 18: iceoryx runs and verifies in every mode; its RouDi is gone after
if ! iox_built; then
	not_ok "iceoryx runs and verifies" "zchan-bench was built without iceoryx" \
		"(libiceoryx-binding-c-dev and iceoryx are project dependencies)"
elif [ -n "$IOX_BUSY" ]; then
	not_ok "iceoryx runs and verifies" "$IOX_BUSY"
elif TMPDIR=$TMP run 0 "$TMP/iox" -m iceoryx -M "$MODES" -s 100,64K "${SMALL[@]}" --json &&
   "$PY" -c '
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert len(res) == 8, len(res)
bad = [(r["mode"], r["msg_size"], r["status"], r["why"]) for r in res if r["status"] != "ok"]
assert not bad, bad
' "$TMP/iox" 2>"$TMP/iox.py" && [ -z "$(iox_leftovers)" ]; then
	ok "iceoryx runs and verifies in every mode; iox-roudi stopped, nothing left in /dev/shm"
else
	not_ok "iceoryx runs and verifies; nothing left behind" \
		"$(tail -n 3 "$TMP/iox.err" "$TMP/iox.py" 2>/dev/null)" "$(iox_leftovers)"
fi

# 19: a failed run still stops RouDi (which aborts on killed clients)
if iox_built && [ -z "$IOX_BUSY" ] &&
   TMPDIR=$TMP run 1 "$TMP/ioxstall" -m iceoryx -M stream -s 1K "${SMALL[@]}" \
	--debug-stall --stall 0.5 && grep -q 'stalled' "$TMP/ioxstall.err" &&
   [ -z "$(iox_leftovers)" ]; then
	ok "iceoryx: a failed run stops iox-roudi, nothing left in /dev/shm"
else
	not_ok "iceoryx: a failed run stops iox-roudi" "$IOX_BUSY" \
		"$(tail -n 3 "$TMP/ioxstall.err" 2>/dev/null)" "$(iox_leftovers)"
fi

# 20: so does SIGTERM in the middle of a run
iox_sigterm() {
	local pid i st
	TMPDIR=$TMP "$BENCH" -m iceoryx -M pingpong -s 64 -n 100000000 -w 2 -r 1 \
		-q -t 120 >"$TMP/ioxterm" 2>"$TMP/ioxterm.err" &
	pid=$!
	for i in $(seq 100); do
		grep -q 'ready' "$TMP"/zchan-bench-iox.*/roudi.log 2>/dev/null && break
		sleep 0.1
	done
	sleep 0.5
	kill -TERM "$pid"
	wait "$pid"
	st=$?
	[ "$st" = 143 ] || { echo "exit status $st, expected 143 (SIGTERM)"; return 1; }
	for i in $(seq 50); do
		[ -z "$(iox_leftovers)" ] && return 0
		sleep 0.1
	done
	iox_leftovers
	return 1
}
if ! iox_built || [ -n "$IOX_BUSY" ]; then
	not_ok "iceoryx: SIGTERM stops iox-roudi" "$IOX_BUSY" "built without iceoryx?"
elif iox_sigterm >"$TMP/ioxterm.why" 2>&1; then
	ok "iceoryx: zchan-bench killed by SIGTERM stops iox-roudi, nothing left"
else
	not_ok "iceoryx: SIGTERM stops iox-roudi" "$(cat "$TMP/ioxterm.why")" \
		"$(tail -n 3 "$TMP/ioxterm.err")"
fi

# 21: no iox-roudi (package iceoryx missing): not available, with the reason
if ZCHAN_BENCH_IOX_ROUDI=/nonexistent/iox-roudi run 0 "$TMP/noroudi" \
	-m iceoryx,pipe -M stream -s 1K "${SMALL[@]}" --json && "$PY" -c '
import json, sys
res = {r["method"]: r for r in json.load(open(sys.argv[1]))["results"]}
assert res["pipe"]["status"] == "ok", res["pipe"]
i = res["iceoryx"]
assert i["status"] == "unavailable", i
assert "iox-roudi" in i["why"] and ("not found" in i["why"] or "without iceoryx" in i["why"]), i["why"]
' "$TMP/noroudi" 2>"$TMP/noroudi.py"; then
	ok "iceoryx without iox-roudi: not available, with the reason, exit 0"
else
	not_ok "iceoryx without iox-roudi is reported" \
		"$(tail -n 3 "$TMP/noroudi.err" "$TMP/noroudi.py")"
fi

# 22: built without iceoryx's headers (ICEORYX=0 stands in for them)
if make --no-print-directory -s -C "$TOP/tools" ICEORYX=0 \
	BENCH="$TMP/zchan-bench-noiox" "$TMP/zchan-bench-noiox" >"$TMP/noiox.make" 2>&1 &&
   grep -q 'iceoryx unavailable' "$TMP/noiox.make" &&
   "$TMP/zchan-bench-noiox" --list >"$TMP/noiox.list" &&
   grep -q '^  iceoryx .*not available: built without iceoryx' "$TMP/noiox.list" &&
   timeout 60 "$TMP/zchan-bench-noiox" -m iceoryx,pipe -M stream -s 1K "${SMALL[@]}" \
	>"$TMP/noiox" 2>"$TMP/noiox.err" &&
   grep -q ' iceoryx  *not available: built without iceoryx' "$TMP/noiox"; then
	ok "built without iceoryx: the build says so, --list and the table give the reason"
else
	not_ok "built without iceoryx is reported" "$(tail -n 3 "$TMP/noiox.make")" \
		"$(tail -n 3 "$TMP/noiox" "$TMP/noiox.err" 2>/dev/null)"
fi

# 23: cma runs and verifies in every mode, odd and page-crossing sizes
if run 0 "$TMP/cma" -m cma -M "$MODES" -s 100,1M "${SMALL[@]}" --json && "$PY" -c '
import json, sys
res = json.load(open(sys.argv[1]))["results"]
bad = [(r["mode"], r["msg_size"], r["status"], r["why"]) for r in res if r["status"] != "ok"]
assert len(res) == 8 and not bad, bad
' "$TMP/cma" 2>"$TMP/cma.py"; then
	ok "cma (process_vm_readv) runs and verifies in every mode"
else
	not_ok "cma runs and verifies" "$(tail -n 3 "$TMP/cma.err" "$TMP/cma.py")"
fi

# 24: process_vm_readv refused (a kernel without CONFIG_CROSS_MEMORY_ATTACH,
# simulated by a preloaded failing wrapper): not available, with the reason
cat >"$TMP/nocma.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <sys/uio.h>
ssize_t process_vm_readv(pid_t pid, const struct iovec *l, unsigned long nl,
			 const struct iovec *r, unsigned long nr, unsigned long fl)
{
	(void)pid; (void)l; (void)nl; (void)r; (void)nr; (void)fl;
	errno = ENOSYS;
	return -1;
}
C
if ${CC:-cc} -shared -fPIC -o "$TMP/nocma.so" "$TMP/nocma.c" 2>"$TMP/nocma.cc" &&
   LD_PRELOAD=$TMP/nocma.so run 0 "$TMP/nocma" -m cma,pipe -M stream -s 1K \
	"${SMALL[@]}" && grep -q ' cma  *not available: process_vm_readv: .*CROSS_MEMORY_ATTACH' "$TMP/nocma" &&
   grep -q ' pipe  .*1.00x' "$TMP/nocma"; then
	ok "cma without process_vm_readv: not available, with the reason, exit 0"
else
	not_ok "cma without process_vm_readv is reported" \
		"$(tail -n 3 "$TMP/nocma.cc" "$TMP/nocma" "$TMP/nocma.err" 2>/dev/null)"
fi

# 25: handoff is a rate of messages: no bytes per second in its table
if run 0 "$TMP/handoff" -m pipe,shm-flag -M handoff -s 1M "${SMALL[@]}" &&
   grep -q '^size .*msgs/s *vs pipe' "$TMP/handoff" &&
   ! grep -q 'throughput\|B/s' "$TMP/handoff"; then
	ok "handoff is tabled in messages per second"
else
	not_ok "handoff is tabled in messages per second" "$(head -n 8 "$TMP/handoff")"
fi

# 26: handoff runs last long enough to be a rate: a zero-copy method gets
# more than the 16 messages of 4 MiB a copying one needs for 10 ms
if run 0 "$TMP/hsize" -m pipe,zchan-memfd -M handoff -s 4M --scale 0.1 -r 1 -q \
	-t 60 --json && "$PY" -c '
import json, sys
res = {r["method"]: r for r in json.load(open(sys.argv[1]))["results"]}
assert all(r["status"] == "ok" for r in res.values()), res
assert res["pipe"]["messages"] == 16, res["pipe"]["messages"]
assert res["zchan-memfd"]["messages"] > 16, res["zchan-memfd"]["messages"]
' "$TMP/hsize" 2>"$TMP/hsize.py"; then
	ok "handoff runs are sized by time: zchan-memfd moves more than pipe's 16 messages"
else
	not_ok "handoff runs are sized by time" "$(tail -n 3 "$TMP/hsize.err" "$TMP/hsize.py")"
fi

# 28: placements side by side in one run: idle, same-core, oversub (2 x
# nproc pairs at once) and 3 pairs; every pair moves -n messages, the
# spinning mode is declined where spinners outnumber the CPUs, and every
# point carries its channel's setup figures
NPROC=$(nproc)
if run 0 "$TMP/place" -m pipe,zchan-memfd -M handoff,pingpong,pingpong-busy \
	-s 64 -P idle,same-core,oversub,3 -n 40 -w 2 -r 1 -q -t 60 --json \
	--csv="$TMP/place.csv" && "$PY" - "$TMP/place" "$NPROC" 2>"$TMP/place.py" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
nproc = int(sys.argv[2])
assert len(res) == 2 * 3 * 4, len(res)
pairs = {"idle": 1, "same-core": 1, "oversub": 2 * nproc, "pairs": 3}
for r in res:
    where = "%s %s %s" % (r["placement"], r["method"], r["mode"])
    assert r["pairs"] == pairs[r["placement"]], where
    busy = r["mode"] == "pingpong-busy"
    if busy and (r["placement"] == "same-core" or 2 * r["pairs"] > nproc):
        assert r["status"] == "unavailable", where
        continue
    assert r["status"] == "ok", "%s: %s %s" % (where, r["status"], r["why"])
    pp = r["mode"].startswith("pingpong")
    assert r["messages"] == 40 * r["pairs"] * (2 if pp else 1), where
    assert r["setup_ns"] > 0, where
    assert r["idle_rss_bytes"] is not None, where
    assert r["producer_fds"] >= 1 and r["consumer_fds"] >= 1, where
    if r["method"] == "zchan-memfd":
        assert r["memfd_bytes"] > 0, where
        assert r["lib_syscalls_per_msg"] is not None, where
    else:
        assert r["memfd_bytes"] == 0 and r["lib_syscalls_per_msg"] is None, where
PY
then
	if [ "$(head -n 1 "$TMP/place.csv" | tr ',' '\n' | grep -c 'placement\|pairs\|setup_ns')" = 3 ] &&
	   [ "$(grep -c ',oversub,' "$TMP/place.csv")" = 6 ]; then
		ok "placements idle, same-core, oversub and N pairs side by side, setup figures in JSON and CSV"
	else
		not_ok "placements in the CSV" "$(head -n 2 "$TMP/place.csv")"
	fi
else
	not_ok "placements side by side" "$(tail -n 3 "$TMP/place.err" "$TMP/place.py")"
fi

# 29: the scale sweep's table: one row per placement and method
if run 0 "$TMP/scale" -m pipe,zchan-memfd -M handoff -s 64 -P 1,2,8 -n 20 \
	-w 2 -r 1 -q -t 60 && grep -q '^handoff, pairs: 8 pairs at once' "$TMP/scale" &&
   grep -q '^channel setup' "$TMP/scale" &&
   [ "$(grep -c '^pairs  *[128] zchan-memfd ' "$TMP/scale")" = 3 ]; then
	ok "the scale sweep's tables: a section per pair count, setup rows per pair count"
else
	not_ok "the scale sweep's tables" "$(tail -n 12 "$TMP/scale" "$TMP/scale.err")"
fi

# 30-33: the fan modes: N producers into one consumer, one producer to N
# consumers; every method that fans here runs and verifies (or says why
# not), each producer's order checked, and a flipped byte is caught
FAN=(pipe socketpair shm-flag)
for m in iceoryx zchan-memfd zchan-memfd-copy "${FAN_ONLY[@]}"; do
	case ",$METHODS,${FAN_ONLY[*]}," in
	*",$m,"* | *" $m "* | *",$m "* | *" $m,"*) FAN+=("$m") ;;
	esac
done
FANM=$(IFS=,; echo "${FAN[*]}")
if run 0 "$TMP/fan" -m "$FANM" -M fanin,fanout -N 1,3 -s 4K,100 -n 30 \
	-w 2 -r 1 -q -t 60 --json="$TMP/fan.json" &&
   grep -q '^fanin, N = 3, N producers into one consumer' "$TMP/fan" &&
   grep -q '^4 KiB  *pipe  *N 1:1, polled ' "$TMP/fan" &&
   grep -q '^ *shm-flag  *copy per consumer ' "$TMP/fan" &&
   "$PY" - "$TMP/fan.json" "$((${#FAN[@]} * 2 * 2 * 2))" "${FAN_ONLY[*]}" \
	>"$TMP/fan.py" 2>&1 <<'PY'
import json, sys

res = json.load(open(sys.argv[1]))["results"]
fan_only = sys.argv[3].split()
assert len(res) == int(sys.argv[2]), "%d results" % len(res)
for r in res:
    where = "%s %s x%s %s" % (r["method"], r["mode"], r["ends"], r["msg_size"])
    assert r["placement"] == "fan" and r["ends"] == r["pairs"], where
    if r["status"] == "unavailable":
        # shm-flag has no fan-in; a many-ended channel may not be built yet
        assert (r["method"], r["mode"]) == ("shm-flag", "fanin") or \
            r["method"] in fan_only, "%s: %s" % (where, r["why"])
        assert r["why"], where
        continue
    assert r["status"] == "ok", "%s: %s %s" % (where, r["status"], r["why"])
    n = r["ends"]
    fanin = r["mode"] == "fanin"
    assert r["messages"] == 30 * n, "%s: %s messages" % (where, r["messages"])
    assert (r["producers"], r["consumers"]) == ((n, 1) if fanin else (1, n)), where
    assert abs(r["consumer_msgs_per_sec"] * r["consumers"] - r["msgs_per_sec"]) \
        <= 1e-4 * r["msgs_per_sec"], where
    assert r["fan_shape"] in ("lanes", "shared"), where
    assert r["cpu_ns_per_msg"] > 0 and r["bytes_per_sec"] > 0, where
PY
then
	ok "fan modes: fanin and fanout, N = 1 and 3, every fanning method verified ($FANM)"
else
	not_ok "fan modes" "$(tail -n 5 "$TMP/fan.err" "$TMP/fan.py" "$TMP/fan")"
fi
if run 3 "$TMP/fanbad" -m "$FANM" -M fanin,fanout -N 2 -s 4K -n 30 -w 2 -r 1 \
	-q -t 60 --corrupt --json &&
   "$PY" -c '
import json, sys
res = json.load(open(sys.argv[1]))["results"]
bad = [(r["method"], r["mode"], r["status"]) for r in res
       if r["status"] not in ("corrupt", "unavailable")]
assert res and not bad, bad
assert any(r["status"] == "corrupt" for r in res)
' "$TMP/fanbad" 2>"$TMP/fanbad.py"; then
	ok "fan modes: --corrupt is caught for every fanning method"
else
	not_ok "fan modes: --corrupt" "$(tail -n 5 "$TMP/fanbad.err" "$TMP/fanbad.py")"
fi
# a producer's first message larger than its pipe must not wait forever
# for a consumer that went to the barrier after another producer's first
if run 0 "$TMP/fanbig" -m pipe,socketpair -M fanin -N 3 -s 256K \
	--pipe-size 64K -n 4 -w 2 -r 1 -q -t 60 --stall 10 &&
   [ "$(grep -c ' N 1:1, polled ' "$TMP/fanbig")" = 2 ]; then
	ok "fan modes: fan-in of messages larger than a pipe runs through"
else
	not_ok "fan modes: fan-in of messages larger than a pipe" \
		"$(tail -n 3 "$TMP/fanbig.err" "$TMP/fanbig")"
fi
if run 1 "$TMP/fanstall" -m pipe -M fanin -N 2 -s 4K -n 200 -w 2 -r 1 -q \
	--stall 1 --debug-stall && grep -q 'stalled' "$TMP/fanstall.err"; then
	ok "fan modes: a stalled consumer is reported, never a hang"
else
	not_ok "fan modes: --debug-stall" "$(tail -n 3 "$TMP/fanstall.err")"
fi
fi # native only

[ "$failures" = 0 ]
