#!/usr/bin/python3
# SPDX-License-Identifier: MIT OR LGPL-2.1
"""tools/zchan-bench/rst-tables.py --targets, as TAP: the verdicts on issue
10's targets come from the JSON of a run, so a made-up run whose figures
sit just either side of each target must get exactly the verdicts they
earn, with the missed points named."""
import json
import os
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
TOOL = os.path.join(TOP, "tools", "zchan-bench", "rst-tables.py")
SIZES = [64, 256, 1024, 4096, 16384, 65536, 1 << 20, 16 << 20]
PIPE = {"stream": 1e6, "handoff": 1e6, "pingpong": 20000.0,
        "pingpong-busy": 3000.0}


def point(method, mode, size, rate=None, p50=None, cpu=1000.0, sys_=2.0):
    return {"method": method, "mode": mode, "msg_size": size, "status": "ok",
            "msgs_per_sec": rate, "bytes_per_sec": rate and rate * size,
            "rtt_p50_ns": p50, "cpu_ns_per_msg": cpu, "syscalls_per_msg": sys_}


def run_doc(zchan_stream_4k, zchan_busy_p50):
    """A run in which zchan meets every target, but for the two figures
    given (stream 4 KiB in msgs/s, pingpong-busy 64 B p50 in ns)."""
    res = []
    for s in SIZES:
        for peer, f in (("pipe", 1.0), ("vmsplice", 2.0), ("iceoryx", 2.5),
                        ("cma", 1.5), ("shm-flag", 1.2)):
            res.append(point(peer, "stream", s, PIPE["stream"] * f))
            res.append(point(peer, "handoff", s, PIPE["handoff"] * f))
            res.append(point(peer, "pingpong", s, p50=PIPE["pingpong"] / f))
            res.append(point(peer, "pingpong-busy", s,
                             p50=PIPE["pingpong-busy"] / f))
        stream = zchan_stream_4k if s == 4096 else 12e6
        res.append(point("zchan-memfd", "stream", s, stream, cpu=100.0,
                         sys_=0.001))
        res.append(point("zchan-memfd", "handoff", s, 6e6, cpu=100.0, sys_=0))
        res.append(point("zchan-memfd", "pingpong", s, p50=500.0, cpu=100.0))
        res.append(point("zchan-memfd", "pingpong-busy", s,
                         p50=zchan_busy_p50 if s == 64 else 200.0, cpu=100.0))
    # shm-flag's pingpong-busy at 64 B: 200 ns, so the target is 300 ns
    for r in res:
        if r["method"] == "shm-flag" and r["mode"] == "pingpong-busy":
            r["rtt_p50_ns"] = 200.0
    return {"env": {}, "results": res}


def targets(doc):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    try:
        out = subprocess.run([sys.executable, TOOL, "--targets", f.name],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    rows, lines = [], out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("   * - ") and i + 2 < len(lines):
            rows.append((line[7:], lines[i + 1][7:], lines[i + 2][7:]))
    return rows[1:]		# the header row


n = 0
failed = 0


def check(desc, cond, *why):
    global n, failed
    n += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, desc))
    if not cond:
        failed += 1
        for w in why:
            print("# %s" % w)


print("1..4")
good = targets(run_doc(3.1e6, 290.0))
check("a run that meets every target: 11 targets, all met",
      len(good) == 11 and all(v == "met" for _, _, v in good), *good)

bad = dict((t, v) for t, _, v in targets(run_doc(2.9e6, 310.0)))
missed = [t for t, v in bad.items() if v != "met"]
check("stream 4 KiB at 2.9x pipe misses the 3x target, naming 4 KiB",
      bad.get("stream >= 3x pipe at 256 B - 16 KiB", "") ==
      "**missed**: 4 KiB 2.90x", bad)
check("pingpong-busy at 1.55x shm-flag misses the 1.5x target",
      bad.get("pingpong-busy 64 B p50 <= 1.5x shm-flag's and <= iceoryx's",
              "").startswith("**missed**: 64 B 1.55x shm-flag's"), bad)
check("nothing else is missed", sorted(missed) == sorted([
    "stream >= 3x pipe at 256 B - 16 KiB",
    "pingpong-busy 64 B p50 <= 1.5x shm-flag's and <= iceoryx's"]), missed)
sys.exit(1 if failed else 0)
