#!/usr/bin/python3
# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Turn zchan-bench --json output into the reStructuredText tables of
Documentation/benchmarks.rst, so the figures there are copied by a program,
not by hand.

usage: rst-tables.py [--zchan METHOD] [--methods LIST] NATIVE.json [GUEST.json]
       rst-tables.py --targets [--best] [--zchan METHOD] NATIVE.json

Prints, for the native run: stream throughput (GB/s), handoff and stream
rates (millions of messages per second), pingpong and pingpong-busy p50
round trips, stream syscalls and CPU per message, and the ratios of METHOD
(default zchan-memfd) to pipe, vmsplice, iceoryx and cma measured side by
side; then the guest run's stream and handoff tables, if given.  With
--targets, issue 10's targets instead: what the run measured against each,
and whether it was met, the points that missed named.  --best takes the
rates from each point's fastest run instead of its median run.
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        doc = json.load(f)
    res = {}
    for r in doc["results"]:
        res[(r["method"], r["mode"], r["msg_size"])] = r
    return doc, res


def size_name(n):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return "%d %s" % (n // div, unit)
    return "%d B" % n


def sig3(v):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3g" % v


def ns(v):
    if v is None:
        return "-"
    if v < 1000:
        return "%.0f ns" % v
    if v < 1e6:
        return "%.1f us" % (v / 1e3)
    return "%.2f ms" % (v / 1e6)


def cell(r, field, fmt, scale=1.0):
    if r is None:
        return "-"
    if r["status"] != "ok":
        return "n/a" if r["status"] == "unavailable" else r["status"]
    v = r.get(field)
    return fmt(None if v is None else v / scale)


def list_table(title, rows):
    """A list-table whose first row is the header."""
    out = [".. list-table:: %s" % title, "   :header-rows: 1", ""]
    for row in rows:
        out.append("   * - %s" % row[0])
        out += ["     - %s" % c for c in row[1:]]
    return "\n".join(out) + "\n"


def table(title, methods, sizes, res, mode, field, fmt, scale=1.0):
    rows = [["method"] + [size_name(s) for s in sizes]]
    for m in methods:
        if not any((m, mode, s) in res for s in sizes):
            continue
        rows.append([m] + [cell(res.get((m, mode, s)), field, fmt, scale)
                           for s in sizes])
    return list_table(title, rows)


def ratio(res, a, b, mode, s, field, lower_better=False):
    ra, rb = res.get((a, mode, s)), res.get((b, mode, s))
    if not ra or not rb or ra["status"] != "ok" or rb["status"] != "ok":
        return None
    va, vb = ra[field], rb[field]
    if not va or not vb:
        return None
    return vb / va if lower_better else va / vb


def ratio_table(title, zc, peers, sizes, res, rows):
    table_rows = [["%s against" % zc] + [size_name(s) for s in sizes]]
    for mode, field, lower in rows:
        for peer in peers:
            vals = [ratio(res, zc, peer, mode, s, field, lower) for s in sizes]
            if all(v is None for v in vals):
                continue
            table_rows.append(["%s, %s" % (peer, mode)] +
                              ["-" if v is None else "%sx" % sig3(v)
                               for v in vals])
    return list_table(title, table_rows)


def best_runs(res):
    """Rates of each point's fastest run (seconds_min), in place of the
    median's: on a VM whose slow spells can take most of a point's runs,
    what each method does when it is not in one."""
    for r in res.values():
        if r["status"] == "ok" and r.get("seconds_min"):
            rate = r["messages"] / r["seconds_min"]
            r["bytes_per_sec"] = r["bytes_per_sec"] * rate / r["msgs_per_sec"]
            r["msgs_per_sec"] = rate


def sizes_of(res, mode, lo=0, hi=1 << 62):
    return sorted({k[2] for k in res if k[1] == mode and lo <= k[2] <= hi})


def misses_text(misses):
    return ", ".join("%s %s" % (size_name(s), txt) for s, txt in misses)


def tagged(misses, tag):
    """Missed points with what they missed against: "0.6x" -> "0.6x TAG"."""
    return [(s, "%s %s" % (txt, tag)) for s, txt in misses]


def ratio_target(res, zc, peer, mode, sizes, need, field="msgs_per_sec",
                 lower=False):
    """(measured text, missed points) of "zc >= need x peer" at sizes."""
    vals = [(s, ratio(res, zc, peer, mode, s, field, lower)) for s in sizes]
    vals = [(s, v) for s, v in vals if v is not None]
    if not vals:
        return "no %s figures" % peer, [(0, "not measured")]
    lo = min(vals, key=lambda sv: sv[1])
    text = "%sx (%s) to %sx" % (sig3(lo[1]), size_name(lo[0]),
                                sig3(max(v for _, v in vals)))
    if len(vals) <= 4:
        text = ", ".join("%sx (%s)" % (sig3(v), size_name(s)) for s, v in vals)
    return text, [(s, "%sx" % sig3(v)) for s, v in vals if v < need]


def targets(res, zc):
    """Issue 10's targets against one run: (target, measured, verdict)."""
    ok = lambda m, mode, s: (res.get((m, mode, s)) or {}).get("status") == "ok"
    peers = [m for m in ("pipe", "vmsplice", "socketpair", "tcp", "shm-flag",
                         "cma", "iceoryx") if any(k[0] == m for k in res)]
    rows = []

    def row(target, parts):
        misses = [m for _, ms in parts for m in ms]
        rows.append((target, "; ".join(t for t, _ in parts),
                     "met" if not misses else "**missed**: " +
                     misses_text(misses)))

    hs = sizes_of(res, "handoff")
    rates = [(s, res[(zc, "handoff", s)]["msgs_per_sec"] / 1e6) for s in hs
             if ok(zc, "handoff", s)]
    row("handoff >= 5 M msgs/s at every size, 64 B - 16 MiB",
        [("%s - %s M" % (sig3(min(v for _, v in rates)),
                         sig3(max(v for _, v in rates))) if rates else "-",
          [(s, "%s M" % sig3(v)) for s, v in rates if v < 5])])
    row("handoff >= 5x pipe at every size",
        [ratio_target(res, zc, "pipe", "handoff", hs, 5)])
    ss = sizes_of(res, "stream")
    below = []
    for peer in peers:
        _, ms = ratio_target(res, zc, peer, "stream", ss, 1)
        below += tagged(ms, "against " + peer)
    row("stream never below pipe or any peer",
        [("%d peers (%s) at %d sizes" % (len(peers), ", ".join(peers),
                                         len(ss)), sorted(below))])
    row("stream >= 10x pipe at 64 B",
        [ratio_target(res, zc, "pipe", "stream", sizes_of(res, "stream", 64, 64), 10)])
    row("stream >= 3x pipe at 256 B - 16 KiB",
        [ratio_target(res, zc, "pipe", "stream",
                      sizes_of(res, "stream", 256, 16 << 10), 3)])
    big = sizes_of(res, "stream", 64 << 10)
    t1, m1 = ratio_target(res, zc, "pipe", "stream", big, 4)
    t2, m2 = ratio_target(res, zc, "vmsplice", "stream", big, 1.5)
    row("stream >= 4x pipe and >= 1.5x vmsplice from 64 KiB",
        [("pipe: " + t1, tagged(m1, "pipe")),
         ("vmsplice: " + t2, tagged(m2, "vmsplice"))])
    parts = []
    for peer in ("iceoryx", "cma"):
        for mode in ("stream", "handoff"):
            t, ms = ratio_target(res, zc, peer, mode, sizes_of(res, mode), 1)
            parts.append(("%s %s: %s" % (peer, mode, t),
                          tagged(ms, "%s %s" % (peer, mode))))
    row("zchan >= iceoryx and >= cma, stream and handoff, every size", parts)
    sc = [(s, res[(zc, "stream", s)]["syscalls_per_msg"]) for s in ss
          if ok(zc, "stream", s)]
    row("stream syscalls per message <= 0.01 at every size",
        [(", ".join("%s (%s)" % (sig3(v), size_name(s)) for s, v in sc),
          [(s, sig3(v)) for s, v in sc if v is None or v > 0.01])])
    parts = []
    for mode in ("stream", "handoff", "pingpong", "pingpong-busy"):
        t, ms = ratio_target(res, zc, "pipe", mode, sizes_of(res, mode), 1,
                             "cpu_ns_per_msg", True)
        parts.append(("%s: %s less" % (mode, t), tagged(ms, mode)))
    row("CPU per message <= pipe's", parts)
    p50 = {m: (res.get((m, "pingpong-busy", 64)) or {}).get("rtt_p50_ns")
           for m in (zc, "shm-flag", "iceoryx")}
    parts = []
    for peer, need in (("shm-flag", 1.5), ("iceoryx", 1)):
        if not p50[zc] or not p50[peer]:
            parts.append(("no %s figure" % peer, [(64, "not measured")]))
            continue
        x = p50[zc] / p50[peer]
        parts.append(("%s's %s: %sx" % (peer, ns(p50[peer]), sig3(x)),
                      [(64, "%sx %s's" % (sig3(x), peer))] if x > need else []))
    parts[0] = ("%s; " % ns(p50[zc]) + parts[0][0], parts[0][1])
    row("pingpong-busy 64 B p50 <= 1.5x shm-flag's and <= iceoryx's", parts)
    row("pingpong (blocking) p50 <= pipe's at every size",
        [ratio_target(res, zc, "pipe", "pingpong", sizes_of(res, "pingpong"),
                      1, "rtt_p50_ns", True)])
    return list_table("issue 10's targets, %s" % zc,
                      [("target", "measured", "verdict")] + rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zchan", default="zchan-memfd")
    ap.add_argument("--methods", default="pipe,vmsplice,socketpair,tcp,"
                    "shm-flag,cma,iceoryx,zchan,zchan-copy,zchan-memfd,"
                    "zchan-memfd-copy")
    ap.add_argument("--targets", action="store_true",
                    help="print issue 10's targets and verdicts only")
    ap.add_argument("--best", action="store_true",
                    help="rates from each point's fastest run, not the median")
    ap.add_argument("native")
    ap.add_argument("guest", nargs="?")
    args = ap.parse_args()

    doc, res = load(args.native)
    if args.best:
        best_runs(res)
    if args.targets:
        print(targets(res, args.zchan))
        return 0
    methods = args.methods.split(",")
    sizes = sorted({k[2] for k in res})
    env = doc["env"]
    print(".. zchan-bench %s, %s, %d CPUs, Linux %s, load at start %s\n" % (
        env["tool_version"], env["cpu"], env["ncpus"], env["kernel"],
        env["loadavg"]))
    print(table("stream: throughput, GB/s", methods, sizes, res, "stream",
                "bytes_per_sec", sig3, 1e9))
    print(table("stream: millions of messages per second", methods, sizes,
                res, "stream", "msgs_per_sec", sig3, 1e6))
    print(table("handoff: millions of messages per second", methods, sizes,
                res, "handoff", "msgs_per_sec", sig3, 1e6))
    print(table("pingpong (blocking): round trip p50", methods, sizes, res,
                "pingpong", "rtt_p50_ns", ns))
    print(table("pingpong-busy: round trip p50", methods, sizes, res,
                "pingpong-busy", "rtt_p50_ns", ns))
    print(table("stream: system calls per message", methods, sizes, res,
                "stream", "syscalls_per_msg", sig3))
    print(table("stream: CPU time per message (both sides)", methods, sizes,
                res, "stream", "cpu_ns_per_msg", ns))
    peers = [m for m in ("pipe", "vmsplice", "iceoryx", "cma", "shm-flag")
             if m != args.zchan]
    print(ratio_table("%s side by side (x: how many times better)" %
                      args.zchan, args.zchan, peers, sizes, res,
                      [("stream", "msgs_per_sec", False),
                       ("handoff", "msgs_per_sec", False),
                       ("pingpong", "rtt_p50_ns", True),
                       ("pingpong-busy", "rtt_p50_ns", True)]))
    if args.guest:
        gdoc, gres = load(args.guest)
        gsizes = sorted({k[2] for k in gres})
        print(table("guest stream: throughput, MB/s (emulated: compare rows "
                    "only)", methods, gsizes, gres, "stream",
                    "bytes_per_sec", sig3, 1e6))
        print(table("guest handoff: thousands of messages per second "
                    "(emulated: compare rows only)", methods, gsizes, gres,
                    "handoff", "msgs_per_sec", sig3, 1e3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
