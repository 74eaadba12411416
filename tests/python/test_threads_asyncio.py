# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Threads sharing an end, the GIL around waits, and asyncio."""
import asyncio
import multiprocessing as mp
import threading
import time

import numpy as np
import pytest

import zchan


def test_threads_on_one_end_are_serialised(backend):
    p = zchan.create(backend=backend, pool_size=1 << 16)
    c = p.consumer()
    per_thread, nthreads = 2000, 4

    def sender(t):
        for i in range(per_thread):
            p.send(b"%d:%d" % (t, i))

    got = []
    threads = [threading.Thread(target=sender, args=(t,)) for t in range(nthreads)]
    for t in threads:
        t.start()
    for _ in range(per_thread * nthreads):
        got.append(c.recv(timeout=60))
    for t in threads:
        t.join()
    for t in range(nthreads):
        mine = [int(m.split(b":")[1]) for m in got if m.startswith(b"%d:" % t)]
        assert mine == list(range(per_thread))


def test_gil_released_while_waiting(backend):
    """A thread blocked in recv() lets the others run, and gets the message."""
    p = zchan.create(backend=backend)
    c = p.consumer()
    result = []
    t = threading.Thread(target=lambda: result.append(c.recv(timeout=60)))
    t.start()
    ticks = 0
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        ticks += 1
    p.send(b"late")
    t.join(60)
    assert result == [b"late"] and ticks > 1000


def test_close_from_another_thread_wakes_the_waiter(backend):
    p = zchan.create(backend=backend)
    c = p.consumer()
    c.fileno()      # materialise before the wait
    errors = []

    def waiter():
        try:
            c.recv()
        except Exception as e:      # noqa: BLE001 - the test looks at it
            errors.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    c.close()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_release_from_another_thread_while_receiving(backend):
    p = zchan.create(backend=backend, pool_size=1 << 16, max_msg=1 << 15)
    c = p.consumer()
    p.send(bytes(30000))
    msg = c.recv_zc()
    got = []
    t = threading.Thread(target=lambda: got.append(c.recv(timeout=60)))
    t.start()
    time.sleep(0.05)
    msg.release()               # deferred: the receiving thread has the end
    p.send(b"x" * 30000, timeout=60)
    t.join(60)
    assert got == [b"x" * 30000]


def child_sender(w, n):
    for i in range(n):
        w.send_array(np.full(3000, i, np.int64))
    w.send(b"done")


def test_asyncio_arecv_and_asend(backend):
    async def main():
        ctx = mp.get_context("fork")
        r, w = zchan.pipe(backend=backend, pool_size=1 << 16, max_msg=1 << 15)
        child = ctx.Process(target=child_sender, args=(w, 50))
        child.start()
        w.close()
        for i in range(50):
            a = await r.arecv_array()
            assert (a == i).all()
        assert await r.arecv() == b"done"
        with pytest.raises(BrokenPipeError):
            await r.arecv()
        child.join()

        # asend against a full pool: the consumer frees it from a thread
        p = zchan.create(backend=backend, pool_size=1 << 16, max_msg=1 << 14)
        c = p.consumer()
        received = []

        def drain():
            for _ in range(20):
                received.append(c.recv(timeout=60))
                time.sleep(0.005)

        t = threading.Thread(target=drain)
        t.start()
        for i in range(20):
            await p.asend(bytes([i]) * 16000)
        await p.asend_obj({"k": np.arange(3)})
        t.join(60)
        assert [m[0] for m in received] == list(range(20))
        obj = await c.arecv_obj()
        assert list(obj["k"]) == [0, 1, 2]
        p.close()
        async_got = [m async for m in c]
        assert async_got == []

    asyncio.run(asyncio.wait_for(main(), 120))
