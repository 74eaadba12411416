#!/usr/bin/python3
# SPDX-License-Identifier: MIT OR LGPL-2.1
"""mp-compare: Python multiprocessing against zchan, the seed documents'
experiments side by side in one run.

Three experiments, each as the seeds measured it (a producer process, the
consumer in this one; time from the producer's start signal to the last
message received, process start-up excluded):

  bytes   N x 1 MB bytes objects                      (seed: Pipe vs Queue)
  arrays  N x numpy 40x40x3 float64                   (seed: Pipe vs Queue)
  big     one 10^8 int64 array, 800 MB                (seed: Pipe, shared memory)

and the way pools use them (issue 21):

  futures ProcessPoolExecutor.map returning N x 1 MB float64 arrays, W
          workers: concurrent.futures against zchan.futures (time of the
          map, the pool started and warm; producer CPU: the workers')

and these methods: multiprocessing Queue, Pipe(duplex=True), Pipe(duplex=
False), shared_memory (big only: copy in, attach), zchan copying
(send/recv, send_array/recv_array), zchan zero-copy (loan/recv_zc,
loan_array/recv_array: the producer writes the message in the pool, the
consumer reads it there) and zchan send_obj/recv_obj (pickle protocol 5,
buffers out of band in the pool).  Every result is verified: count,
sizes, and each message's sequence number or the array's values.

Besides the rate, each row gives the CPU time the producer and the
consumer processes spent per item (a Queue's feeder thread included):
on a loaded machine the rates move with the scheduler, the CPU cost
much less.  zchan rows also carry both ends' counters (kicks: wakeup
syscalls sent, waits: sleeps, spins) in the JSON.

Options:
  -e, --experiments LIST   bytes,arrays,big,futures (default: all)
  -m, --methods LIST       queue,pipe-duplex,pipe-simplex,shared-memory,
                           zchan-copy,zchan-zerocopy,zchan-obj,
                           cf-futures,zchan-futures (default: all)
  -n, --bytes-n N          1 MB messages (default 1000)
  -f, --futures-n N        1 MB results of the futures map (default 1000)
  -w, --workers W          the executors' workers (default 2)
  -a, --arrays-n N         40x40x3 arrays (default 20000)
  -b, --big-n N            elements of the big array (default 100000000)
  -q, --quick              a tenth of every size (a quick look)
  -R, --bytes-ring N       distinct 1 MB messages cycled through (default 4:
                           in the cache, as the seed's one buffer)
  -r, --repeat N           best of N runs per method (default 1)
      --backend B          zchan backend: auto, kernel, memfd (default auto)
  -B, --breakdown          where a zchan message's time goes instead: each
                           piece of the zero-copy and copying paths, both
                           ends in one process, CPU us per message
  -j, --json               JSON instead of the table
  -o, --output FILE        also write the JSON to FILE
  -h, --help               this help

Examples:
  tools/zchan-bench/mp-compare.py      # the seeds' sizes, all methods (~1 min)
  tools/zchan-bench/mp-compare.py -q   # a tenth of the sizes
  tools/zchan-bench/mp-compare.py -e big -m pipe-simplex,shared-memory,zchan-zerocopy
  tools/zchan-bench/mp-compare.py -j > mp-compare.json
  tools/zchan-bench/mp-compare.py -e futures -w 4
  tools/zchan-bench/mp-compare.py -B   # the per-message cost, piece by piece

Run it with Debian's /usr/bin/python3 (numpy); `make` builds zchan in
python/, which this script finds by itself.
"""
import argparse
import json
import mmap
import multiprocessing as mp
import os
import pickle
import sys
import time
from multiprocessing import resource_tracker, shared_memory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import numpy as np  # noqa: E402

import zchan  # noqa: E402

MB = 1000 * 1000
EXPERIMENTS = ("bytes", "arrays", "big", "futures")
METHODS = ("queue", "pipe-duplex", "pipe-simplex", "shared-memory",
           "zchan-copy", "zchan-zerocopy", "zchan-obj", "cf-futures", "zchan-futures")
FUTURES = ("cf-futures", "zchan-futures")      # the futures experiment's only
# what each experiment's speedups are relative to (the targets)
BASELINE = {"bytes": "pipe-duplex", "arrays": "queue", "big": "pipe-simplex",
            "futures": "cf-futures"}
CTX = mp.get_context("fork")
# the zchan end counters reported (Documentation/library.rst)
STATS = ("messages", "bytes", "kicks", "waits", "spins")


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


# ---------------------------------------------------------------- data

# 1 MB bytes objects, immutable as in the seed (a Queue pickles them later,
# in its feeder thread), each stamped with its index.  The seed sends one
# buffer over and over, so the source of every copy is in the cache: a
# ring of 4 (4 MB) stays there too.  A ring larger than the last
# level cache (32 MB here) makes every method read its source from memory,
# which the seed never did (-R, --bytes-ring shows the difference).
# The arrays: a ring of 64 (2.4 MB); the seed makes a new one per message.
RINGS = {"bytes": 4, "arrays": 64}


def make_bytes():
    return [i.to_bytes(8, "little") + bytes(MB - 8) for i in range(RINGS["bytes"])]


def seq_of(msg):
    return int.from_bytes(bytes(msg[:8]), "little")


def make_arrays():
    """A ring of random arrays, each stamped with its index."""
    ring = [np.random.rand(40, 40, 3) for _ in range(RINGS["arrays"])]
    for i, a in enumerate(ring):
        a[0, 0, 0] = i
    return ring


def make_big(n):
    return np.arange(n, dtype=np.int64)


def check_big(a, n):
    check(a.dtype == np.int64 and a.shape == (n,), "big array shape/dtype")
    idx = np.linspace(0, n - 1, 1001).astype(np.int64)
    check((a[idx] == idx).all(), "big array values")


# ------------------------------------------------------------ transports
#
# Each method is (setup, produce, consume): setup() in the parent returns
# (producer_side, consumer_side); produce(side, exp, n, go) runs in the
# child after the start signal; consume(side, exp, n) runs here and
# returns the bytes it received.

class PipeQueue:
    """The first seed's PipeQueue: send_bytes/recv_bytes for bytes."""

    def __init__(self, duplex):
        self.r, self.w = mp.Pipe(duplex=duplex)

    def put(self, item):
        if isinstance(item, (bytes, bytearray)):
            self.w.send_bytes(item)
        else:
            self.w.send(item)

    def get(self, raw):
        return self.r.recv_bytes() if raw else self.r.recv()


class QueueT:
    def __init__(self):
        self.q = CTX.Queue()

    def put(self, item):
        self.q.put(item)

    def get(self, raw):
        return self.q.get()


def mp_produce(t, exp, n):
    if exp != "big":
        ring = make_bytes() if exp == "bytes" else make_arrays()
        for i in range(n):
            t.put(ring[i % len(ring)])
    else:
        t.put(make_big(n))


def mp_consume(t, exp, n):
    if exp == "bytes":
        for i in range(n):
            m = t.get(True)
            check(len(m) == MB and seq_of(m) == i % RINGS["bytes"], "message %d" % i)
        return n * MB
    if exp == "arrays":
        for i in range(n):
            a = t.get(False)
            check(a.shape == (40, 40, 3) and a[0, 0, 0] == i % RINGS["arrays"], "array %d" % i)
        return n * 40 * 40 * 3 * 8
    a = t.get(False)
    check_big(a, n)
    return a.nbytes


def shm_produce(side, exp, n):
    src = make_big(n) if side["prebuilt"] is None else side["prebuilt"]
    shm = shared_memory.SharedMemory(create=True, size=src.nbytes)
    np.ndarray(src.shape, src.dtype, buffer=shm.buf)[:] = src   # copy in
    side["conn"].send(shm.name)
    side["conn"].recv()                                         # attached
    shm.close()
    shm.unlink()


def shm_consume(side, exp, n):
    name = side["conn"].recv()
    shm = shared_memory.SharedMemory(name=name)                 # attach
    # Python 3.11 registers attached segments too: the producer unlinks it
    resource_tracker.unregister(shm._name, "shared_memory")
    a = np.ndarray((n,), np.int64, buffer=shm.buf)
    check_big(a, n)
    nbytes = a.nbytes
    del a
    side["conn"].send(True)
    shm.close()
    return nbytes


def zchan_sender(w, exp, how):
    """The call sending one item of a stream experiment the `how` way."""
    if how == "obj":
        return w.send_obj
    if how == "copy":
        return w.send if exp == "bytes" else w.send_array
    if exp == "bytes":
        def send_in_place(buf):
            with w.loan(MB) as loan:            # the message is written in the pool
                memoryview(loan)[:] = buf
    else:
        def send_in_place(a):
            with w.loan_array(a.shape, a.dtype) as loan:
                loan.array[...] = a             # produced in place
    return send_in_place


def zchan_produce(w, exp, n, how):
    if exp != "big":
        ring = make_bytes() if exp == "bytes" else make_arrays()
        send = zchan_sender(w, exp, how)
        for i in range(n):
            send(ring[i % len(ring)])
    elif how == "zerocopy":
        loan = w.zc_big                         # built in the pool before the start
        loan.commit()
    elif how == "copy":
        w.send_array(w.big)
    else:
        w.send_obj(w.big)


def zchan_consume(r, exp, n, how):
    if exp == "bytes":
        for i in range(n):
            if how == "copy":
                m = r.recv()
                check(len(m) == MB and seq_of(m) == i % RINGS["bytes"], "message %d" % i)
            elif how == "zerocopy":
                with r.recv_zc() as m:
                    check(len(m) == MB and seq_of(m) == i % RINGS["bytes"], "message %d" % i)
            else:
                m = r.recv_obj()
                check(len(m) == MB and seq_of(m) == i % RINGS["bytes"], "message %d" % i)
        return n * MB
    if exp == "arrays":
        for i in range(n):
            a = r.recv_array() if how != "obj" else r.recv_obj()
            check(a.shape == (40, 40, 3) and a[0, 0, 0] == i % RINGS["arrays"], "array %d" % i)
        return n * 40 * 40 * 3 * 8
    a = r.recv_array() if how != "obj" else r.recv_obj()
    check_big(a, n)
    return a.nbytes


def zchan_pool(exp, n):
    """The experiment's pool.  16 MB: 16 messages of 1 MB or 400 arrays
    in flight, a few milliseconds of either end's work, so that one end
    descheduled on a busy machine does not stop the other at once (8 MB
    went 10-25% slower here, 4 MB arrays up to 2x; 32 MB no faster for
    1 MB: the pool leaves the cache).  max_msg is half of it, so a
    producer that found it full wakes when half is free."""
    if exp in ("bytes", "arrays"):
        return 16 << 20
    return ((2 * 8 * n + (1 << 20)) + 4095) // 4096 * 4096


# --------------------------------------------------------------- runner

def child_main(method, side, exp, n, ready, go, cpu, stats):
    try:
        produce_cpu(method, side, exp, n, ready, go, cpu, stats)
    except BaseException as e:  # noqa: BLE001 - reported by the parent
        print("mp-compare: producer (%s, %s): %r" % (exp, method, e), file=sys.stderr)
        os._exit(1)


def produce_cpu(method, side, exp, n, ready, go, cpu, stats):
    """Produce after the start signal; put the process's CPU seconds from
    the signal to the last item handed over in cpu (a Queue's feeder
    thread included: it is joined), a zchan end's counters in stats."""
    if method.startswith("zchan"):
        how = method.split("-", 1)[1]
        w = side
        w.fileno()                          # create the channel now
        if exp == "big":
            if how == "zerocopy":
                loan = w.loan_array((n,), np.int64)
                loan.array[:] = np.arange(n, dtype=np.int64)
                w.zc_big = loan
            else:
                w.big = make_big(n)
        ready.set()
        go.wait()
        c0 = time.process_time()
        zchan_produce(w, exp, n, how)
        st = w.stats()
        stats[:] = [st[k] for k in STATS]
        w.close()
    elif method == "shared-memory":
        side["prebuilt"] = make_big(n)
        ready.set()
        go.wait()
        c0 = time.process_time()
        shm_produce(side, exp, n)
    else:
        big = make_big(n) if exp == "big" else None
        ready.set()
        go.wait()
        c0 = time.process_time()
        if big is not None:
            side.put(big)
        else:
            mp_produce(side, exp, n)
        if isinstance(side, QueueT):
            side.q.close()
            side.q.join_thread()
    cpu.value = time.process_time() - c0


def run_one(exp, method, n, backend):
    if method.startswith("zchan"):
        r, w = zchan.pipe(pool_size=zchan_pool(exp, n), backend=backend,
                          max_msg=zchan_pool(exp, n) // 2 - 4096)
        prod_side, cons_side = ProducerBox(w), r
    elif method == "shared-memory":
        a, b = CTX.Pipe()
        prod_side, cons_side = {"conn": a, "prebuilt": None}, {"conn": b}
    elif method == "queue":
        prod_side = cons_side = QueueT()
    else:
        prod_side = cons_side = PipeQueue(method == "pipe-duplex")
    ready, go, cpu = CTX.Event(), CTX.Event(), CTX.Value("d", -1.0)
    pstats = CTX.Array("Q", len(STATS))
    child = CTX.Process(target=child_main,
                        args=(method, prod_side, exp, n, ready, go, cpu, pstats))
    child.start()
    if method.startswith("zchan"):
        w.close()
        cons_side.fileno()                      # receive the end before the start
    if not ready.wait(600):
        child.kill()
        child.join()
        raise Failed("the producer did not get ready")
    t0 = time.perf_counter()
    c0 = time.process_time()
    go.set()
    try:
        if method.startswith("zchan"):
            nbytes = zchan_consume(cons_side, exp, n, method.split("-", 1)[1])
        elif method == "shared-memory":
            nbytes = shm_consume(cons_side, exp, n)
        else:
            nbytes = mp_consume(cons_side, exp, n)
    except BaseException:
        child.kill()
        child.join()
        raise
    elapsed = time.perf_counter() - t0
    cons_cpu = time.process_time() - c0
    child.join()
    stats = None
    if method.startswith("zchan"):
        stats = {"producer": dict(zip(STATS, pstats)), "consumer": cons_side.stats()}
        with_pipe_end = cons_side
        try:
            with_pipe_end.recv(timeout=10)
            raise Failed("a message too many")
        except BrokenPipeError:
            pass
        with_pipe_end.close()
    check(child.exitcode == 0, "producer exit code %s" % child.exitcode)
    return {"seconds": elapsed, "bytes": nbytes, "producer_cpu_s": cpu.value,
            "consumer_cpu_s": cons_cpu, "zchan_stats": stats}


def future_result(i):
    """The futures experiment's call: a 1 MB float64 array, written."""
    return np.full(MB // 8, i, np.float64)


def cpu_of(pids):
    """CPU seconds the processes spent so far (/proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def run_futures(method, n, workers, backend):
    """ProcessPoolExecutor.map(future_result, range(n)): every result
    checked, none kept (the loop drops each as the seeds' consumers do)."""
    if method == "zchan-futures":
        import zchan.futures
        ex = zchan.futures.ProcessPoolExecutor(workers, mp_context=CTX, backend=backend)
    else:
        import concurrent.futures
        ex = concurrent.futures.ProcessPoolExecutor(workers, mp_context=CTX)
    with ex:
        for i, a in enumerate(ex.map(future_result, range(4 * workers))):
            check(a[0] == i, "warm-up result %d" % i)
        if method == "zchan-futures":
            pids = [w.proc.pid for w in ex._workers]
        else:
            pids = list(ex._processes)
        w0 = cpu_of(pids)
        c0 = time.process_time()
        t0 = time.perf_counter()
        got = 0
        for i, a in enumerate(ex.map(future_result, range(n))):
            check(a.shape == (MB // 8,) and a[0] == i and a[-1] == i, "result %d" % i)
            got += a.nbytes
        elapsed = time.perf_counter() - t0
        cons_cpu = time.process_time() - c0
        prod_cpu = cpu_of(pids) - w0
    check(got == n * MB, "%d results' bytes" % n)
    return {"seconds": elapsed, "bytes": got, "producer_cpu_s": prod_cpu,
            "consumer_cpu_s": cons_cpu, "zchan_stats": None}


def ProducerBox(w):
    # loan_array()/big arrays are attached to the end in the child: the
    # binding's classes have no __dict__, so wrap it.
    return _Box(w)


class _Box:
    __slots__ = ("end", "big", "zc_big")

    def __init__(self, end):
        self.end = end

    def __getattr__(self, name):
        return getattr(self.end, name)


def breakdown(backend, n=500, rounds=9):
    """Where a zchan message's time goes, piece by piece: both ends in
    this process, taking turns, so no waiting in the figures; CPU
    microseconds per message, the best of 9 rounds of n (the other
    processes of a busy machine inflate the rest)."""
    r, w = zchan.pipe(pool_size=zchan_pool("bytes", 0), backend=backend,
                      max_msg=zchan_pool("bytes", 0) // 2 - 4096)
    w.fileno()
    r.fileno()
    ring = make_bytes()
    slots = zchan_pool("bytes", 0) // MB
    dst = memoryview(mmap.mmap(-1, slots * MB))     # the pool's size and alignment
    arrays = make_arrays()
    out = np.empty((40, 40, 3))
    wr = w

    def calls(i):
        wr.loan(MB).commit()
        r.recv_zc().release()

    def glue(i):
        with wr.loan(MB) as loan:
            memoryview(loan)[:8] = ring[i % len(ring)][:8]
        with r.recv_zc() as m:
            check(len(m) == MB and seq_of(m) == i % len(ring), "message")

    def zerocopy(i):
        with wr.loan(MB) as loan:
            memoryview(loan)[:] = ring[i % len(ring)]
        with r.recv_zc() as m:
            check(len(m) == MB and seq_of(m) == i % len(ring), "message")

    def memcpy(i):
        at = i % slots * MB
        dst[at:at + MB] = ring[i % len(ring)]

    def copying(i):
        wr.send(ring[i % len(ring)])
        check(seq_of(r.recv()) == i % len(ring), "message")

    def array_calls(i):
        with wr.loan_array((40, 40, 3), np.float64):
            pass
        r.recv_array()

    def array_zerocopy(i):
        with wr.loan_array((40, 40, 3), np.float64) as loan:
            loan.array[...] = arrays[i % len(arrays)]
        a = r.recv_array()
        check(a[0, 0, 0] == i % len(arrays), "array")

    def array_fill(i):
        out[...] = arrays[i % len(arrays)]

    def array_copying(i):
        wr.send_array(arrays[i % len(arrays)])
        a = r.recv_array()
        check(a[0, 0, 0] == i % len(arrays), "array")

    def array_pickle(i):
        pickle.loads(pickle.dumps(arrays[i % len(arrays)], protocol=5))

    pieces = [
        ("1 MB: loan+commit, recv_zc+release (the calls alone)", calls),
        ("1 MB: the same with the bench's with-blocks and stamp check", glue),
        ("1 MB: zero-copy as the bench (+ the 1 MB write into the loan)", zerocopy),
        ("1 MB: the write alone, into anonymous memory of the pool's size", memcpy),
        ("1 MB: send + recv (a copy in, a copy out into new bytes)", copying),
        ("40x40x3: loan_array+commit, recv_array (the calls alone)", array_calls),
        ("40x40x3: zero-copy as the bench (+ fill and check)", array_zerocopy),
        ("40x40x3: the fill alone (loan.array[...] = a)", array_fill),
        ("40x40x3: send_array + recv_array, as the bench", array_copying),
        ("40x40x3: pickle.dumps + loads (what a Queue adds to it)", array_pickle),
    ]
    rows = []
    for label, fn in pieces:
        runs = []
        for _ in range(rounds):
            c0 = time.thread_time_ns()
            for i in range(n):
                fn(i)
            runs.append((time.thread_time_ns() - c0) / n / 1000)
        rows.append({"piece": label, "cpu_us": min(runs)})
    r.close()
    w.close()
    return rows


def applicable(exp, method):
    if method == "shared-memory":
        return exp == "big"
    return (exp == "futures") == (method in FUTURES)


def main():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("-e", "--experiments", default=",".join(EXPERIMENTS))
    ap.add_argument("-m", "--methods", default=",".join(METHODS))
    ap.add_argument("-n", "--bytes-n", type=int, default=1000)
    ap.add_argument("-a", "--arrays-n", type=int, default=20000)
    ap.add_argument("-b", "--big-n", type=int, default=10 ** 8)
    ap.add_argument("-f", "--futures-n", type=int, default=1000)
    ap.add_argument("-w", "--workers", type=int, default=2)
    ap.add_argument("-q", "--quick", action="store_true")
    ap.add_argument("-R", "--bytes-ring", type=int, default=RINGS["bytes"])
    ap.add_argument("-r", "--repeat", type=int, default=1)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("-j", "--json", action="store_true")
    ap.add_argument("-o", "--output")
    ap.add_argument("-B", "--breakdown", action="store_true")
    ap.add_argument("-h", "--help", action="store_true")
    args = ap.parse_args()
    if args.help:
        print(__doc__.strip())
        return 0
    if args.bytes_ring < 1:
        ap.error("--bytes-ring must be at least 1")
    RINGS["bytes"] = args.bytes_ring
    if args.breakdown:
        rows = breakdown(args.backend)
        if args.json:
            json.dump({"tool": "mp-compare", "breakdown": rows,
                       "loadavg": os.getloadavg()}, sys.stdout, indent=1)
            print()
        else:
            print("load average: %.2f %.2f %.2f" % os.getloadavg())
            for row in rows:
                print("%8.1f us  %s" % (row["cpu_us"], row["piece"]))
        return 0
    exps = [e for e in args.experiments.split(",") if e]
    methods = [m for m in args.methods.split(",") if m]
    for e in exps:
        if e not in EXPERIMENTS:
            ap.error("unknown experiment %r (%s)" % (e, ",".join(EXPERIMENTS)))
    for m in methods:
        if m not in METHODS:
            ap.error("unknown method %r (%s)" % (m, ",".join(METHODS)))
    scale = 10 if args.quick else 1
    sizes = {"bytes": max(1, args.bytes_n // scale),
             "arrays": max(1, args.arrays_n // scale),
             "big": max(1001, args.big_n // scale),
             "futures": max(1, args.futures_n // scale)}
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    results = []
    for exp in exps:
        n = sizes[exp]
        for method in methods:
            if not applicable(exp, method):
                continue
            print("mp-compare: %s x%d, %s..." % (exp, n, method), file=sys.stderr, flush=True)
            best, error = None, None
            for _ in range(max(1, args.repeat)):
                try:
                    if exp == "futures":
                        got = run_futures(method, n, args.workers, args.backend)
                    else:
                        got = run_one(exp, method, n, args.backend)
                except Failed as e:
                    error = str(e)
                    break
                if best is None or got["seconds"] < best["seconds"]:
                    best = got
            row = {"experiment": exp, "method": method, "items": n if exp != "big" else 1,
                   "elements": n if exp == "big" else None, "verified": error is None}
            if error:
                row["error"] = error
            else:
                row.update(best, items_per_s=row["items"] / best["seconds"],
                           gb_per_s=best["bytes"] / best["seconds"] / 1e9,
                           producer_cpu_us=best["producer_cpu_s"] * 1e6 / row["items"],
                           consumer_cpu_us=best["consumer_cpu_s"] * 1e6 / row["items"])
                if best["zchan_stats"] is None:
                    del row["zchan_stats"]
            results.append(row)
    for exp in exps:
        base = [r for r in results if r["experiment"] == exp and
                r["method"] == BASELINE[exp] and r["verified"]]
        for r in results:
            if r["experiment"] == exp and base and r["verified"]:
                r["speedup"] = base[0]["seconds"] / r["seconds"]
                r["baseline"] = BASELINE[exp]
    backend = None
    try:
        with zchan.create(backend=args.backend) as p:
            backend = p.backend
    except OSError:
        pass
    doc = {"tool": "mp-compare", "zchan_backend": backend,
           "python": sys.version.split()[0], "numpy": np.__version__,
           "cpus": os.cpu_count(), "loadavg": os.getloadavg(), "sizes": sizes,
           "workers": args.workers,
           "bytes_ring": RINGS["bytes"], "results": results}
    if args.output:
        with open(args.output, "w") as f:
            json.dump(doc, f, indent=1)
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        print("zchan backend: %s; speedup: against %s" % (backend, ", ".join(
            "%s for %s" % (BASELINE[e], e) for e in exps)))
        print("load average: %.2f %.2f %.2f (at the end); CPU us/item: producer, "
              "consumer processes" % os.getloadavg())
        print("%-7s %-15s %9s %9s %11s %8s %8s %9s %9s  %s" % (
            "exp", "method", "items", "seconds", "items/s", "GB/s", "speedup",
            "prod_cpu", "cons_cpu", "verified"))
        for r in results:
            if not r["verified"]:
                print("%-7s %-15s FAILED: %s" % (r["experiment"], r["method"], r["error"]))
                continue
            print("%-7s %-15s %9d %9.3f %11.1f %8.2f %8s %9.1f %9.1f  yes" % (
                r["experiment"], r["method"], r["elements"] or r["items"], r["seconds"],
                r["items_per_s"], r["gb_per_s"],
                "%.1fx" % r["speedup"] if "speedup" in r else "-",
                r["producer_cpu_us"], r["consumer_cpu_us"]))
    return 0 if all(r["verified"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
