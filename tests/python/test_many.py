# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Many-ended channels from Python (issue 19): create()'s maxima and
broadcast, send_end()/recv_peer(role=), attach(), ends(), the attributes
and the errors; fan-in across processes, a producer killed mid-stream.
Natively on memfd; in the guest on the kernel backend."""
import errno
import multiprocessing as mp
import os
import signal
import socket

import pytest

import zchan
from zchan import ROLE_CONSUMER, ROLE_PRODUCER

T = 60


def new_end(end, role):
    """A new end of role, handed over a socketpair as to another process."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        end.send_end(role, a)
        return zchan.recv_peer(b, role=role, timeout=T)


def fan_in(backend, name=None, **kw):
    """create(max_producers=...), or a skip where the backend has no
    fan-in yet (the kernel backend before the module has it: libzchan
    says EOPNOTSUPP, Documentation/library.rst)."""
    try:
        return zchan.create(name, backend=backend, **kw)
    except OSError as e:
        if e.errno != errno.EOPNOTSUPP or backend != "kernel":
            raise
        pytest.skip("no fan-in on the kernel backend yet (the module's)")


def test_constants_and_attributes(backend):
    assert (ROLE_PRODUCER, ROLE_CONSUMER) == (1, 2)
    assert zchan.ENDS_MAX >= 64
    with zchan.create(backend=backend) as p:
        assert (p.max_producers, p.max_consumers, p.broadcast) == (1, 1, False)
    with fan_in(backend, max_producers=4) as p:
        assert (p.max_producers, p.max_consumers, p.broadcast) == (4, 1, False)
        c = p.consumer()
        assert c.max_producers == 4
        c.close()
    r, w = zchan.pipe(backend=backend, max_producers=3)
    assert w.pending and w.max_producers == 3 and w.pending   # read without creating
    r.close()
    w.close()


@pytest.mark.parametrize("bad", [0, -1, zchan.ENDS_MAX + 1])
def test_bad_maxima(bad, backend):
    with pytest.raises(ValueError):
        zchan.create(backend=backend, max_producers=bad)
    with pytest.raises(ValueError):
        zchan.create(backend=backend, max_consumers=bad)


def test_bad_role(backend):
    with fan_in(backend, max_producers=2) as p:
        a, b = socket.socketpair()
        with a, b, pytest.raises(ValueError):
            p.send_end(3, a)
        with pytest.raises(ValueError):
            p.ends(0)
        with pytest.raises(ValueError):
            zchan.recv_peer(b, role=7)


def test_fan_in_in_one_process(backend):
    p = fan_in(backend, max_producers=3)
    c = p.consumer()
    p2 = new_end(p, ROLE_PRODUCER)
    assert isinstance(p2, zchan.Producer)
    p3 = new_end(c, ROLE_PRODUCER)          # a consumer may make one too
    assert p.ends(ROLE_PRODUCER) == 3 and c.ends(ROLE_CONSUMER) == 1
    with pytest.raises(OSError) as info:
        new_end(p, ROLE_PRODUCER)
    assert info.value.errno == errno.EUSERS
    for i in range(10):
        p.send(b"a%d" % i)
        p2.send(b"b%d" % i)
        p3.send(b"c%d" % i)
    got = {"a": [], "b": [], "c": []}
    for _ in range(30):                     # each producer's in its order
        m = c.recv(timeout=T)
        got[chr(m[0])].append(int(m[1:]))
    assert got == {k: list(range(10)) for k in "abc"}
    p3.send_obj(("obj", 3))
    assert c.recv_obj(timeout=T) == ("obj", 3)
    p.close()
    p2.close()
    assert c.poll(0) is False               # p3 lives: not the end yet
    p3.close()
    with pytest.raises(BrokenPipeError):
        c.recv(timeout=T)


def _produce(w, k, n, die_at):
    for i in range(n):
        if i == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        w.send(b"%d:%d" % (k, i))


@pytest.mark.parametrize("kill", [False, True])
def test_fan_in_from_processes(kill, backend):
    """3 forked producers x 2000: each one's messages in its order, the
    end of the stream once the last is gone; one SIGKILLed mid-stream:
    what it sent arrives, the others are undisturbed."""
    n = 2000
    p = fan_in(backend, max_producers=3, pool_size=1 << 20)
    c = p.consumer()
    ctx = mp.get_context("fork")
    kids = []
    ends = [p, new_end(p, ROLE_PRODUCER), new_end(p, ROLE_PRODUCER)]
    for k, w in enumerate(ends):
        kid = ctx.Process(target=_produce, args=(w, k, n, 700 if kill and k == 1 else -1))
        kid.start()
        kids.append(kid)
    for w in ends:
        w.close()                           # each child has its own
    del ends, w
    seen = {0: [], 1: [], 2: []}
    while True:
        try:
            m = c.recv(timeout=T)
        except BrokenPipeError:
            break
        k, i = m.split(b":")
        seen[int(k)].append(int(i))
    for kid in kids:
        kid.join(T)
    for k in range(3):
        want = 700 if kill and k == 1 else n
        assert seen[k] == list(range(want)), "producer %d" % k
    assert kids[1].exitcode == (-signal.SIGKILL if kill else 0)


def test_broadcast_or_not_built(backend):
    """Broadcast from one producer: every consumer gets every message.
    A work queue (several consumers, no broadcast) is not built yet."""
    with pytest.raises(OSError) as info:
        zchan.create(backend=backend, max_consumers=2)
    assert info.value.errno == errno.EOPNOTSUPP
    try:
        p = zchan.create(backend=backend, max_consumers=3, broadcast=True)
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP and backend == "kernel"
        pytest.skip("broadcast is built on the memfd backend only")
    assert p.broadcast
    cs = [p.consumer()] + [new_end(p, ROLE_CONSUMER) for _ in range(2)]
    with pytest.raises(OSError) as info:
        new_end(p, ROLE_CONSUMER)
    assert info.value.errno == errno.EUSERS
    for c in cs:
        c.fileno()                          # received: counted from now on
    for i in range(50):
        p.send(b"%d" % i, timeout=T)
        for c in cs:
            assert c.recv(timeout=T) == b"%d" % i
    assert p.ends(ROLE_CONSUMER) == 3
    p.close()
    for c in cs:
        with pytest.raises(BrokenPipeError):
            c.recv(timeout=T)


@pytest.mark.skipif(os.environ.get("ZCHAN_TEST_BACKEND") != "kernel",
                    reason="names are the kernel backend's")
def test_attach_by_name(backend):
    name = "pytest-many-%d" % os.getpid()
    p = fan_in("kernel", name, max_producers=2)
    c = zchan.open(name)
    p2 = zchan.attach(name, ROLE_PRODUCER)
    assert isinstance(p2, zchan.Producer) and p2.name == name
    with pytest.raises(OSError) as info:
        zchan.attach(name, ROLE_PRODUCER)
    assert info.value.errno == errno.EUSERS
    p.send(b"one")
    p2.send(b"two")
    assert sorted([c.recv(timeout=T), c.recv(timeout=T)]) == [b"one", b"two"]
    assert c.ends(ROLE_PRODUCER) == 2
    p.close()
    p2.close()
    with pytest.raises(BrokenPipeError):
        c.recv(timeout=T)
    c.close()
