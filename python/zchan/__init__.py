# SPDX-License-Identifier: MIT OR LGPL-2.1
"""zchan: zero-copy channels between processes.

A channel carries messages one way, from a Producer to a Consumer,
through pages both processes map: the producer writes into the pool (or
lets send() copy there), the consumer reads where the bytes lie.

    import zchan, multiprocessing as mp

    def child(w):
        for i in range(3):
            w.send(b"hello %d" % i)

    r, w = zchan.pipe()                 # like multiprocessing.Pipe(False)
    p = mp.Process(target=child, args=(w,))
    p.start()
    w.close()                           # the child has it now
    for msg in r:                       # bytes, until the child is done
        print(msg)
    p.join()

Zero copy: Producer.loan()/loan_array() and Consumer.recv_zc()/
recv_array(); whole objects with numpy arrays in them: send_obj()/
recv_obj() (pickle protocol 5, the arrays out of band in the pool).
Errors are the built-in OSError subclasses (BrokenPipeError once the
peer is gone and everything was read, BlockingIOError for timeout=0,
TimeoutError...).  See Documentation/python.rst.
"""

import asyncio
import ast
import errno
import operator
import os
import pickle
import socket
import struct
import sys
import weakref

from . import _zchan
from ._zchan import (DEFAULT_POOL_SIZE, DEFAULT_RING_ENTRIES, ENDS_MAX, Loan, Message,
                     POLLERR, POLLHUP, POLLIN, POLLOUT, ROLE_CONSUMER, ROLE_PRODUCER,
                     strerror)

__version__ = "0.1.0"                     # python/pyproject.toml's

__all__ = ["create", "open", "attach", "pipe", "recv_peer", "Producer", "Consumer",
           "Loan", "Message", "strerror", "POLLIN", "POLLOUT", "POLLHUP",
           "POLLERR", "DEFAULT_POOL_SIZE", "DEFAULT_RING_ENTRIES",
           "ROLE_PRODUCER", "ROLE_CONSUMER", "ENDS_MAX"]

# send_array()/send_obj() message headers; payloads start 64-byte aligned
_ALIGN = 64
_ARRAY_MAGIC = b"ZCA1"
_ARRAY_HDR = struct.Struct("<4sIHH")        # magic, data offset, ndim, descr len
_ARRAY_HDR_MAX = 4096                       # the receiver's cap (src/message.c)
_OBJ_MAGIC = b"ZCO1"
_OBJ_HDR = struct.Struct("<4sIQ")           # magic, buffer count, pickle length
_OBJ_BUF = struct.Struct("<QQ")             # offset, length


class _PickleParts:
    """The file a Pickler writes a send_obj() message to.  The pickler
    hands a large in-band payload (a 1 MB bytes object) to write() as the
    object itself, so keeping the parts and copying them once into the
    loan saves pickle.dumps()'s growing buffer: two copies of the payload,
    most of the time send_obj() of bytes took."""

    __slots__ = ("parts", "nbytes")

    def __init__(self):
        self.parts = []
        self.nbytes = 0

    def write(self, b):
        n = memoryview(b).nbytes
        self.parts.append(b)
        self.nbytes += n
        return n

    def copy_into(self, view, at):
        for b in self.parts:
            m = memoryview(b).cast("B")
            view[at:at + m.nbytes] = m
            at += m.nbytes
_BACKENDS = {0: "auto", 1: "kernel", 2: "memfd"}
_CLAIM_TOKEN = b"Z"


def _align(n):
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


_np = None      # numpy, imported by the first array call


def _numpy():
    global _np
    if _np is None:
        try:
            import numpy
        except ImportError as e:  # pragma: no cover - Debian has python3-numpy
            raise ImportError("zchan's array calls need numpy (python3-numpy)") from e
        _np = numpy
    return _np


_dtype_cache = {}


def _dtype_descr(dtype):
    """The header text of a dtype; ValueError (at send time) for one the
    receiver could not rebuild exactly."""
    np = _numpy()
    if dtype.hasobject:
        raise TypeError("arrays of Python objects cannot live in the pool: use send_obj()")
    try:
        descr = np.lib.format.dtype_to_descr(dtype)
        raw = (descr if isinstance(descr, str) else repr(descr)).encode()
        back = _dtype_parse(raw)
    except Exception as e:
        raise ValueError("zchan: dtype %r cannot be described in an array message: %s"
                         % (dtype, e)) from None
    if back != dtype:
        raise ValueError("zchan: dtype %r would arrive as %r: send a packed copy "
                         "(numpy.lib.recfunctions.repack_fields) or use send_obj()"
                         % (dtype, back))
    return raw


def _dtype_parse(raw):
    dt = _dtype_cache.get(raw)
    if dt is None:
        np = _numpy()
        text = raw.decode()
        if not text:
            raise ValueError("empty dtype")
        descr = text if text[0] not in "[(" else ast.literal_eval(text)
        dt = np.lib.format.descr_to_dtype(descr)
        if len(_dtype_cache) < 256:
            _dtype_cache[raw] = dt
    return dt


def _array_header(shape, dtype):
    descr = _dtype_descr(dtype)
    head = _ARRAY_HDR.size + 8 * len(shape) + len(descr)
    if _align(head) > _ARRAY_HDR_MAX:
        raise ValueError("zchan: the header of a %d-dimensional array of dtype %r "
                         "takes %d bytes, above the %d a receiver accepts: use send_obj()"
                         % (len(shape), dtype, head, _ARRAY_HDR_MAX))
    offset = _align(head)
    hdr = bytearray(offset)
    _ARRAY_HDR.pack_into(hdr, 0, _ARRAY_MAGIC, offset, len(shape), len(descr))
    struct.pack_into("<%dq" % len(shape), hdr, _ARRAY_HDR.size, *shape)
    hdr[head - len(descr):head] = descr
    return hdr


# Array layouts already built or parsed: a stream repeats the same few.
_HDR_CACHE_MAX = 256
_hdr_built = {}         # (shape, dtype) as given -> (shape, dtype, count, header, nbytes)
_hdr_parsed = {}        # header bytes -> (dtype, shape, element count)


def _array_layout(shape, dtype):
    """loan_array()'s arguments checked and normalised, with the message
    header and size: (shape, numpy.dtype, element count, header, message
    bytes)."""
    try:
        return _hdr_built[(shape, dtype)]
    except (KeyError, TypeError):     # new, or unhashable (a list)
        pass
    np = _numpy()
    dt = dtype if type(dtype) is np.dtype else np.dtype(dtype)
    try:
        shp = (operator.index(shape),) if not isinstance(shape, (tuple, list)) else \
            tuple(operator.index(n) for n in shape)
    except TypeError:
        raise ValueError("zchan: a shape is integers (numpy's too), not %r" % (shape,)) from None
    if any(n < 0 for n in shp):
        raise ValueError("negative dimensions are not allowed")
    count = 1
    for n in shp:
        count *= n
    if count * dt.itemsize > _MSG_MAX or any(n >= 1 << 63 for n in shp):
        raise ValueError("zchan: an array of shape %r and dtype %s is %d bytes, above "
                         "the largest message a channel carries (%d)"
                         % (shp, dt, count * dt.itemsize, _MSG_MAX))
    hdr = bytes(_array_header(shp, dt))
    got = (shp, dt, count, hdr, len(hdr) + count * dt.itemsize)
    if len(_hdr_built) < _HDR_CACHE_MAX:
        try:
            _hdr_built[(shape, dtype)] = got
        except TypeError:
            pass
    return got


def _array_parse(hdr):
    """(dtype, shape, element count) of an array message's header;
    ValueError for anything a send_array() would not have written."""
    got = _hdr_parsed.get(hdr)
    if got is None:
        try:
            magic, offset, ndim, dlen = _ARRAY_HDR.unpack_from(hdr, 0)
            at = _ARRAY_HDR.size + 8 * ndim
            if at + dlen > len(hdr) or ndim > 64:
                raise ValueError("header fields out of bounds")
            shape = struct.unpack_from("<%dq" % ndim, hdr, _ARRAY_HDR.size)
            dtype = _dtype_parse(bytes(hdr[at:at + dlen]))
            if not isinstance(dtype, _np.dtype) or dtype.hasobject:
                raise ValueError("not a plain dtype")
        except Exception as e:
            raise ValueError("zchan: corrupt array message header (%s)" % e) from None
        if any(n < 0 for n in shape):
            raise ValueError("zchan: corrupt array message header (negative dimension)")
        count = 1
        for n in shape:
            count *= n
        got = (dtype, shape, count)
        if len(_hdr_parsed) < _HDR_CACHE_MAX:
            _hdr_parsed[hdr] = got
    return got


def _array_from(hdr, view):
    """The ndarray in a send_array() message: a read-only view of the
    pool that keeps the message (through view) until it is gone."""
    np = _numpy()
    dtype, shape, count = _array_parse(hdr)
    if not count:
        a = np.empty(shape, dtype)
        a.flags.writeable = False       # read-only, as every received array
        return a
    if len(hdr) + count * dtype.itemsize > len(view):
        raise ValueError("zchan: array message shorter than its header says")
    # frombuffer's base is a memoryview holding the export (ndarray(buffer=)
    # would keep the message object only, and let it be released)
    return np.frombuffer(view, dtype, count, len(hdr)).reshape(shape)


class _Watch:
    """The event loop's watch on one end's descriptor, shared by every task
    awaiting that end (add_reader() keeps one callback per descriptor: a
    second waiter used to replace the first, which never woke).  Readiness
    or close() wakes them all; each then tries its call again."""

    def __init__(self, loop, end):
        self.loop = loop
        self.fd = end.fileno()
        self.writer = isinstance(end, Producer) and end.backend == "kernel"
        self.futs = set()

    def add(self, fut):
        if not self.futs:
            (self.loop.add_writer if self.writer else self.loop.add_reader)(self.fd, self.wake)
        self.futs.add(fut)

    def discard(self, fut):
        self.futs.discard(fut)
        if not self.futs:
            (self.loop.remove_writer if self.writer else self.loop.remove_reader)(self.fd)

    def wake(self):
        futs, self.futs = self.futs, set()
        (self.loop.remove_writer if self.writer else self.loop.remove_reader)(self.fd)
        for f in futs:
            if not f.done():
                f.set_result(None)


_watches = weakref.WeakKeyDictionary()     # end -> _Watch


async def _ready(end, timeout):
    """Wait on the event loop until end's descriptor may be ready."""
    loop = asyncio.get_running_loop()
    w = _watches.get(end)
    if w is None or w.loop is not loop:
        w = _watches[end] = _Watch(loop, end)
    fut = loop.create_future()
    w.add(fut)
    try:
        await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        pass                            # the caller sees the deadline
    finally:
        w.discard(fut)


def _wake_waiters(end):
    """close(): tasks awaiting this end wake and see it closed."""
    w = _watches.pop(end, None)
    if w is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is w.loop:
        w.wake()
    elif not w.loop.is_closed():
        w.loop.call_soon_threadsafe(w.wake)


async def _aretry(end, call, *args, timeout=None):
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        try:
            return call(*args, timeout=0)
        except BlockingIOError:
            pass
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, "zchan: timed out")
        await _ready(end, left)


def _not_picklable(self, protocol):
    raise TypeError("a zchan end travels to another process only through "
                    "multiprocessing (Process args, Queue, Pipe) before its "
                    "first use, or with send_peer()/recv_peer()")


def _exit(end, *exc_info):
    _wake_waiters(end)
    _zchan.End.close(end)
    return False


def _close(end):
    """close(), but a pending end that something else still holds (a
    Queue's buffer or its feeder thread, an executor's work item: they
    pickle it later, after the close() that follows put()) keeps its
    socket for that pickler until the object goes.  The references of a
    plain `end.close()`: the caller's name, this frame's, getrefcount's."""
    if end.closed:
        return
    h = _lent.pop(end, None)
    if h is not None:
        h.wait()                        # a fork child is taking it over
    _wake_waiters(end)
    if end.pending and sys.getrefcount(end) > 3:
        end._close_later()
    else:
        _zchan.End.close(end)


class Producer(_zchan.Producer):
    """The producer end of a channel: send(), loan(), loan_array(),
    send_array(), send_obj(), asend(); see help(zchan.create)."""
    __slots__ = ()
    __reduce_ex__ = _not_picklable
    close = _close
    __exit__ = _exit

    def consumer(self):
        """Return the consumer end of this channel, pending: it can be
        handed to another process (multiprocessing) before its first use.
        A channel has one consumer end."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with mine, theirs:
            self.send_peer(mine)
            return _pending_consumer(theirs)

    def loan_array(self, shape, dtype=float, *, timeout=None):
        """Lend pool space for an array: the Loan's .array is a writable
        numpy.ndarray of that shape and dtype in the pool.  Fill it, then
        commit() (or use the Loan as a context manager); the consumer gets
        it with recv_array() without a copy."""
        shape, dtype, count, hdr, nbytes = _array_layout(shape, dtype)
        loan, view = self._loan_array(nbytes, hdr, timeout)
        try:
            if count:
                # its base, a memoryview, keeps the loan exported
                loan.array = _np.frombuffer(view, dtype, count, len(hdr)).reshape(shape)
            else:
                loan.array = _numpy().empty(shape, dtype)
        except BaseException:
            loan.array = None
            del view
            loan.abort()
            raise
        return loan

    def send_array(self, a, *, timeout=None):
        """Send an ndarray (dtype, shape and data: one copy into the pool,
        any strides); the consumer takes it with recv_array()."""
        np = _numpy()
        if type(a) is not np.ndarray:
            if isinstance(a, np.ma.MaskedArray):
                raise ValueError("zchan: a masked array would lose its mask: send "
                                 "a.data and a.mask, or use send_obj()")
            a = np.asanyarray(a)
        loan = self.loan_array(a.shape, a.dtype, timeout=timeout)
        try:
            np.copyto(loan.array, a, casting="no")
        except BaseException:
            loan.abort()
            raise
        loan.commit()

    def send_bytes(self, buf, offset=0, size=None, *, timeout=None):
        """multiprocessing.Connection.send_bytes(): send buf[offset:
        offset + size] (any bytes-like object) as one message."""
        with memoryview(buf) as m:
            m = m.cast("B")
            if offset < 0 or offset > len(m):
                raise ValueError("offset is negative or out of bounds")
            if size is None:
                size = len(m) - offset
            if size < 0 or offset + size > len(m):
                raise ValueError("size is negative or out of bounds")
            return self.send(m[offset:offset + size], timeout=timeout)

    def send_obj(self, obj, *, timeout=None):
        """Send any picklable object as one message: pickle protocol 5
        with every out-of-band buffer (numpy arrays, PickleBuffer) copied
        into the pool once; recv_obj() rebuilds it around the pool."""
        bufs = []
        data = _PickleParts()
        pickle.Pickler(data, protocol=5, buffer_callback=bufs.append).dump(obj)
        raws = [b.raw() for b in bufs]
        head = _OBJ_HDR.size + _OBJ_BUF.size * len(raws)
        at = _align(head)
        places = []
        pickle_at = at
        at = _align(at + data.nbytes)
        for r in raws:
            places.append((at, r.nbytes))
            at = _align(at + r.nbytes)
        loan = self.loan(max(at, 1), timeout=timeout)
        try:
            view = memoryview(loan)
            _OBJ_HDR.pack_into(view, 0, _OBJ_MAGIC, len(raws), data.nbytes)
            for i, (off, n) in enumerate(places):
                _OBJ_BUF.pack_into(view, _OBJ_HDR.size + i * _OBJ_BUF.size, off, n)
            data.copy_into(view, pickle_at)
            for (off, n), r in zip(places, raws):
                view[off:off + n] = r.cast("B")
            del view
        except BaseException:
            loan.abort()
            raise
        finally:
            for r in raws:
                r.release()
        loan.commit(at)

    async def asend(self, data, *, timeout=None):
        """send(data) on the asyncio event loop, waiting through the
        end's descriptor (no thread)."""
        return await _aretry(self, self.send, data, timeout=timeout)

    async def asend_array(self, a, *, timeout=None):
        """send_array(a) on the asyncio event loop."""
        return await _aretry(self, self.send_array, a, timeout=timeout)

    async def asend_obj(self, obj, *, timeout=None):
        """send_obj(obj) on the asyncio event loop."""
        return await _aretry(self, self.send_obj, obj, timeout=timeout)


class Consumer(_zchan.Consumer):
    """The consumer end of a channel: recv(), recv_zc(), recv_array(),
    recv_obj(), iteration, arecv(); see help(zchan.pipe)."""
    __slots__ = ()
    __reduce_ex__ = _not_picklable
    close = _close
    __exit__ = _exit

    def recv_array(self, *, timeout=None, copy=False):
        """Receive an array sent with send_array() or loan_array(): a
        read-only ndarray backed by the pool, no copy.  Its message is
        released when the array and every view of it are gone: arrays
        kept for long pin the pool (copy=True returns a copy and releases
        the message at once).  A message of another kind raises ValueError
        and stays for the next receive; an array message whose header
        lies (a hostile producer) raises ValueError and is released."""
        hdr, view = self._recv_array(timeout)
        got = _hdr_parsed.get(hdr)
        if got is not None and got[2] and len(hdr) + got[2] * got[0].itemsize <= len(view):
            dtype, shape, count = got   # the common case, inline
            a = _np.frombuffer(view, dtype, count, len(hdr)).reshape(shape)
            return a.copy() if copy else a
        if hdr is None:
            msg = view.obj
            view.release()
            self._push_back(msg)
            raise ValueError("zchan: not an array message (sent with send_array()?): "
                             "left for the next recv()/recv_zc()")
        try:
            a = _array_from(hdr, view)
            if len(hdr) + a.nbytes > len(view):
                raise ValueError("zchan: array message shorter than its header says")
        except ValueError:
            view.release()              # refused: released at once
            raise
        return a.copy() if copy else a

    def arrays(self, *, timeout=None, copy=False):
        """Iterate over recv_array() until the stream ends."""
        while True:
            try:
                yield self.recv_array(timeout=timeout, copy=copy)
            except BrokenPipeError:
                return

    def recv_obj(self, *, timeout=None, copy=False):
        """Receive an object sent with send_obj(): its out-of-band buffers
        (numpy arrays...) stay in the pool, read-only, until the last
        object using them is gone.  copy=True: writable private copies of
        them, the message released at once.  A message of another kind
        raises ValueError and stays for the next receive; a forged one
        raises ValueError and is released."""
        msg = self.recv_zc(timeout=timeout)
        view = memoryview(msg)
        if len(view) < _OBJ_HDR.size or bytes(view[:4]) != _OBJ_MAGIC:
            view.release()
            self._push_back(msg)
            raise ValueError("zchan: not an object message (sent with send_obj()?): "
                             "left for the next recv()/recv_zc()")
        del msg
        bufs = []
        try:
            magic, nbufs, plen = _OBJ_HDR.unpack_from(view, 0)
            at = _align(_OBJ_HDR.size + _OBJ_BUF.size * nbufs)
            if at > len(view) or plen > len(view) - at:
                raise ValueError("header fields out of bounds")
            for i in range(nbufs):
                off, n = _OBJ_BUF.unpack_from(view, _OBJ_HDR.size + i * _OBJ_BUF.size)
                if off > len(view) or n > len(view) - off:
                    raise ValueError("buffer %d out of bounds" % i)
                bufs.append(view[off:off + n])
            if not copy:
                return pickle.loads(view[at:at + plen], buffers=bufs)
            mine = [bytearray(b) for b in bufs]
            obj = pickle.loads(view[at:at + plen], buffers=mine)
        except Exception as e:
            for b in bufs:
                b.release()
            view.release()              # refused: released at once
            if isinstance(e, ValueError) and str(e).startswith("zchan:"):
                raise
            raise ValueError("zchan: corrupt object message (%s: %s)"
                             % (type(e).__name__, e)) from None
        for b in bufs:
            b.release()
        view.release()                  # copied: released at once
        return obj

    def recv_bytes(self, maxlength=None, *, timeout=None):
        """multiprocessing.Connection.recv_bytes(): the next message as
        bytes; EOFError once the stream ended; OSError for a message
        longer than maxlength (it is dropped, as Connection drops it)."""
        try:
            b = self.recv(timeout=timeout)
        except BrokenPipeError:
            raise EOFError("zchan: the producer is gone and every message was read") from None
        if maxlength is not None and len(b) > maxlength:
            raise OSError("bad message length: %d > maxlength %d" % (len(b), maxlength))
        return b

    def recv_bytes_into(self, buf, offset=0, *, timeout=None):
        """multiprocessing.Connection.recv_bytes_into(): copy the next
        message into buf at offset and return its length."""
        try:
            msg = self.recv_zc(timeout=timeout)
        except BrokenPipeError:
            raise EOFError("zchan: the producer is gone and every message was read") from None
        with msg, memoryview(buf) as out, memoryview(msg) as m:
            out = out.cast("B")
            if offset < 0 or offset > len(out):
                raise ValueError("offset out of bounds")
            if len(m) > len(out) - offset:
                raise ValueError("zchan: buffer too small for a %d-byte message" % len(m))
            out[offset:offset + len(m)] = m
            return len(m)

    async def arecv(self, *, timeout=None):
        """recv() on the asyncio event loop, through the end's descriptor."""
        return await _aretry(self, self.recv, timeout=timeout)

    async def arecv_zc(self, *, timeout=None):
        """recv_zc() on the asyncio event loop."""
        return await _aretry(self, self.recv_zc, timeout=timeout)

    async def arecv_array(self, *, timeout=None):
        """recv_array() on the asyncio event loop."""
        return await _aretry(self, self.recv_array, timeout=timeout)

    async def arecv_obj(self, *, timeout=None):
        """recv_obj() on the asyncio event loop."""
        return await _aretry(self, self.recv_obj, timeout=timeout)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.arecv()
        except BrokenPipeError:
            raise StopAsyncIteration from None


# room for a send_array()/send_obj() header on top of a max_msg payload
# (the consumer reads array headers up to this size)
_HEADER_ROOM = 4096
_MSG_MAX = 1 << 30                      # ZCHAN_MSG_MAX


def _geometry(args):
    """create()'s sizes for the library: max_msg is the payload a user
    asks for, the binding's headers get room on top, and a default pool
    grows to hold two such messages.  Size errors name what would work."""
    pool_size = operator.index(args.get("pool_size", 0))
    max_msg = operator.index(args.get("max_msg", 0))
    if max_msg <= 0:
        return args
    lib_max = max_msg + _HEADER_ROOM
    if lib_max > _MSG_MAX:
        raise ValueError("zchan: max_msg=%d is above the largest message a channel "
                         "carries, %d bytes (%d and %d bytes of header room)"
                         % (max_msg, _MSG_MAX, _MSG_MAX - _HEADER_ROOM, _HEADER_ROOM))
    need = 2 * lib_max
    if pool_size and pool_size < 2 * max_msg:
        raise ValueError("zchan: max_msg=%d needs pool_size >= %d (two messages of "
                         "max_msg plus %d bytes of header room each); pool_size=%d"
                         % (max_msg, need, _HEADER_ROOM, pool_size))
    # the pool holds two max_msg messages with their headers, at least
    pool_size = max(pool_size or DEFAULT_POOL_SIZE, need)
    return dict(args, pool_size=pool_size, max_msg=lib_max)


def create(name=None, *, pool_size=0, max_msg=0, ring_entries=0, mode=0o600,
           busy_poll=False, backend="auto", max_producers=1, max_consumers=1,
           broadcast=False):
    """Create a channel and return its producer end.

    name: None for an anonymous channel (hand its consumer end over with
    Producer.consumer() or send_peer()); a str makes a named channel that
    other processes attach to with zchan.open(name) (kernel backend only;
    mode gives the permission bits, as for a file).
    pool_size: data pool bytes (0: 4 MiB; grown to hold two max_msg
    messages and their headers);
    max_msg: largest payload (send(), loan(), an array's data; zchan adds
    room for its own headers; 0: a quarter of the pool), at most half the
    pool; ring_entries: power of two (0: 1024); busy_poll: waits spin
    instead of sleeping; backend: "auto"
    ($ZCHAN_BACKEND, else the kernel module if /dev/zchan opens, else
    memfd), "kernel" or "memfd".
    max_producers, max_consumers: most ends of each role live at once (1
    to ENDS_MAX; more ends come from attach() or send_end()); broadcast:
    every consumer gets every message (without it, several consumers
    would be a work queue: not built yet, OSError EOPNOTSUPP).

    Raises FileExistsError (name taken), PermissionError, FileNotFoundError
    (backend="kernel" without the module), OSError EOPNOTSUPP (a name on
    the memfd backend), ValueError for bad sizes.
    """
    sizes = _geometry({"pool_size": pool_size, "max_msg": max_msg})
    return _zchan.create(Producer, name, ring_entries=ring_entries, mode=mode,
                         busy_poll=busy_poll, backend=backend, max_producers=max_producers,
                         max_consumers=max_consumers, broadcast=broadcast, **sizes)


def open(name):  # noqa: A001 - the issue's name for it
    """Attach to the named channel (kernel backend) as its consumer.
    FileNotFoundError if there is none, PermissionError if its mode does
    not let this process in."""
    return _zchan.open(Consumer, name)


def attach(name, role):
    """A new end of role (ROLE_PRODUCER or ROLE_CONSUMER) on the named
    channel (kernel backend): a Producer or a Consumer.  open(name) is
    attach(name, ROLE_CONSUMER).  OSError EUSERS once the role has its
    maximum of live ends (max_producers, max_consumers)."""
    return _zchan.open(Producer if role == ROLE_PRODUCER else Consumer, name, role)


def recv_peer(sock, *, timeout=None, role=ROLE_CONSUMER):
    """Receive an end sent with send_peer() or send_end() over an AF_UNIX
    socket (a socket.socket or a file descriptor): a Consumer, or with
    role=ROLE_PRODUCER a Producer (the receiver names the role it expects:
    libzchan has no call that tells).  Waits up to timeout seconds
    (TimeoutError; None: for ever), interruptibly."""
    return _zchan.recv_peer(Producer if role == ROLE_PRODUCER else Consumer, sock,
                            timeout=timeout, role=role)


def pipe(**create_args):
    """Return (consumer, producer) of a new anonymous channel, like
    multiprocessing.Pipe(duplex=False) returns (reader, writer).

    Both ends are pending until their first use: hand either to a
    multiprocessing.Process (fork, spawn or forkserver) or through a
    multiprocessing Queue or Pipe, then close() your copy.  The producer
    creates the channel where it is first used and sends the consumer end
    over a socket the two share; the consumer sees every message, then
    BrokenPipeError once every copy of the producer is closed or its
    process has exited.  create_args as for zchan.create() (no name).
    """
    if "name" in create_args:
        raise TypeError("pipe() makes anonymous channels: use create(name) and open(name)")
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # the first process to use the producer takes this token, any
        # other gets EBUSY (python/src/pending.c)
        theirs.send(_CLAIM_TOKEN)
        prod = _zchan.create(Producer, None, pending=mine.fileno(),
                             **_geometry(create_args))
    except BaseException:
        mine.close()
        theirs.close()
        raise
    mine.detach()
    return _pending_consumer(theirs), prod


def _pending_consumer(sock):
    """A pending Consumer owning sock (its rendezvous socket) and a claim
    socket with a token waiting: the first process to use the consumer
    takes it, any other gets EBUSY (python/src/pending.c)."""
    claim, token = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with token:
        token.send(_CLAIM_TOKEN)
    try:
        return _zchan.recv_peer(Consumer, sock.detach(), True, claim=claim.fileno())
    finally:
        claim.detach()


# multiprocessing pickles pending ends by passing their sockets' descriptors
def _reduce_end(end):
    from multiprocessing import reduction
    fd, attr = end._pending_state()
    if isinstance(end, Consumer):
        attr = reduction.DupFd(attr)    # the claim socket
    return _rebuild_end, (isinstance(end, Producer), reduction.DupFd(fd), attr)


def _rebuild_end(producer, dupfd, attr):
    fd = dupfd.detach()
    if not producer:
        return _zchan.recv_peer(Consumer, fd, True, claim=attr.detach())
    pool_size, max_msg, ring_entries, mode, flags, backend, max_prod, max_cons = attr
    return _zchan.create(Producer, None, pool_size=pool_size, max_msg=max_msg,
                         ring_entries=ring_entries, mode=mode,
                         busy_poll=bool(flags & 1), backend=_BACKENDS[backend],
                         pending=fd, max_producers=max(max_prod, 1),
                         max_consumers=max(max_cons, 1), broadcast=bool(flags & 2))


# The fork habit with a used end: Process(target, args=(end,)).start(),
# then the parent's end.close().  A copy inherited through fork() is the
# child's only from its first call (libzchan), so a parent that closed
# first ended the stream under the child.  A used end in the args of a
# fork-started Process is taken over by the child at once, as a pipe's
# descriptor is, and the parent's close() of it waits (bounded) until the
# child has it.  (spawn and forkserver refuse a used end at start().)
_LEND_WAIT = 30.0                        # seconds a close() waits for the child
_lending = None                          # (ends, read fd, write fd) across fork()
_lent = weakref.WeakKeyDictionary()      # end -> _Handover, in the parent


class _Handover:
    """A pipe whose write side only the child holds: EOF once the child
    took the ends over (or died)."""

    def __init__(self, fd):
        self.fd = fd

    def wait(self):
        import select
        left = _LEND_WAIT
        while left > 0 and self.fd >= 0:
            if select.select([self.fd], [], [], min(left, 0.05))[0]:
                break
            left -= 0.05

    def __del__(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _fork_args():
    """The used ends in the args of the Process that multiprocessing's
    fork start method is starting, if this fork() is that."""
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_name == "_launch" and "process_obj" in f.f_locals and \
                f.f_code.co_filename.endswith("popen_fork.py"):
            obj = f.f_locals["process_obj"]
            args = list(getattr(obj, "_args", ())) + list(getattr(obj, "_kwargs", {}).values())
            return [a for a in args if isinstance(a, (Producer, Consumer))
                    and not a.pending and not a.closed]
        f = f.f_back
    return []


def _before_fork():
    global _lending
    _lending = None
    try:
        ends = _fork_args()
    except Exception:                   # a shallow stack, a stripped Process
        ends = []
    if ends:
        r, w = os.pipe()
        _lending = (ends, r, w)


def _after_fork_parent():
    global _lending
    if _lending:
        ends, r, w = _lending
        _lending = None
        os.close(w)
        h = _Handover(r)
        for e in ends:
            _lent[e] = h


def _after_fork_child():
    global _lending
    _lent.clear()
    if _lending:
        ends, r, w = _lending
        _lending = None
        os.close(r)
        for e in ends:
            try:
                e.poll_mask()           # the first call: this process uses it
            except Exception:
                pass                    # its first real call will say
        os.close(w)


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                    after_in_child=_after_fork_child)


def _register_reducers():
    from multiprocessing import reduction
    reduction.register(Producer, _reduce_end)
    reduction.register(Consumer, _reduce_end)


_register_reducers()
