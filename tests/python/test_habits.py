# SPDX-License-Identifier: MIT OR LGPL-2.1
"""The habits of issue 20 that lost data or hung: each reproducer runs
as written by a user, and must finish (a hang or a signal death of a
child is a failure, never a skip)."""
import gc
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

import zchan

# In the guest (kernel backend, run-pytest --kernel) children start with
# fork only: under emulation a spawned child re-imports numpy for seconds.
# spawn and forkserver run natively.
IN_GUEST = os.environ.get("ZCHAN_TEST_BACKEND") == "kernel"
METHODS = ["fork"] if IN_GUEST else ["fork", "spawn", "forkserver"]
not_in_guest = pytest.mark.skipif(IN_GUEST, reason="spawn: tested natively")


def in_child(target, *args, timeout=30, ctx="fork"):
    """Run target(*args) in a child process: it must exit 0 in time."""
    p = mp.get_context(ctx).Process(target=target, args=args)
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail("child hung for %d s" % timeout)
    assert p.exitcode == 0, "child exit code %s" % p.exitcode


# --- B3 / B4: loans -------------------------------------------------------

def test_dropped_loan_array_is_aborted(backend):
    """B3: a loan_array() loan dropped unfinished is aborted at once (its
    .array used to hold it in a cycle the collector cannot follow)."""
    r, w = zchan.pipe(backend=backend)
    w.loan_array((3,))
    w.send(b"x")
    gc.collect()
    assert r.recv(timeout=5) == b"x"


def test_loan_array_named_inside_with(backend):
    """B4: naming the loan's array inside `with` commits; the array
    outlives the block read-only, so the message cannot change."""
    r, w = zchan.pipe(backend=backend)
    with w.loan_array((3,)) as loan:
        a = loan.array
        a[:] = 1
    assert loan.done
    with pytest.raises(ValueError):
        a[:] = 2                        # read-only after commit
    got = r.recv_array(timeout=5)
    assert list(got) == [1, 1, 1]


def test_frombuffer_view_inside_with_aborts(backend):
    """B4: a view made from the loan that outlives the block would write
    into the committed message: BufferError, the loan aborted, nothing
    stuck behind it."""
    r, w = zchan.pipe(backend=backend)
    with pytest.raises(BufferError, match="aborted"):
        with w.loan(8) as loan:
            v = np.frombuffer(memoryview(loan), np.uint8)
            v[:] = 1
    assert loan.done
    del v
    w.send(b"after")
    assert r.recv(timeout=5) == b"after"


def test_loan_kept_across_close_does_not_publish(backend):
    p = zchan.create(backend=backend)
    c = p.consumer()
    loan = p.loan(4)
    memoryview(loan)[:] = b"late"
    p.close()
    with pytest.raises(ValueError):
        loan.commit()
    assert loan.done
    with pytest.raises(BrokenPipeError):
        c.recv(timeout=5)


# --- re-entrancy: signal handlers and the collector -------------------------

def _stats_from_handler(backend):
    p = zchan.create(backend=backend)
    c = p.consumer()
    seen = []
    signal.signal(signal.SIGALRM, lambda *a: seen.append(c.stats()["messages"]))
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    with_timeout = None
    try:
        c.recv(timeout=1)
    except TimeoutError as e:
        with_timeout = e
    assert seen == [0] and with_timeout is not None


def test_stats_from_signal_handler_during_recv(backend):
    in_child(_stats_from_handler, backend)


def _loan_dropped_from_handler(backend):
    p = zchan.create(pool_size=1 << 16, max_msg=1 << 12, backend=backend)
    c = p.consumer()
    sent = 0
    while True:                         # the consumer holds the pool
        try:
            p.send(b"m" * 1024, timeout=0)
            sent += 1
        except BlockingIOError:
            break
    c.recv()                            # room for a small loan only
    sent -= 1
    held = [p.loan(64)]

    def drop(*a):
        held.clear()                    # aborts it from inside send()

    signal.signal(signal.SIGALRM, drop)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        p.send(b"y" * 4096, timeout=1)  # waits for room, the loan goes
        sent += 1
    except TimeoutError:
        pass
    assert not held
    for _ in range(sent):
        assert len(c.recv(timeout=5)) in (1024, 4096)
    p.send(b"z", timeout=5)
    assert c.recv(timeout=5) == b"z"


def test_loan_dropped_in_signal_handler_during_send(backend):
    in_child(_loan_dropped_from_handler, backend)


def _reentrant_recv_refused(backend):
    p = zchan.create(backend=backend)
    c = p.consumer()
    errors = []

    def handler(*a):
        try:
            c.recv(timeout=0)
        except RuntimeError as e:
            errors.append(e)

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    with pytest.raises(TimeoutError):
        c.recv(timeout=0.5)
    assert errors and "re-entrant" in str(errors[0])


def test_reentrant_call_from_signal_handler_raises(backend):
    in_child(_reentrant_recv_refused, backend)


# --- B1 / B5: a pending end used first by two processes ------------------

def _send_five(w, k, q):
    try:
        for _ in range(5):
            w.send(b"%d" % k)
        q.put((k, "sent"))
    except OSError as e:
        q.put((k, e.errno))


@pytest.mark.parametrize("method", METHODS[:2])
def test_one_pipe_producer_two_workers(method, backend):
    """B1: the second worker to use a pipe() producer gets EBUSY at once;
    the consumer gets the first one's messages, nothing is lost silently."""
    ctx = mp.get_context(method)
    r, w = zchan.pipe(backend=backend)
    q = ctx.Queue()
    ps = [ctx.Process(target=_send_five, args=(w, k, q)) for k in range(2)]
    for p in ps:
        p.start()
    w.close()
    results = dict(q.get(timeout=60) for _ in ps)
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    import errno
    assert sorted(results.values(), key=str) == sorted(["sent", errno.EBUSY], key=str)
    winner = [k for k, v in results.items() if v == "sent"][0]
    assert [r.recv(timeout=30) for _ in range(5)] == [b"%d" % winner] * 5
    with pytest.raises(BrokenPipeError):
        r.recv(timeout=30)


def _race_recv(r, q):
    try:
        q.put(r.recv(timeout=5))
    except OSError as e:
        q.put(e.errno)


def test_two_processes_race_for_a_pending_consumer(backend):
    """B5: the loser of the race sees EBUSY at once, never blocks."""
    import errno
    ctx = mp.get_context("fork")
    for _ in range(5):
        r, w = zchan.pipe(backend=backend)
        q = ctx.Queue()
        ps = [ctx.Process(target=_race_recv, args=(r, q)) for _ in range(2)]
        for p in ps:
            p.start()
        r.close()
        w.send(b"only")
        got = sorted([q.get(timeout=30) for _ in ps], key=str)
        for p in ps:
            p.join(30)
            assert p.exitcode == 0
        assert got == sorted([b"only", errno.EBUSY], key=str)
        w.close()


# --- B2: a pending consumer's fileno() --------------------------------------

def test_pending_consumer_fileno_readable(backend):
    import select
    r, w = zchan.pipe(backend=backend)
    w.send(b"x")
    assert select.select([r], [], [], 5)[0] == [r]
    assert r.recv(timeout=0) == b"x"
    fd = r.fileno()
    with pytest.raises(BlockingIOError):
        r.recv(timeout=0)               # memfd: clears the readiness
    assert select.select([r], [], [], 0)[0] == []
    w.send(b"y")
    assert select.select([r], [], [], 5)[0] == [r] and r.fileno() == fd
    p = zchan.create(backend=backend)
    c = p.consumer()
    p.send(b"z")
    assert select.select([c], [], [], 5)[0] == [c]
    assert c.recv(timeout=0) == b"z"


def _worker_sends(w, k, n, sent, done):
    for i in range(n):
        w.send(b"%d:%d" % (k, i))
    sent.put(k)
    done.wait(60)                       # alive: its death would wake the fd


def test_connection_wait_over_workers(backend):
    """B2: multiprocessing.connection.wait() over 4 workers' channels,
    the messages sent before the parent first looks at the ends (a
    pending consumer's descriptor was not readable then)."""
    from multiprocessing.connection import wait
    ctx = mp.get_context("fork")
    n = 50
    sent, done = ctx.Queue(), ctx.Event()
    ends, ps = [], []
    for k in range(4):
        r, w = zchan.pipe(backend=backend)
        p = ctx.Process(target=_worker_sends, args=(w, k, n, sent, done))
        p.start()
        w.close()
        ends.append(r)
        ps.append(p)
    assert sorted(sent.get(timeout=60) for _ in ps) == [0, 1, 2, 3]
    counts = {r: 0 for r in ends}
    live = list(ends)
    while live:
        ready = wait(live, timeout=30)
        assert ready, "wait() timed out with messages pending"
        for r in ready:
            try:
                while counts[r] < n:
                    r.recv(timeout=0)
                    counts[r] += 1
            except BlockingIOError:
                pass
            if counts[r] == n:
                live.remove(r)
    done.set()
    for p in ps:
        p.join(30)
        assert p.exitcode == 0
    assert list(counts.values()) == [n] * 4


# --- B6: through a Queue, then close your copy ------------------------------

def _from_queue(q):
    w = q.get(timeout=30)
    w.send(b"via queue")


@pytest.mark.parametrize("method", METHODS)
def test_end_through_queue_then_close(method, backend):
    ctx = mp.get_context(method)
    r, w = zchan.pipe(backend=backend)
    q = ctx.Queue()
    p = ctx.Process(target=_from_queue, args=(q,))
    p.start()
    q.put(w)
    w.close()
    assert r.recv(timeout=60) == b"via queue"
    p.join(60)
    assert p.exitcode == 0
    with pytest.raises(BrokenPipeError):
        r.recv(timeout=60)


def _send_from_pool(w):
    w.send(b"from the pool")
    return True


@not_in_guest
def test_end_through_process_pool_then_close(backend):
    from concurrent.futures import ProcessPoolExecutor
    r, w = zchan.pipe(backend=backend)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        fut = ex.submit(_send_from_pool, w)
        w.close()
        assert r.recv(timeout=60) == b"from the pool"
        assert fut.result(timeout=60)


# --- recv_peer(): bounded and interruptible --------------------------------

def _recv_peer_interrupted():
    import socket

    class Stop(Exception):
        pass

    def stop(*a):
        raise Stop

    a, b = socket.socketpair()
    with pytest.raises(TimeoutError):
        zchan.recv_peer(a, timeout=0.2)
    signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    with pytest.raises(Stop):
        zchan.recv_peer(a)


def test_recv_peer_is_interruptible():
    in_child(_recv_peer_interrupted)


# --- the pool that never deadlocks in silence ------------------------------

def _append_loop_producer(w, n):
    for i in range(n):
        w.send_array(np.full((40, 40, 3), i, np.float64))


def test_append_loop_raises_instead_of_hanging(backend):
    """results.append(r.recv_array()) with the default pool: the kept
    arrays pin the pool; the consumer gets BufferError naming the sizes
    and the pool_size that would work, and neither end hangs."""
    r, w = zchan.pipe(backend=backend)
    p = mp.get_context("fork").Process(target=_append_loop_producer, args=(w, 1000))
    p.start()
    w.close()
    results = []
    with pytest.raises(BufferError) as e:
        for _ in range(1000):
            results.append(r.recv_array(timeout=60))
    msg = str(e.value)
    assert "pool_size >=" in msg and str(zchan.DEFAULT_POOL_SIZE) in msg
    assert 50 < len(results) < 1000
    assert all(a[0, 0, 0] == i for i, a in enumerate(results))
    # copies free the pool: the rest arrives
    results = [a.copy() for a in results]
    rest = [r.recv_array(timeout=60, copy=True) for _ in range(1000 - len(results))]
    assert [a[0, 0, 0] for a in results + rest] == list(range(1000))
    p.join(60)
    assert p.exitcode == 0


def test_append_loop_with_copy_completes(backend):
    r, w = zchan.pipe(backend=backend)
    p = mp.get_context("fork").Process(target=_append_loop_producer, args=(w, 500))
    p.start()
    w.close()
    results = [r.recv_array(timeout=60, copy=True) for _ in range(500)]
    assert [a[0, 0, 0] for a in results] == list(range(500))
    p.join(60)
    assert p.exitcode == 0


# --- sizes -----------------------------------------------------------------

def test_max_msg_is_the_payload(backend):
    """An array of exactly max_msg bytes goes (the header is zchan's
    business), and the pool grows to carry it."""
    n = 8 * 10**6
    p = zchan.create(max_msg=n, backend=backend)
    c = p.consumer()
    assert p.max_msg >= n and p.pool_size >= 2 * n
    p.send_array(np.ones(n // 8))
    assert c.recv_array(timeout=5).nbytes == n
    r, w = zchan.pipe(max_msg=n, backend=backend)
    w.send_array(np.ones(n, np.uint8))
    assert r.recv_array(timeout=5).nbytes == n


def test_size_errors_name_the_sizes(backend):
    import errno
    p = zchan.create(pool_size=1 << 20, backend=backend)
    with pytest.raises(OSError) as e:
        p.send(b"x" * (p.max_msg + 1))
    assert e.value.errno == errno.EMSGSIZE
    assert str(p.max_msg) in str(e.value) and str(p.pool_size) in str(e.value)
    with pytest.raises(OSError) as e:
        p.loan_array((p.max_msg,), np.uint8)
    assert e.value.errno == errno.EMSGSIZE and "max_msg >=" in str(e.value)
    with pytest.raises(ValueError, match="pool_size >= 2105344"):
        zchan.create(pool_size=1 << 20, max_msg=1 << 20, backend=backend)
    q = zchan.create(pool_size=1 << 16, max_msg=1 << 15, backend=backend)
    assert q.max_msg >= 1 << 15 and q.pool_size >= 2 * q.max_msg
    with pytest.raises(ValueError, match="1073741824"):
        zchan.create(max_msg=1 << 30, backend=backend)


# --- asyncio ----------------------------------------------------------------

def test_asyncio_close_from_another_task(backend):
    import asyncio

    async def main():
        p = zchan.create(backend=backend)
        c = p.consumer()
        task = asyncio.ensure_future(c.arecv())
        await asyncio.sleep(0.05)
        c.close()
        with pytest.raises(ValueError, match="closed"):
            await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_asyncio_several_waiters(backend):
    import asyncio

    async def main():
        p = zchan.create(backend=backend)
        c = p.consumer()
        tasks = [asyncio.ensure_future(c.arecv()) for _ in range(3)]
        await asyncio.sleep(0.05)
        for i in range(3):
            await p.asend(b"%d" % i)
        got = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert sorted(got) == [b"0", b"1", b"2"]

    asyncio.run(main())


def test_asyncio_timeouts(backend):
    import asyncio

    async def main():
        p = zchan.create(pool_size=1 << 16, max_msg=1 << 12, backend=backend)
        c = p.consumer()
        with pytest.raises(TimeoutError):
            await c.arecv(timeout=0.05)
        with pytest.raises(TimeoutError):
            while True:
                await p.asend(b"x" * 4000, timeout=0.05)
        assert len(await c.arecv(timeout=5)) == 4000

    asyncio.run(main())


# --- parity with multiprocessing.Connection ---------------------------------

def test_connection_parity(backend):
    r, w = zchan.pipe(backend=backend)
    assert w.send_bytes(b"0123456789", 2, 3) == 3
    assert r.recv_bytes() == b"234"
    w.send_bytes(bytearray(b"abc"))
    buf = bytearray(8)
    assert r.recv_bytes_into(buf, 4) == 3 and buf[4:7] == b"abc"
    w.send(b"toolong")
    with pytest.raises(OSError):
        r.recv_bytes(maxlength=3)
    for i in range(3):
        w.send_array(np.full(2, i))
    w.close()
    assert [a[0] for a in r.arrays(timeout=5)] == [0, 1, 2]
    with pytest.raises(EOFError):
        r.recv_bytes(timeout=5)
    assert isinstance(zchan.__version__, str)


def test_version_matches_pyproject():
    import os
    import re
    here = os.path.join(os.path.dirname(__file__), "..", "..", "python", "pyproject.toml")
    m = re.search(r'^version = "([^"]+)"', open(here).read(), re.M)
    assert m and m.group(1) == zchan.__version__


# --- the adversarial list ---------------------------------------------------

def test_forged_headers_raise_valueerror_and_release(backend):
    """A hostile producer's ZCA1/ZCO1 headers: ValueError, and the message
    is released at once (with ring_entries=1 the producer goes on)."""
    import struct
    p = zchan.create(ring_entries=1, backend=backend)
    c = p.consumer()
    forged = [
        b"ZCA1" + struct.pack("<IHH", 64, 1, 200) + bytes(52),          # descr past the end
        b"ZCA1" + struct.pack("<IHH", 64, 1, 5) + struct.pack("<q", 1) + b"((((" + bytes(39),
        b"ZCA1" + struct.pack("<IHH", 64, 1, 3) + struct.pack("<q", -1) + b"<f8" + bytes(41),
        b"ZCA1" + struct.pack("<IHH", 64, 1, 3) + struct.pack("<q", 1 << 40) + b"<f8" + bytes(41),
        b"ZCA1" + struct.pack("<IHH", 64, 1, 3) + struct.pack("<q", 1) + b"|O8" + bytes(41),
        b"ZCA1" + struct.pack("<IHH", 64, 0, 12) + b"__import__()" + bytes(40),
    ]
    for f in forged:
        p.send(f, timeout=5)
        with pytest.raises(ValueError):
            c.recv_array(timeout=5)
    objs = [
        b"ZCO1" + struct.pack("<IQ", 1, 8) + struct.pack("<QQ", 1 << 50, 8) + bytes(32),
        b"ZCO1" + struct.pack("<IQ", 0, 1 << 40) + bytes(48),
        b"ZCO1" + struct.pack("<IQ", 0, 8) + bytes(48),             # not a pickle
        b"ZCO1" + struct.pack("<IQ", 0, 1) + bytes(48),             # EOF in pickle
    ]
    for f in objs:
        p.send(f, timeout=5)
        with pytest.raises(ValueError):
            c.recv_obj(timeout=5)
    p.send(b"next", timeout=5)
    assert c.recv(timeout=5) == b"next"


def test_send_time_validation(backend):
    import numpy.ma as ma
    p = zchan.create(backend=backend)
    with pytest.raises(ValueError, match="mask"):
        p.send_array(ma.masked_array([1, 2], mask=[0, 1]))
    for shape in [(3.7,), ("3",), 2.0]:
        with pytest.raises(ValueError):
            p.loan_array(shape)
    p.loan_array((np.int64(3),)).abort()
    with pytest.raises(ValueError):
        p.loan_array((2 ** 63,))
    with pytest.raises(ValueError, match="send_obj"):
        p.send_array(np.zeros(2, dtype=[("f%d" % i, "u1") for i in range(300)]))
    odd = np.dtype({"names": ["b", "a"], "formats": ["u1", "u1"], "offsets": [1, 0]})
    c = p.consumer()
    try:
        p.send_array(np.zeros(3, odd))
        got = c.recv_array(timeout=5)
        assert got.dtype == odd
    except ValueError:
        pass                            # refused at send time: also the rule
    p.send(b"still fine")
    assert c.recv(timeout=5) == b"still fine"


def test_stubs_cover_the_public_api():
    """python/zchan/__init__.pyi (with py.typed) names every public call."""
    import ast
    import os
    here = os.path.join(os.path.dirname(zchan.__file__))
    assert os.path.exists(os.path.join(here, "py.typed"))
    tree = ast.parse(open(os.path.join(here, "__init__.pyi")).read())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in tree.body if isinstance(n, (ast.AnnAssign,)) for t in [n.target]}
    assert set(zchan.__all__) | {"__version__"} <= names
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    def members(cls):
        got = {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        got |= {f.target.id for f in cls.body if isinstance(f, ast.AnnAssign)}
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                got |= members(classes[base.id])
        return got
    for cls in (zchan.Producer, zchan.Consumer, zchan.Loan, zchan.Message):
        public = {m for m in dir(cls) if not m.startswith("_")}
        assert public <= members(classes[cls.__name__]), public - members(classes[cls.__name__])


# --- the fork habit with a used end -----------------------------------------

def _send_three(w):
    for i in range(3):
        w.send(b"%d" % i)


def _recv_three(r, q):
    q.put([r.recv(timeout=30) for _ in range(3)])


def test_used_end_to_fork_child_then_close(backend):
    """An end made with create() (or recv_peer()) passed to a fork-started
    Process and closed by the parent right after start(): the child keeps
    it, as a pipe's descriptor."""
    ctx = mp.get_context("fork")
    for _ in range(3):
        w = zchan.create(backend=backend)
        r = w.consumer()
        p = ctx.Process(target=_send_three, args=(w,))
        p.start()
        w.close()
        assert [r.recv(timeout=30) for _ in range(3)] == [b"0", b"1", b"2"]
        with pytest.raises(BrokenPipeError):
            r.recv(timeout=30)
        p.join(30)
        assert p.exitcode == 0
    # the consumer side, received with recv_peer()
    w = zchan.create(backend=backend)
    r = w.consumer()
    r.poll_mask()                       # used here
    q = ctx.Queue()
    p = ctx.Process(target=_recv_three, args=(r, q))
    p.start()
    r.close()
    _send_three(w)
    assert q.get(timeout=30) == [b"0", b"1", b"2"]
    p.join(30)
    assert p.exitcode == 0


@not_in_guest
def test_used_end_refused_by_spawn(backend):
    w = zchan.create(backend=backend)
    p = mp.get_context("spawn").Process(target=_send_three, args=(w,))
    with pytest.raises(TypeError):
        p.start()


def test_pending_producer_sizes_do_not_create(backend):
    r, w = zchan.pipe(pool_size=1 << 20, backend=backend)
    assert w.pool_size == 1 << 20 and w.max_msg >= 1 << 18
    assert w.ring_entries == zchan.DEFAULT_RING_ENTRIES
    assert w.pending                    # it can still move
    w.send(b"x")
    assert not w.pending and w.pool_size == 1 << 20
    assert r.recv(timeout=5) == b"x"


@pytest.mark.parametrize("name", ["a/b", "..", ".", " ", "a\nb"])
def test_names_that_are_paths_are_refused(name, backend):
    with pytest.raises(ValueError, match="name"):
        zchan.create(name, backend=backend)
    with pytest.raises(ValueError, match="name"):
        zchan.open(name)


def test_tiny_timeouts_wait(backend):
    p = zchan.create(backend=backend)
    c = p.consumer()
    with pytest.raises(TimeoutError):
        c.recv(timeout=1e-12)
    assert c.wait(0) is False and c.wait(1e-12) is False


def test_quick_calls_do_not_wait_behind_a_wait(backend):
    """poll(), fileno(), stats() and sizes from another thread while one
    thread waits in recv(): they answer at once (the asyncio loop would
    stall for the whole wait otherwise)."""
    import threading
    p = zchan.create(backend=backend)
    c = p.consumer()
    c.fileno()
    outcome = []

    def waiter():
        try:
            c.recv(timeout=30)
        except BrokenPipeError as e:
            outcome.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    assert c.poll() is False
    c.fileno(), c.stats(), c.pool_size
    assert t.is_alive()                 # answered while the wait goes on
    p.close()                           # wakes it: BrokenPipeError
    t.join(30)
    assert outcome
