#!/usr/bin/python3
# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Turn zchan-bench --json output into the reStructuredText tables of
Documentation/benchmarks.rst, so the figures there are copied by a program,
not by hand.

usage: rst-tables.py [--zchan METHOD] [--methods LIST] NATIVE.json [GUEST.json]

Prints, for the native run: stream throughput (GB/s), handoff and stream
rates (millions of messages per second), pingpong and pingpong-busy p50
round trips, stream syscalls and CPU per message, and the ratios of METHOD
(default zchan-memfd) to pipe, vmsplice, iceoryx and cma measured side by
side; then the guest run's stream and handoff tables, if given.
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


def table(title, methods, sizes, res, mode, field, fmt, scale=1.0):
    out = [".. list-table:: %s" % title, "   :header-rows: 1", ""]
    out.append("   * - method")
    out += ["     - %s" % size_name(s) for s in sizes]
    for m in methods:
        if not any((m, mode, s) in res for s in sizes):
            continue
        out.append("   * - %s" % m)
        out += ["     - %s" % cell(res.get((m, mode, s)), field, fmt, scale)
                for s in sizes]
    return "\n".join(out) + "\n"


def ratio(res, a, b, mode, s, field, lower_better=False):
    ra, rb = res.get((a, mode, s)), res.get((b, mode, s))
    if not ra or not rb or ra["status"] != "ok" or rb["status"] != "ok":
        return None
    va, vb = ra[field], rb[field]
    if not va or not vb:
        return None
    return vb / va if lower_better else va / vb


def ratio_table(title, zc, peers, sizes, res, rows):
    out = [".. list-table:: %s" % title, "   :header-rows: 1", ""]
    out.append("   * - %s against" % zc)
    out += ["     - %s" % size_name(s) for s in sizes]
    for mode, field, lower in rows:
        for peer in peers:
            vals = [ratio(res, zc, peer, mode, s, field, lower) for s in sizes]
            if all(v is None for v in vals):
                continue
            out.append("   * - %s, %s" % (peer, mode))
            out += ["     - %s" % ("-" if v is None else "%sx" % sig3(v))
                    for v in vals]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zchan", default="zchan-memfd")
    ap.add_argument("--methods", default="pipe,vmsplice,socketpair,tcp,"
                    "shm-flag,cma,iceoryx,zchan,zchan-copy,zchan-memfd,"
                    "zchan-memfd-copy")
    ap.add_argument("native")
    ap.add_argument("guest", nargs="?")
    args = ap.parse_args()

    doc, res = load(args.native)
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
