# SPDX-License-Identifier: MIT OR LGPL-2.1
"""The kernel backend (run in the qemu guest with zchan.ko loaded, by
run-pytest --kernel): named channels, their permissions, readiness of the
channel file, and the data path across processes.  No numpy here: in
the emulated guest, loading it over 9p alone takes a minute; arrays are
tested natively (test_basic.py, test_processes.py)."""
import errno
import multiprocessing as mp
import os
import select

import pytest

import zchan

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/zchan"),
                                reason="needs zchan.ko (/dev/zchan)")


def name(tag):
    return "py-%s-%d" % (tag, os.getpid())


def test_named_channel_round_trip():
    n = name("rt")
    with zchan.create(n, backend="kernel") as p:
        assert p.name == n and p.backend == "kernel"
        with zchan.open(n) as c:
            assert c.name == n and c.backend == "kernel"
            p.send(b"by name")
            with p.loan(10) as loan:
                memoryview(loan)[:] = bytes(range(10))
            p.send_obj({"k": [1, 2]})
            assert c.recv() == b"by name"
            with c.recv_zc() as msg:
                assert bytes(msg) == bytes(range(10))
            assert c.recv_obj() == {"k": [1, 2]}
            p.close()
            with pytest.raises(BrokenPipeError):
                c.recv()


def test_name_errors():
    n = name("dup")
    p = zchan.create(n, backend="kernel")
    with pytest.raises(FileExistsError):
        zchan.create(n, backend="kernel")
    with pytest.raises(FileNotFoundError):
        zchan.open(name("nosuch"))
    with pytest.raises(OSError) as e:
        zchan.create("x" * 200, backend="kernel")
    assert e.value.errno in (errno.ENAMETOOLONG, errno.EINVAL)
    p.close()


def open_as_nobody(n, out):
    os.setgid(65534)
    os.setuid(65534)
    try:
        c = zchan.open(n)
        out.put(("opened", c.recv(timeout=30)))
    except PermissionError:
        out.put(("PermissionError", None))
    except OSError as e:
        out.put(("OSError %d" % e.errno, None))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
@pytest.mark.parametrize("mode,expect", [(0o600, "PermissionError"), (0o666, "opened")],
                         ids=["0600", "0666"])
def test_permissions(mode, expect):
    n = name("perm%o" % mode)
    p = zchan.create(n, backend="kernel", mode=mode)
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=open_as_nobody, args=(n, out))
    child.start()
    p.send(b"for nobody")
    verdict, data = out.get(timeout=120)
    child.join()
    assert verdict == expect
    if expect == "opened":
        assert data == b"for nobody"
    p.close()


def test_channel_file_readiness():
    p = zchan.create(backend="kernel")
    c = p.consumer()
    fd = c.fileno()
    assert select.select([fd], [], [], 0)[0] == []
    p.send(b"x")
    assert select.select([fd], [], [], 5)[0] == [fd]
    assert c.recv() == b"x"
    p.close()
    assert c.poll_mask() & zchan.POLLHUP


def produce(w, n):
    for i in range(n):
        with w.loan(40 * 40 * 3 * 8) as loan:
            memoryview(loan)[:] = bytes([i]) * len(loan)


# fork only: under the guest's emulation a spawned child re-imports numpy
# for seconds; spawn and forkserver are tested natively (test_processes.py)
def test_pipe_habit_kernel():
    ctx = mp.get_context("fork")
    r, w = zchan.pipe(backend="kernel")
    child = ctx.Process(target=produce, args=(w, 20))
    child.start()
    w.close()
    for i in range(20):
        with r.recv_zc(timeout=120) as msg:
            assert bytes(msg) == bytes([i]) * (40 * 40 * 3 * 8)
    with pytest.raises(BrokenPipeError):
        r.recv(timeout=120)
    child.join()
    assert r.backend == "kernel"


def attach_and_read(n, attached, out):
    import time
    deadline = time.monotonic() + 120
    while True:         # the parent creates the name after the fork
        try:
            c = zchan.open(n)
            break
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    with c:
        attached.set()
        out.put([bytes(m) for m in c])


def test_named_channel_across_processes():
    # Created after the fork: a forked child that inherits the producer's
    # descriptor keeps the channel open (libzchan's fork rules, issue 13).
    n = name("xproc")
    ctx = mp.get_context("fork")
    out, attached = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=attach_and_read, args=(n, attached, out))
    child.start()
    p = zchan.create(n, backend="kernel")
    for i in range(100):
        p.send(b"%d" % i, timeout=120)
    assert attached.wait(120)
    p.close()
    got = out.get(timeout=120)
    child.join()
    assert got == [b"%d" % i for i in range(100)]


def test_pending_consumer_readable_kernel():
    """issue 20 B2 on the kernel backend: a pending consumer's fileno()
    is readable while a message waits."""
    r, w = zchan.pipe(backend="kernel")
    w.send(b"x")
    assert select.select([r], [], [], 5)[0] == [r]
    assert r.recv(timeout=0) == b"x"
    assert select.select([r], [], [], 0)[0] == []
