# SPDX-License-Identifier: MIT OR LGPL-2.1
"""One process, both ends: every call of the data path, every buffer rule,
every error."""
import errno
import gc
import pickle
import select

import numpy as np
import pytest

import zchan


@pytest.fixture
def chan(backend):
    p = zchan.create(backend=backend, pool_size=1 << 20)
    c = p.consumer()
    yield p, c
    c.close()
    p.close()


def test_send_recv_copies(chan):
    p, c = chan
    assert p.send(b"hello") == 5
    assert p.send(bytearray(b"ba")) == 2
    assert p.send(memoryview(b"xmv")[1:]) == 2
    assert p.send(np.arange(4, dtype=np.uint8)) == 4
    assert p.send(b"") == 0
    assert c.recv() == b"hello"
    assert c.recv() == b"ba"
    assert c.recv() == b"mv"
    assert c.recv() == bytes([0, 1, 2, 3])
    assert c.recv() == b""


def test_send_rejects_wrong_types_and_strides(chan):
    p, c = chan
    with pytest.raises(TypeError):
        p.send("text")
    with pytest.raises(TypeError):
        p.send(123)
    with pytest.raises(BufferError):
        p.send(memoryview(b"abcdef")[::2])
    with pytest.raises(BlockingIOError):
        c.recv(timeout=0)


def test_properties(chan, backend):
    p, c = chan
    assert isinstance(p, zchan.Producer) and isinstance(c, zchan.Consumer)
    assert c.pending and not p.pending
    assert p.backend == backend and c.backend == backend
    assert not c.pending
    assert p.name is None and c.name is None
    assert p.pool_size == 1 << 20 and p.max_msg == (1 << 20) // 4
    assert c.max_msg == p.max_msg and p.ring_entries == 1024
    assert not p.closed and not c.closed
    assert isinstance(p.fileno(), int) and isinstance(c.fileno(), int)
    assert set(p.stats()) == {"messages", "bytes", "kicks", "waits", "spins",
                              "syscalls"}
    assert "Producer" in repr(p) and "Consumer" in repr(c)


def test_stats_count_messages(chan):
    p, c = chan
    for i in range(10):
        p.send(b"x" * i)
    for i in range(10):
        c.recv()
    assert p.stats()["messages"] == 10 and p.stats()["bytes"] == 45
    assert c.stats()["messages"] == 10 and c.stats()["bytes"] == 45


def test_poll_masks(chan):
    p, c = chan
    assert p.poll_mask() & select.POLLOUT
    assert c.poll_mask() == 0
    p.send(b"x")
    assert c.poll_mask() & select.POLLIN
    assert c.wait(timeout=1) is True
    c.recv()
    p.close()
    assert c.poll_mask() & select.POLLHUP


def test_poll_and_wait_as_multiprocessing(chan):
    """poll(timeout) -> bool as multiprocessing.Connection.poll(); wait()
    returns False when the time runs out (issue 20: parity)."""
    p, c = chan
    assert p.poll() is True
    assert c.poll() is False and c.poll(0.01) is False
    assert c.wait(timeout=0.01) is False and c.wait(0) is False
    p.send(b"x")
    assert c.poll() is True and c.poll(None) is True
    assert c.recv() == b"x"
    assert c.poll(1e-12) is False           # a tiny timeout is no timeout=0
    p.close()
    assert c.poll() is True                 # recv() would not block: it raises
    with pytest.raises(BrokenPipeError):
        c.recv(timeout=1e-12)


def test_iteration_ends_with_the_stream(chan):
    p, c = chan
    for i in range(5):
        p.send(b"%d" % i)
    p.close()
    assert list(c) == [b"0", b"1", b"2", b"3", b"4"]
    with pytest.raises(BrokenPipeError):
        c.recv()


def test_context_managers_close(backend):
    with zchan.create(backend=backend) as p:
        with p.consumer() as c:
            p.send(b"x")
            assert c.recv() == b"x"
        assert c.closed
        with pytest.raises(BrokenPipeError):
            p.send(b"y")
    assert p.closed
    with pytest.raises(ValueError):
        p.send(b"z")
    with pytest.raises(ValueError):
        c.recv()
    p.close()   # twice is fine


def test_loan_commit_abort(chan):
    p, c = chan
    loan = p.loan(16)
    assert len(loan) == 16
    memoryview(loan)[:5] = b"hello"
    loan.commit(5)
    assert loan.done
    with pytest.raises(ValueError):
        loan.commit()
    with pytest.raises(BufferError):
        memoryview(loan)
    p.loan(8).abort()
    with p.loan(3) as l2:
        memoryview(l2)[:] = b"abc"
    with pytest.raises(RuntimeError):
        with p.loan(3) as l3:
            memoryview(l3)[:] = b"bad"
            raise RuntimeError("aborts the loan")
    assert l3.done
    assert c.recv() == b"hello"
    assert c.recv() == b"abc"
    with pytest.raises(BlockingIOError):
        c.recv(timeout=0)


def test_loan_bad_sizes(chan):
    p, c = chan
    with pytest.raises(ValueError):
        p.loan(0)
    with pytest.raises(OSError) as e:
        p.loan(p.max_msg + 1)
    assert e.value.errno == errno.EMSGSIZE
    loan = p.loan(4)
    with pytest.raises(ValueError):
        loan.commit(5)
    loan.abort()


def test_loan_exported_refuses_commit(chan):
    p, c = chan
    loan = p.loan(8)
    view = memoryview(loan)
    view[:] = b"12345678"
    with pytest.raises(BufferError, match="aborted"):
        loan.commit()
    # refused and aborted: the view could change the message after commit
    assert loan.done
    view.release()
    p.send(b"next")
    assert c.recv(timeout=5) == b"next"


def test_dropped_loan_is_aborted(chan):
    p, c = chan
    loan = p.loan(8)
    memoryview(loan)[:] = b"unfinish"
    del loan
    p.send(b"next")
    assert c.recv() == b"next"


def test_recv_zc_buffer_rules(chan):
    p, c = chan
    p.send(b"zero-copy")
    msg = c.recv_zc()
    assert len(msg) == 9 and bytes(msg) == b"zero-copy"
    view = memoryview(msg)
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 0
    with pytest.raises(BufferError):
        msg.release()
    assert view.tobytes() == b"zero-copy"
    view.release()
    msg.release()
    assert msg.released
    msg.release()      # twice is fine
    with pytest.raises(BufferError):
        memoryview(msg)
    p.send(b"again")
    with c.recv_zc() as m2:
        assert bytes(m2) == b"again"
    assert m2.released


def test_borrowed_messages_hold_the_pool(backend):
    """Space comes back only when the message, or its array, is gone."""
    p = zchan.create(backend=backend, pool_size=1 << 16, max_msg=1 << 15)
    c = p.consumer()
    p.send(b"a" * 30000)
    p.send(b"b" * 30000)
    held = [c.recv_zc(), memoryview(c.recv_zc())]
    with pytest.raises(BlockingIOError):
        p.send(b"c" * 30000, timeout=0)
    held[0].release()
    p.send(b"c" * 30000, timeout=0)     # the failed send loses nothing
    assert bytes(held[1][:1]) == b"b"
    del held
    assert c.recv() == b"c" * 30000
    p.close()
    c.close()


def test_emsgsize_and_repeatable_send(backend):
    p = zchan.create(backend=backend, pool_size=1 << 16, max_msg=1 << 14)
    c = p.consumer()
    assert p.max_msg >= 1 << 14 and p.pool_size >= 1 << 16
    with pytest.raises(OSError) as e:
        p.send(bytes(p.max_msg + 1))
    assert e.value.errno == errno.EMSGSIZE
    sent = 0
    with pytest.raises(BlockingIOError):
        while True:
            p.send(b"%06d" % sent + bytes(8000), timeout=0)
            sent += 1
    with pytest.raises(TimeoutError):
        p.send(b"late" + bytes(8002), timeout=0.02)
    got = [c.recv()[:6] for _ in range(sent)]
    assert got == [b"%06d" % i for i in range(sent)]
    p.send(b"late" + bytes(8002))
    assert c.recv()[:4] == b"late"


def test_bad_arguments(backend):
    with pytest.raises(ValueError):
        zchan.create(ring_entries=3, backend=backend)
    with pytest.raises(ValueError):
        zchan.create(pool_size=-1, backend=backend)
    with pytest.raises(ValueError):
        zchan.create(pool_size=1 << 16, max_msg=1 << 16, backend=backend)
    with pytest.raises(ValueError):
        zchan.create(backend="nosuch")
    with pytest.raises(TypeError):
        zchan.create(backend=1)
    with pytest.raises(TypeError):
        zchan.create(name=5)
    with pytest.raises(ValueError):
        zchan.create(name="a\0b")
    with pytest.raises(TypeError):
        zchan.Producer()
    p = zchan.create(backend=backend)
    c = p.consumer()
    with pytest.raises(ValueError):
        c.recv(timeout=-1)
    with pytest.raises(TypeError):
        c.recv(timeout="soon")
    with pytest.raises(OSError) as e:
        p.consumer()            # one consumer end per channel
    assert e.value.errno in (errno.EBUSY, errno.EINVAL) or isinstance(e.value, OSError)


def test_named_channel_on_memfd_is_refused():
    with pytest.raises(OSError) as e:
        zchan.create("zchan-py-memfd", backend="memfd")
    assert e.value.errno == errno.EOPNOTSUPP


def test_arrays(chan):
    p, c = chan
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    p.send_array(a)
    p.send_array(a[:, ::2, ::-1])                     # any strides
    p.send_array(np.asfortranarray(a))
    rec = np.zeros(3, dtype=[("x", "<f8"), ("n", "<i2", (2,))])
    rec["x"] = [1.5, 2.5, 3.5]
    p.send_array(rec)
    p.send_array(np.empty((0, 5)))
    p.send_array(np.float32(2.5))
    got = [c.recv_array() for _ in range(6)]
    np.testing.assert_array_equal(got[0], a)
    np.testing.assert_array_equal(got[1], a[:, ::2, ::-1])
    np.testing.assert_array_equal(got[2], a)
    assert got[3].dtype == rec.dtype and list(got[3]["x"]) == [1.5, 2.5, 3.5]
    assert got[4].shape == (0, 5)
    assert got[5].shape == () and got[5] == np.float32(2.5)
    assert not got[0].flags.writeable
    with pytest.raises(ValueError):
        got[0][0, 0, 0] = 1
    with pytest.raises(TypeError):
        p.send_array(np.array([object()]))


def test_loan_array_zero_copy(chan):
    p, c = chan
    with p.loan_array((40, 40, 3), np.float64) as loan:
        loan.array[:] = 7.0
        loan.array[0, 0, 0] = 1.0
    a = c.recv_array()
    assert a.shape == (40, 40, 3) and a[0, 0, 0] == 1.0 and a[1].sum() == 7 * 120
    loan = p.loan_array(10, "u1")
    keep = loan.array[2:]
    keep[:] = 1
    with pytest.raises(BufferError, match="aborted"):
        loan.commit()           # a view still writes into it
    assert loan.done
    del keep
    p.send_array(np.arange(3))
    assert list(c.recv_array(timeout=5)) == [0, 1, 2]


def test_recv_array_refuses_bad_messages(chan):
    """recv_array() of something that is no array message: ValueError,
    and the message stays for recv(); a header that points outside the
    message, or data shorter than the header says: ValueError, and the
    message is released (the next one arrives)."""
    p, c = chan
    with p.loan_array((4, 4), np.float64) as loan:
        loan.array[...] = 1
        hdr_len = len(memoryview(loan)) - 128
    with c.recv_zc() as m:
        good = bytes(m)
    p.send(b"plain bytes, no header")
    p.send(b"ZCA1" + (1 << 20).to_bytes(4, "little") + bytes(8))
    p.send(good[:hdr_len + 64])                 # half the data
    p.send(good[:hdr_len])                      # header only
    with pytest.raises(ValueError, match="left for the next"):
        c.recv_array()
    with pytest.raises(ValueError, match="left for the next"):
        c.recv_obj()
    assert c.recv() == b"plain bytes, no header"
    for _ in range(3):
        with pytest.raises(ValueError):
            c.recv_array()
    p.send_array(np.arange(3))
    assert list(c.recv_array()) == [0, 1, 2]
    p.send(b"")
    with pytest.raises(ValueError):
        c.recv_array()
    with c.recv_zc() as m:
        assert len(m) == 0


def test_loan_array_shapes_and_dtypes(chan):
    """Every spelling of a shape and dtype gives the same layout; the
    cache keyed by them never mixes two."""
    p, c = chan
    for shape, dtype in [((2, 3), "f8"), ([2, 3], np.float64), ((2, 3), float),
                         ((np.int64(2), 3), np.dtype("<f8")), (6, "i4"),
                         ((6,), np.int32), ((2, 3), ">f8"), ((0, 3), "f8")]:
        for _ in range(2):                      # built, then cached
            with p.loan_array(shape, dtype) as loan:
                loan.array[...] = 5
            a = c.recv_array()
            want = np.dtype(dtype)
            assert a.dtype == want and a.dtype.byteorder == want.byteorder
            assert a.shape == ((shape,) if isinstance(shape, int) else tuple(shape))
            assert (a == 5).all() and not a.flags.writeable
            del a
    with pytest.raises(ValueError):
        p.loan_array((2, -1), "f8")
    with pytest.raises(TypeError):
        p.loan_array((2, 3), object)


def test_recv_array_releases_with_last_view(backend):
    p = zchan.create(backend=backend, pool_size=1 << 16, max_msg=1 << 15)
    c = p.consumer()
    p.send_array(np.ones(4000))          # 32000 bytes
    p.send_array(np.ones(3000))
    a = c.recv_array()
    v = a[10:20]
    del a
    b = c.recv_array()
    del b
    with pytest.raises(BlockingIOError):
        p.send_array(np.ones(4000), timeout=0)
    del v
    gc.collect()
    p.send_array(np.ones(4000), timeout=0)
    assert c.recv_array().sum() == 4000


def test_send_obj_out_of_band(chan):
    p, c = chan
    obj = {"frame": np.arange(1000.0).reshape(10, 100), "label": "cat",
           "ids": np.arange(5), "nested": [np.zeros(3, np.uint8), b"raw"]}
    p.send_obj(obj)
    p.send_obj(("no buffers", 1, 2.0))
    got = c.recv_obj()
    np.testing.assert_array_equal(got["frame"], obj["frame"])
    assert got["label"] == "cat" and got["nested"][1] == b"raw"
    assert not got["frame"].flags.writeable           # lies in the pool
    base = got["frame"]
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview)         # no copy: a view of the message
    assert c.recv_obj() == ("no buffers", 1, 2.0)
    p.send(b"plain")
    with pytest.raises(ValueError):
        c.recv_obj()


def test_recv_obj_copy_and_pinned(chan):
    """copy=True: writable private arrays, the message released at once;
    pinned() counts what held messages pin."""
    p, c = chan
    assert c.pinned() == 0
    p.send_obj({"a": np.arange(1000.0)})
    p.send_obj({"a": np.arange(1000.0)})
    kept = c.recv_obj()
    assert not kept["a"].flags.writeable and c.pinned() >= 8000
    held = c.pinned()
    mine = c.recv_obj(copy=True)
    assert mine["a"].flags.writeable and mine["a"][999] == 999.0
    mine["a"][0] = 5.0
    assert c.pinned() >= held          # kept pins what follows it
    del kept
    assert c.pinned() == 0
    p.send(b"plain")
    with pytest.raises(ValueError):
        c.recv_obj(copy=True)
    assert c.recv() == b"plain"


def test_ends_do_not_pickle_outside_multiprocessing(chan):
    p, c = chan
    with pytest.raises(TypeError):
        pickle.dumps(p)
    with pytest.raises(TypeError):
        pickle.dumps(c)


def test_close_with_borrowed_messages_keeps_them_valid(chan):
    p, c = chan
    p.send_array(np.arange(100))
    a = c.recv_array()
    c.close()
    assert c.closed
    with pytest.raises(ValueError):
        c.recv()
    assert a.sum() == 4950      # still mapped until the array is gone
    del a
    with pytest.raises(BrokenPipeError):
        p.send(b"x")


def test_strerror():
    assert "closed" in zchan.strerror(errno.EPIPE)
