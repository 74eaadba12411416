# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Ends between processes: multiprocessing start methods, Queue and Pipe,
the multiprocessing.Pipe habit, and peers that die."""
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

import zchan

METHODS = ["fork", "spawn", "forkserver"]
N = 2000


def produce(w, n):
    for i in range(n):
        w.send(b"%d" % i)
    if n:
        w.send_array(np.full((40, 40, 3), n, np.float64))


def consume(r, results):
    got = []
    try:
        while True:
            got.append(r.recv())
    except BrokenPipeError:
        pass
    results.put(got)


def check_stream(got, n):
    assert [int(m) for m in got[:n]] == list(range(n))


@pytest.mark.parametrize("method", METHODS)
def test_pipe_habit(method, backend):
    """Start the child with the end, close() the parent's copy: the parent
    sees every message, then BrokenPipeError once the child is done."""
    ctx = mp.get_context(method)
    r, w = zchan.pipe(backend=backend)
    child = ctx.Process(target=produce, args=(w, N))
    child.start()
    w.close()
    got = [r.recv() for _ in range(N)]
    a = r.recv_array()
    with pytest.raises(BrokenPipeError):
        r.recv(timeout=60)
    child.join()
    assert child.exitcode == 0
    check_stream(got, N)
    assert a.shape == (40, 40, 3) and (a == N).all()


@pytest.mark.parametrize("method", METHODS)
def test_both_ends_in_children(method, backend):
    ctx = mp.get_context(method)
    r, w = zchan.pipe(backend=backend)
    results = ctx.Queue()
    cons = ctx.Process(target=consume, args=(r, results))
    prod = ctx.Process(target=produce, args=(w, 500))
    cons.start()
    prod.start()
    r.close()
    w.close()
    got = results.get(timeout=60)
    cons.join()
    prod.join()
    check_stream(got, 500)
    assert len(got) == 501


def relay(q, out):
    """Take ends from a Queue, use them."""
    r = q.get()
    w = q.get()
    w.send(b"through the queue")
    w.close()
    out.put(r.recv())


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ends_through_queue(method, backend):
    ctx = mp.get_context(method)
    r1, w1 = zchan.pipe(backend=backend)
    r2, w2 = zchan.pipe(backend=backend)
    q, out = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=relay, args=(q, out))
    child.start()
    q.put(r1)
    q.put(w2)
    w1.send(b"to the child")
    assert r2.recv(timeout=60) == b"through the queue"
    assert out.get(timeout=60) == b"to the child"
    child.join()
    r1.close()
    w2.close()
    with pytest.raises(BrokenPipeError):
        r2.recv(timeout=60)


def pipe_child(conn):
    w = conn.recv()
    produce(w, 100)


def test_end_through_multiprocessing_pipe(backend):
    ctx = mp.get_context("spawn")
    a, b = ctx.Pipe()
    r, w = zchan.pipe(backend=backend)
    child = ctx.Process(target=pipe_child, args=(b,))
    child.start()
    a.send(w)
    w.close()
    got = list(r)
    child.join()
    check_stream(got, 100)


def test_used_end_refuses_to_travel(backend):
    ctx = mp.get_context("spawn")
    r, w = zchan.pipe(backend=backend)
    w.send(b"used")
    q = ctx.Queue()
    with pytest.raises(TypeError):
        q._reader, mp.reduction.ForkingPickler.dumps(w)
    assert r.recv() == b"used"
    with pytest.raises(TypeError):
        mp.reduction.ForkingPickler.dumps(r)


def test_consumer_from_created_producer_spawn(backend):
    ctx = mp.get_context("spawn")
    p = zchan.create(backend=backend)
    c = p.consumer()
    results = ctx.Queue()
    child = ctx.Process(target=consume, args=(c, results))
    child.start()
    c.close()
    for i in range(300):
        p.send(b"%d" % i)
    p.close()
    got = results.get(timeout=60)
    child.join()
    check_stream(got, 300)
    assert len(got) == 300


def test_producer_never_used_ends_the_stream(backend):
    ctx = mp.get_context("fork")
    r, w = zchan.pipe(backend=backend)
    child = ctx.Process(target=produce, args=(w, 0))
    child.start()
    w.close()
    child.join()
    with pytest.raises(BrokenPipeError):
        r.recv(timeout=60)
    assert r.poll_mask() & zchan.POLLHUP


def test_send_peer_recv_peer_socket_and_fd(backend):
    import socket
    s1, s2 = socket.socketpair()
    p = zchan.create(backend=backend)
    p.send_peer(s1)
    c = zchan.recv_peer(s2.fileno())
    p.send(b"peer")
    assert c.recv() == b"peer"
    with pytest.raises(TypeError):
        p.send_peer("not a socket")
    s1.close()
    s2.close()


def killed_producer(w, ready):
    for i in range(10):
        w.send_array(np.full(1000, i))
    ready.set()
    time.sleep(60)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_producer_death_with_borrowed_messages(method, backend):
    """The producer is SIGKILLed while the consumer holds messages: they
    stay valid, the rest drains, then BrokenPipeError."""
    ctx = mp.get_context(method)
    r, w = zchan.pipe(backend=backend)
    ready = ctx.Event()
    child = ctx.Process(target=killed_producer, args=(w, ready))
    child.start()
    w.close()
    held = [r.recv_array(timeout=60) for _ in range(5)]
    assert ready.wait(60)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    rest = [r.recv_array(timeout=60) for _ in range(5)]
    with pytest.raises(BrokenPipeError):
        r.recv(timeout=60)
    for i, a in enumerate(held + rest):
        assert (a == i).all()


def killed_consumer(r, ready):
    r.recv_zc()
    ready.set()
    time.sleep(60)


def test_consumer_death_breaks_the_producer(backend):
    ctx = mp.get_context("fork")
    r, w = zchan.pipe(backend=backend)
    ready = ctx.Event()
    child = ctx.Process(target=killed_consumer, args=(r, ready))
    child.start()
    r.close()
    w.send(b"one")
    assert ready.wait(60)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    with pytest.raises(BrokenPipeError):
        for _ in range(100000):
            w.send(b"x" * 1000, timeout=60)


def test_forked_child_closing_inherited_ends_is_harmless(backend):
    """A child that closes (or drops) the ends it inherited and never used
    does not end the parent's stream."""
    p = zchan.create(backend=backend)
    c = p.consumer()
    p.send(b"before")
    assert c.recv() == b"before"        # both ends real before the fork
    pid = os.fork()
    if pid == 0:
        try:
            p.close()
            c.close()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    with pytest.raises(BlockingIOError):
        c.recv(timeout=0)               # empty, not the end of the stream
    for i in range(100):
        p.send(b"%d" % i)
    assert [c.recv() for _ in range(100)] == [b"%d" % i for i in range(100)]
    p.close()
    with pytest.raises(BrokenPipeError):
        c.recv()
