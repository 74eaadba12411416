#!/usr/bin/python3
# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Turn zchan-bench --json output into the reStructuredText tables of
Documentation/benchmarks.rst, so the figures there are copied by a program,
not by hand.

usage: rst-tables.py [--zchan METHOD] [--methods LIST] [--guest GUEST.json]
                     [--scale SCALE.json] [--pages PAGES.json ...]
                     [--fan FAN.json] NATIVE.json
       rst-tables.py --targets [--best] [--zchan METHOD] [--scale SCALE.json]
                     [--guest GUEST.json] [--fan FAN.json] NATIVE.json
       rst-tables.py --fan-only FAN.json

NATIVE.json is make bench's native run (placements idle, same-core and
oversub), SCALE.json its scale sweep (1 to 64 pairs at once), GUEST.json
its guest run (the kernel backend).  Prints, per placement: stream
throughput (GB/s), handoff rates (millions of messages per second),
pingpong and pingpong-busy p50 round trips, CPU and system calls per
message; then the scale sweep's aggregate rates, each channel's setup
time, memory and descriptors, the guest's tables, and FAN.json's (the
fan modes: N producers into one consumer, one producer to N consumers)
throughput in all, per consumer and CPU per message by N; --fan-only
prints those alone.  With --targets,
issue 24's targets instead: what the runs measured against each, and
whether it was met, the points that missed named.  --best takes the rates
from each point's fastest run instead of its median run.
"""
import argparse
import csv
import io
import json
import sys

PEERS = ("pipe", "vmsplice", "socketpair", "tcp", "shm-flag", "cma", "iceoryx")


def load(path, placement="idle"):
    """The run's document and its points of one placement, keyed by
    (method, mode, size); placements "pairs" and "fan" key by (method,
    mode, size, pairs), the pairs of "fan" being its ends, N."""
    with open(path) as f:
        doc = json.load(f)
    res = {}
    for r in doc["results"]:
        if r.get("placement", "idle") != placement:
            continue
        key = (r["method"], r["mode"], r["msg_size"])
        if placement in ("pairs", "fan"):
            key += (r.get("pairs", 1),)
        res[key] = r
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


def kib(v):
    return "-" if v is None else "%.0f KiB" % (v / 1024)


def cell(r, field, fmt, scale=1.0):
    if r is None:
        return "-"
    if r["status"] != "ok":
        return "n/a" if r["status"] == "unavailable" else r["status"]
    v = r.get(field)
    return fmt(None if v is None else v / scale)


def rst_table(title, rows, widths=None):
    """A csv-table, one row a line, whose first row is the header."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n", skipinitialspace=True)
    for row in rows:
        w.writerow(row)
    head = [".. csv-table:: %s" % title, "   :header-rows: 1"]
    if widths:
        head.append("   :widths: %s" % widths)
    body = ["   " + line.replace('","', '", "').replace(",", ", ")
            .replace(",  ", ", ") for line in out.getvalue().splitlines()]
    return "\n".join(head + [""] + body) + "\n"


def table(title, methods, sizes, res, mode, field, fmt, scale=1.0):
    """Methods against sizes; a method that ran at none of them (not
    available here: the kernel backend on a host without the module) is
    left out."""
    rows = [["method"] + [size_name(s) for s in sizes]]
    for m in methods:
        cells = [cell(res.get((m, mode, s)), field, fmt, scale)
                 for s in sizes]
        if all(c in ("-", "n/a") for c in cells):
            continue
        rows.append([m] + cells)
    return rst_table(title, rows)


def ratio(res, a, b, mode, s, field, lower_better=False):
    ra, rb = res.get((a, mode, s)), res.get((b, mode, s))
    if not ra or not rb or ra["status"] != "ok" or rb["status"] != "ok":
        return None
    va, vb = ra.get(field), rb.get(field)
    if not va or not vb:
        return None
    return vb / va if lower_better else va / vb


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


def peers_in(res):
    return [m for m in PEERS if any(k[0] == m for k in res)]


def misses_text(misses):
    return ", ".join("%s %s" % (size_name(s), txt) if s else txt
                     for s, txt in misses)


def tagged(misses, tag):
    """Missed points with what they missed against: "0.6x" -> "0.6x TAG"."""
    return [(s, "%s %s" % (txt, tag)) for s, txt in misses]


def ratio_target(res, zc, peer, mode, sizes, need, field="msgs_per_sec",
                 lower=False):
    """(measured text, missed points) of "zc >= need x peer" at sizes."""
    vals = [(s, ratio(res, zc, peer, mode, s, field, lower)) for s in sizes]
    vals = [(s, v) for s, v in vals if v is not None]
    if not vals:
        return "no %s figures" % peer, [(0, "%s not measured" % peer)]
    lo = min(vals, key=lambda sv: sv[1])
    text = "%sx (%s) to %sx" % (sig3(lo[1]), size_name(lo[0]),
                                sig3(max(v for _, v in vals)))
    if len(vals) <= 4:
        text = ", ".join("%sx (%s)" % (sig3(v), size_name(s)) for s, v in vals)
    return text, [(s, "%sx" % sig3(v)) for s, v in vals if v < need]


def p50_target(res, zc, peer, mode, sizes, most):
    """(measured text, missed points) of "zc's p50 <= most x peer's"; the
    figures are zchan's p50 over the peer's (lower is better)."""
    vals = [(s, ratio(res, peer, zc, mode, s, "rtt_p50_ns", True))
            for s in sizes]
    vals = [(s, v) for s, v in vals if v is not None]
    if not vals:
        return "no %s figures" % peer, [(0, "%s not measured" % peer)]
    hi = max(vals, key=lambda sv: sv[1])
    text = "%sx to %sx (%s) %s's" % (sig3(min(v for _, v in vals)),
                                     sig3(hi[1]), size_name(hi[0]), peer)
    if len(vals) <= 4:
        text = ", ".join("%sx (%s)" % (sig3(v), size_name(s))
                         for s, v in vals) + " %s's" % peer
    return text, [(s, "%sx %s's" % (sig3(v), peer)) for s, v in vals
                  if v > most]


class Targets:
    def __init__(self):
        self.rows = []

    def row(self, target, parts):
        misses = [m for _, ms in parts for m in ms]
        self.rows.append((target, "; ".join(t for t, _ in parts),
                          "met" if not misses else "**missed**: " +
                          misses_text(misses)))

    def table(self, title):
        return rst_table(title, [("target", "measured", "verdict")] +
                         self.rows, "30 45 25")


def against_peers(res, zc, peers, modes, need, t, what, field="msgs_per_sec",
                  lower=False):
    parts = []
    for mode in modes:
        for peer in peers:
            txt, ms = ratio_target(res, zc, peer, mode, sizes_of(res, mode),
                                   need, field, lower)
            parts.append(("%s %s: %s" % (mode, peer, txt),
                          tagged(ms, "%s %s" % (mode, peer))))
    t.row(what, parts)


def idle_targets(res, zc, t):
    ok = lambda m, mode, s: (res.get((m, mode, s)) or {}).get("status") == "ok"
    peers = peers_in(res)
    below = []
    for mode in ("stream", "handoff"):
        for peer in peers:
            _, ms = ratio_target(res, zc, peer, mode, sizes_of(res, mode), 1)
            below += tagged(ms, "%s %s" % (mode, peer))
    t.row("idle: >= every peer at every size, stream and handoff",
          [("%d peers (%s)" % (len(peers), ", ".join(peers)), sorted(below))])
    worse = []
    for mode in ("stream", "handoff"):
        for peer in peers:
            _, ms = ratio_target(res, zc, peer, mode, sizes_of(res, mode), 1,
                                 "cpu_ns_per_msg", True)
            worse += tagged(ms, "%s %s" % (mode, peer))
    t.row("idle: CPU per message <= every peer's, stream and handoff",
          [("x: how many times less", sorted(worse))])
    t.row("idle: stream >= 3x pipe at 4 - 16 KiB",
          [ratio_target(res, zc, "pipe", "stream",
                        sizes_of(res, "stream", 4096, 16384), 3)])
    t.row("idle: pingpong-busy p50 <= 1.5x shm-flag's",
          [p50_target(res, zc, "shm-flag", "pingpong-busy",
                      sizes_of(res, "pingpong-busy"), 1.5)])
    # every system call is a sleep or a wake-up the library counted
    parts = []
    for mode in ("stream", "handoff"):
        extra, worst = [], (0, None)
        for s in sizes_of(res, mode):
            if not ok(zc, mode, s):
                continue
            r = res[(zc, mode, s)]
            for side in ("producer", "consumer"):
                sysc = r.get(side + "_syscalls_per_msg")
                lib = r.get(side + "_lib_syscalls_per_msg")
                if sysc is None or lib is None:
                    extra.append((s, "%s not counted" % side))
                    continue
                if sysc > worst[0]:
                    worst = (sysc, (s, side, lib))
                if sysc > lib * 1.05 + 1e-4:
                    extra.append((s, "%s %s syscalls/msg for %s sleeps + "
                                  "wakes" % (side, sig3(sysc), sig3(lib))))
        text = "%s: no system call" % mode
        if worst[1]:
            text = "%s: at most %s syscalls/msg (%s %s; the library counted " \
                "%s)" % (mode, sig3(worst[0]), size_name(worst[1][0]),
                         worst[1][1], sig3(worst[1][2]))
        parts.append((text, tagged(extra, mode)))
    t.row("a sleep costs one system call per side (the wait, the wake), "
          "nothing else enters the kernel", parts)


def busy_targets(res, zc, t, where):
    peers = [p for p in ("pipe", "iceoryx") if any(k[0] == p for k in res)]
    against_peers(res, zc, peers, ("stream", "handoff"), 1, t,
                  "%s: >= pipe and >= iceoryx, stream and handoff" % where)
    t.row("%s: pingpong p50 <= pipe's and iceoryx's" % where,
          [p50_target(res, zc, peer, "pingpong", sizes_of(res, "pingpong"), 1)
           for peer in peers])
    t.row("%s: pingpong p50 within 1.2x of pipe's" % where,
          [p50_target(res, zc, "pipe", "pingpong", sizes_of(res, "pingpong"),
                      1.2)])


def scale_targets(scale, guest, zc, t):
    """Descriptors, idle memory and setup per channel; 64 pairs against 2."""
    def setup_rows(res, method):
        return [r for k, r in sorted(res.items()) if k[0] == method
                and r["status"] == "ok" and r.get("setup_ns") is not None]

    rows = setup_rows(scale, zc) if scale else []
    grows = setup_rows(guest, "zchan") if guest else []
    if not rows:
        t.row("scale: <= 3 descriptors per end (memfd), 1 (kernel)",
              [("no scale run", [(0, "not measured")])])
        return
    one = [r for r in rows if r.get("pairs", 1) == 1] or rows
    r = one[0]
    parts = []
    fds = max(r["producer_fds"], r["consumer_fds"])
    parts.append(("%s: %s / %s" % (zc, sig3(r["producer_fds"]),
                                   sig3(r["consumer_fds"])),
                  [] if fds <= 3 else [(0, "%s %s per end" % (zc, sig3(fds)))]))
    if grows:
        g = grows[0]
        gf = max(g["producer_fds"], g["consumer_fds"])
        parts.append(("zchan (guest): %s / %s" % (sig3(g["producer_fds"]),
                                                  sig3(g["consumer_fds"])),
                      [] if gf <= 1 else [(0, "zchan %s per end" % sig3(gf))]))
    else:
        parts.append(("zchan (kernel): no guest run", [(0, "kernel not measured")]))
    t.row("scale: <= 3 descriptors per end (memfd), 1 (kernel backend)", parts)

    mem = r["idle_rss_bytes"] + (r.get("kernel_bytes") or 0)
    pool = r.get("memfd_bytes") or 0
    parts = [("%s: %s RSS, pool %s" % (zc, kib(r["idle_rss_bytes"]), kib(pool)),
              [] if mem <= pool + 16384 else [(0, "%s over" % kib(mem - pool))])]
    if grows:
        g = grows[0]
        parts.append(("zchan (guest): %s RSS + %s zchan.ko" %
                      (kib(g["idle_rss_bytes"]), kib(g.get("kernel_bytes"))), []))
    t.row("scale: memory per idle channel <= its pool + 16 KiB", parts)

    setups = [x["setup_ns"] for x in one]
    t.row("scale: create + attach + first message < 100 us",
          [("%s: %s" % (zc, ", ".join(ns(v) for v in setups)),
            [(0, ns(v)) for v in setups if v >= 100000])])

    parts = []
    for (m, mode, s, pairs), x in sorted(scale.items()):
        if m != zc or pairs != 64 or x["status"] != "ok":
            continue
        two = scale.get((m, mode, s, 2))
        if not two or two["status"] != "ok":
            continue
        v = x["msgs_per_sec"] / two["msgs_per_sec"]
        parts.append(("%s %s: %sx" % (mode, size_name(s), sig3(v)),
                      [] if v >= 0.8 else [(s, "%s %sx" % (mode, sig3(v)))]))
    t.row("scale: 64 busy pairs keep >= 0.8x the aggregate rate of 2 pairs",
          parts or [("no 2 and 64 pair points", [(0, "not measured")])])


def fan_targets(fan, zc, t):
    """Fan-out >= iceoryx, fan-in >= 5x pipes, at every size and N: zchan
    is its many-ended channel where that ran, else its N 1:1 channels."""
    what = "fan-out to N subscribers >= iceoryx; fan-in from N producers " \
        ">= 5x pipes"
    if not fan:
        t.row(what, [("no fan run", [(0, "not measured")])])
        return
    ok = lambda k: (fan.get(k) or {}).get("status") == "ok"
    parts = []
    for mode, peer, need in (("fanout", "iceoryx", 1), ("fanin", "pipe", 5)):
        vals, used = [], set()
        for s, n in sorted({(k[2], k[3]) for k in fan if k[1] == mode},
                           key=lambda sn: (sn[1], sn[0])):
            m = zc + "-many" if ok((zc + "-many", mode, s, n)) else zc
            if ok((m, mode, s, n)) and ok((peer, mode, s, n)):
                used.add("%s (%s)" % (m, fan_how(m, mode, fan)))
                vals.append((s, n, fan[(m, mode, s, n)]["msgs_per_sec"] /
                             fan[(peer, mode, s, n)]["msgs_per_sec"]))
        if not vals:
            parts.append(("%s: no %s and %s figures" % (mode, zc, peer),
                          [(0, "%s not measured" % mode)]))
            continue
        lo = min(vals, key=lambda v: v[2])
        parts.append(("%s, %s against %s: %sx (%s, N = %d) to %sx" % (
            mode, " and ".join(sorted(used)), peer, sig3(lo[2]),
            size_name(lo[0]), lo[1], sig3(max(v[2] for v in vals))),
            [(s, "N = %d %sx %s %s" % (n, sig3(v), mode, peer))
             for s, n, v in vals if v < need]))
    t.row(what, parts)


def targets(native, zc, same=None, over=None, scale=None, guest=None,
            fan=None):
    """Issue 24's targets against one make bench: (target, measured, verdict)."""
    t = Targets()
    idle_targets(native, zc, t)
    if same is not None:
        busy_targets(same, zc, t, "same CPU")
    if over is not None:
        busy_targets(over, zc, t, "oversubscribed")
    fan_targets(fan, zc, t)
    scale_targets(scale, guest, zc, t)
    return t.table("issue 24's targets, %s" % zc)


def scale_table(title, methods, res, mode, size):
    pairs = sorted({k[3] for k in res if k[1] == mode and k[2] == size})
    rows = [["method"] + ["%d" % p for p in pairs]]
    for m in methods:
        cells = [cell(res.get((m, mode, size, p)), "msgs_per_sec", sig3, 1e6)
                 for p in pairs]
        if not all(c in ("-", "n/a") for c in cells):
            rows.append([m] + cells)
    return rst_table(title, rows)


def fan_how(method, mode, fan):
    """How a method fanned: N 1:1 channels polled, a copy per consumer,
    or one channel (iceoryx: one service) with N ends."""
    shape = next((r.get("fan_shape") for k, r in fan.items()
                  if k[0] == method and k[1] == mode and r.get("fan_shape")),
                 None)
    if shape == "shared":
        return "one service" if method == "iceoryx" else "one channel"
    if shape == "lanes":
        return "N 1:1 channels, polled" if mode == "fanin" else \
            "copy per consumer"
    return "-"


FAN_METHODS = ("pipe", "socketpair", "tcp", "shm-flag", "iceoryx", "zchan",
               "zchan-many", "zchan-copy", "zchan-memfd", "zchan-memfd-many",
               "zchan-memfd-copy")


def fan_tables(fan):
    """Per fan mode and size, by N: GB/s in all, per consumer (fan-out),
    CPU per delivered message; a row per method that ran, labelled with
    how it fans."""
    out = []
    methods = [m for m in FAN_METHODS if any(k[0] == m for k in fan)] + \
        sorted({k[0] for k in fan} - set(FAN_METHODS))
    for mode in ("fanin", "fanout"):
        for size in sorted({k[2] for k in fan if k[1] == mode}):
            ends = sorted({k[3] for k in fan if k[1] == mode and k[2] == size})
            who = "N producers into one consumer" if mode == "fanin" else \
                "one producer to N consumers"
            metrics = [("throughput in all, GB/s", "bytes_per_sec", sig3, 1e9)]
            if mode == "fanout":
                metrics.append(("per consumer, GB/s", "consumer_bytes_per_sec",
                                sig3, 1e9))
            metrics.append(("CPU per delivered message", "cpu_ns_per_msg", ns,
                            1.0))
            for what, field, fmt, scale in metrics:
                rows = [["method"] + ["N = %d" % n for n in ends]]
                for m in methods:
                    cells = [cell(fan.get((m, mode, size, n)), field, fmt,
                                  scale) for n in ends]
                    if all(c in ("-", "n/a") for c in cells):
                        continue
                    rows.append(["%s (%s)" % (m, fan_how(m, mode, fan))] +
                                cells)
                out.append(rst_table("%s %s, %s: %s" % (
                    mode, size_name(size), who, what), rows))
    return out


def setup_table(title, methods, res, key_of):
    rows = [["method", "setup", "memory (RSS)", "zchan.ko", "memfd",
             "fds p / c"]]
    for m in methods:
        r = res.get(key_of(m))
        if not r or r["status"] != "ok":
            continue
        rows.append([m, ns(r.get("setup_ns")), kib(r.get("idle_rss_bytes")),
                     kib(r.get("kernel_bytes")), kib(r.get("memfd_bytes")),
                     "%s / %s" % (sig3(r.get("producer_fds")),
                                  sig3(r.get("consumer_fds")))])
    return rst_table(title, rows)


def placement_tables(res, methods, sizes, where):
    out = [table("%s stream: throughput, GB/s" % where, methods, sizes, res,
                 "stream", "bytes_per_sec", sig3, 1e9),
           table("%s handoff: millions of messages per second" % where,
                 methods, sizes, res, "handoff", "msgs_per_sec", sig3, 1e6),
           table("%s pingpong (blocking): round trip p50" % where, methods,
                 sizes, res, "pingpong", "rtt_p50_ns", ns)]
    if any(k[1] == "pingpong-busy" and r["status"] == "ok"
           for k, r in res.items()):
        out.append(table("%s pingpong-busy: round trip p50" % where, methods,
                         sizes, res, "pingpong-busy", "rtt_p50_ns", ns))
    return out


def pages_table(paths):
    """zchan-pages against zchan-copy, stream and handoff, per kernel."""
    rows = [["kernel", "size", "stream pages", "stream copy", "x",
             "handoff pages", "handoff copy", "x"]]
    for path in paths:
        doc, res = load(path)
        kernel = doc["env"]["kernel"]
        for size in sorted({k[2] for k in res}):
            row = [kernel, size_name(size)]
            kernel = ""
            for mode, field, fmt in (("stream", "bytes_per_sec",
                                      lambda v: "%s MB/s" % sig3(v / 1e6)),
                                     ("handoff", "msgs_per_sec",
                                      lambda v: "%s/s" % sig3(v))):
                a = res.get(("zchan-pages", mode, size))
                b = res.get(("zchan-copy", mode, size))
                row += [cell(a, field, fmt), cell(b, field, fmt)]
                x = ratio(res, "zchan-pages", "zchan-copy", mode, size, field)
                row.append("-" if x is None else "%sx" % sig3(x))
            rows.append(row)
    return rst_table("zchan-pages against zchan-copy (emulated: compare "
                     "columns only)", rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zchan", default="zchan-memfd")
    ap.add_argument("--methods", default="pipe,vmsplice,socketpair,tcp,"
                    "shm-flag,cma,iceoryx,zchan,zchan-copy,zchan-memfd,"
                    "zchan-memfd-copy")
    ap.add_argument("--targets", action="store_true",
                    help="print issue 24's targets and verdicts only")
    ap.add_argument("--best", action="store_true",
                    help="rates from each point's fastest run, not the median")
    ap.add_argument("--scale", help="make bench's scale sweep (JSON)")
    ap.add_argument("--guest", help="make bench's guest run (JSON)")
    ap.add_argument("--pages", action="append", default=[],
                    help="a guest-pages run (JSON), once per kernel")
    ap.add_argument("--fan", help="make bench's fan modes run (JSON)")
    ap.add_argument("--fan-only", action="store_true",
                    help="the fan run's tables alone: NATIVE.json is the "
                    "fan run")
    ap.add_argument("native")
    args = ap.parse_args()

    if args.fan_only:
        doc, fan = load(args.native, "fan")
        env = doc["env"]
        print(".. zchan-bench %s, %s, %d CPUs, Linux %s, load at start %s\n" % (
            env["tool_version"], env["cpu"], env["ncpus"], env["kernel"],
            env["loadavg"]))
        for t in fan_tables(fan):
            print(t)
        return 0

    doc, res = load(args.native)
    _, same = load(args.native, "same-core")
    _, over = load(args.native, "oversub")
    scale = load(args.scale, "pairs")[1] if args.scale else None
    guest = load(args.guest)[1] if args.guest else None
    fan = load(args.fan, "fan")[1] if args.fan else None
    if args.best:
        for r in (res, same, over, scale or {}, fan or {}):
            best_runs(r)
    if args.targets:
        print(targets(res, args.zchan, same or None, over or None, scale,
                      guest, fan))
        return 0
    methods = args.methods.split(",")
    sizes = sorted({k[2] for k in res})
    env = doc["env"]
    print(".. zchan-bench %s, %s, %d CPUs, Linux %s, load at start %s\n" % (
        env["tool_version"], env["cpu"], env["ncpus"], env["kernel"],
        env["loadavg"]))
    for t in placement_tables(res, methods, sizes, "idle"):
        print(t)
    print(table("idle stream: CPU time per message (both sides)", methods,
                sizes, res, "stream", "cpu_ns_per_msg", ns))
    print(table("idle handoff: CPU time per message (both sides)", methods,
                sizes, res, "handoff", "cpu_ns_per_msg", ns))
    print(table("idle stream: system calls per message", methods, sizes,
                res, "stream", "syscalls_per_msg", sig3))
    print(table("idle handoff: system calls per message", methods, sizes,
                res, "handoff", "syscalls_per_msg", sig3))
    for where, r in (("same CPU", same), ("oversubscribed", over)):
        if r:
            for t in placement_tables(r, methods, sorted({k[2] for k in r}),
                                      where):
                print(t)
    first = next((r for r in doc["results"] if r.get("placement", "idle")
                  == "idle"), None)
    if first:
        print(setup_table("idle, %s %s: one channel's setup and idle cost" % (
            first["mode"], size_name(first["msg_size"])), methods, res,
            lambda m: (m, first["mode"], first["msg_size"])))
    if scale:
        for mode, size in sorted({(k[1], k[2]) for k in scale}):
            print(scale_table("scale, %s %s: millions of messages per second, "
                              "all pairs together, by pairs at once" %
                              (mode, size_name(size)), methods, scale, mode,
                              size))
        mode, size, pairs = max((k[1], k[2], k[3]) for k in scale)
        print(setup_table("scale, %s %s, %d pairs at once: setup and idle "
                          "cost per channel" % (mode, size_name(size), pairs),
                          methods, scale, lambda m: (m, mode, size, pairs)))
    if guest:
        gsizes = sorted({k[2] for k in guest})
        print(table("guest stream: throughput, MB/s (emulated: compare rows "
                    "only)", methods, gsizes, guest, "stream",
                    "bytes_per_sec", sig3, 1e6))
        print(table("guest handoff: thousands of messages per second "
                    "(emulated: compare rows only)", methods, gsizes, guest,
                    "handoff", "msgs_per_sec", sig3, 1e3))
        g = next(iter(sorted(guest)), None)
        if g:
            print(setup_table("guest, %s %s: one channel's setup and idle cost "
                              "(emulated)" % (g[1], size_name(g[2])), methods,
                              guest, lambda m: (m, g[1], g[2])))
    if args.pages:
        print(pages_table(args.pages))
    if fan:
        for t in fan_tables(fan):
            print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
