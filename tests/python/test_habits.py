# SPDX-License-Identifier: MIT OR LGPL-2.1
"""The habits of issue 20 that lost data or hung: each reproducer runs
as written by a user, and must finish (a hang or a signal death of a
child is a failure, never a skip)."""
import gc
import multiprocessing as mp
import signal
import time

import numpy as np
import pytest

import zchan


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
