# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Dask comm backend ``zchan+tcp://``: zchan between processes of one host,
TCP between hosts.

Registered with Dask through the entry point group
``distributed.comm.backends`` (python/pyproject.toml), so that
``LocalCluster(protocol="zchan+tcp://")``, ``dask-scheduler --protocol
zchan+tcp`` and ``dask-worker zchan+tcp://host:port`` find it.

A listener listens on TCP as ``tcp://`` does.  Each connection starts on
TCP with a handshake of its own, before Dask's: both ends tell their boot
id, IPC and network namespaces and uid.  When they share all three and
the peer's uid is allowed, the connector joins the listener's abstract
unix socket (it lives in the network namespace), the listener checks the
connector's uid with SO_PEERCRED, each end creates a channel and passes
its consumer end to the other with send_peer()/recv_peer(), and the TCP
socket is closed: the comm is a pair of zchan channels (``comm.path ==
"zchan"``).  Otherwise the comm stays the TCP comm of ``tcp://``
(``comm.path == "tcp"``).  See Documentation/dask.rst.
"""

import asyncio
import json
import logging
import os
import secrets
import socket
import struct

import dask
from dask.utils import parse_bytes, parse_timedelta
from tornado import gen

from distributed.comm.addressing import unparse_host_port
from distributed.comm.core import Comm, CommClosedError
from distributed.comm.tcp import (TCP, BaseTCPBackend, BaseTCPConnector,
                                  BaseTCPListener, get_stream_address)
from distributed.comm.utils import from_frames, host_array, to_frames
from distributed.protocol.utils import pack_frames_prelude, unpack_frames
from distributed.utils import ensure_memoryview, nbytes

import zchan

__all__ = ["ZchanTCPBackend", "ZchanComm", "TCPPathComm"]

logger = logging.getLogger(__name__)

PREFIX = "zchan+tcp://"
# the handshake's messages on TCP: magic, JSON length, JSON
_HELLO = struct.Struct("!4sI")
_HELLO_MAGIC = b"ZCD1"
_HELLO_MAX = 4096
_TOKEN_BYTES = 16
_LENGTH = struct.Struct("Q")        # a Dask message's byte count, as tcp://'s


def _config(key, default):
    return dask.config.get("distributed.comm.zchan." + key, default=default)


def _pool_sizes():
    """(pool_size, max_msg) of the channels a connection creates."""
    pool = parse_bytes(_config("pool-size", "32 MiB"))
    msg = min(parse_bytes(_config("message-size", "4 MiB")), pool // 2)
    return pool, msg


def _allowed_uids():
    """The uids whose processes may share a connection's channels: this
    process's own, and those of distributed.comm.zchan.allowed-uids."""
    return {os.geteuid(), *(int(u) for u in _config("allowed-uids", []))}


def _ns_id(name):
    st = os.stat("/proc/self/ns/" + name)
    return "%d:%d" % (st.st_dev, st.st_ino)


def _host_identity():
    """What two ends compare to know that they share a host."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
        return {"boot_id": boot_id, "ipc_ns": _ns_id("ipc"), "net_ns": _ns_id("net"),
                "uid": os.geteuid(), "pid": os.getpid()}
    except OSError:
        return {}


def _same_host(mine, theirs):
    """Why a connection must take TCP, or None when it may take zchan."""
    if not mine or not _config("enabled", True):
        return "zchan disabled here"
    if not theirs.get("zchan"):
        return "zchan disabled at the peer"
    for key, what in (("boot_id", "another host (boot id)"),
                      ("ipc_ns", "another IPC namespace"),
                      ("net_ns", "another network namespace")):
        if theirs.get(key) != mine[key]:
            return what
    if theirs.get("uid") not in _allowed_uids():
        return "uid %s not allowed" % theirs.get("uid")
    return None


async def _send_json(stream, obj):
    raw = json.dumps(obj).encode()
    await stream.write(_HELLO.pack(_HELLO_MAGIC, len(raw)) + raw)


async def _recv_json(stream):
    magic, n = _HELLO.unpack(await stream.read_bytes(_HELLO.size))
    if magic != _HELLO_MAGIC or n > _HELLO_MAX:
        raise CommClosedError("zchan+tcp: the peer does not speak zchan+tcp")
    obj = json.loads(await stream.read_bytes(n))
    if not isinstance(obj, dict):
        raise CommClosedError("zchan+tcp: bad handshake from the peer")
    return obj


def _peer_uid(sock):
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


async def _readable(sock):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(sock, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(sock)


async def _swap_ends(sock):
    """Create this end's channel, send its consumer end over the unix
    socket and receive the peer's: (producer, consumer)."""
    if _peer_uid(sock) not in _allowed_uids():
        raise CommClosedError("zchan+tcp: peer uid %d not allowed" % _peer_uid(sock))
    pool, msg = _pool_sizes()
    prod = zchan.create(pool_size=pool, max_msg=msg,
                        backend=_config("backend", "auto"))
    try:
        prod.send_peer(sock)        # one small message: it fits in the buffer
        while True:
            try:
                return prod, zchan.recv_peer(sock, timeout=0)
            except BlockingIOError:
                await _readable(sock)
    except BaseException:
        prod.close()
        raise


class _Rendezvous:
    """A listener's abstract unix socket, where connectors that passed the
    TCP handshake come to swap channel ends, each with its token."""

    def __init__(self):
        self.name = "zchan-dask-%d-%s" % (os.getpid(), secrets.token_hex(8))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK)
        try:
            self.sock.bind("\0" + self.name)
            self.sock.listen(128)
        except BaseException:
            self.sock.close()
            raise
        self.pending = {}           # token -> future of the unix socket
        self.task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self):
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self.sock)
            loop.create_task(self._claim(conn))

    async def _claim(self, conn):
        loop = asyncio.get_running_loop()
        try:
            token = await asyncio.wait_for(loop.sock_recv(conn, 2 * _TOKEN_BYTES + 1), 10)
            fut = self.pending.get(token.decode("ascii", "replace"))
            if fut is not None and not fut.done():
                fut.set_result(conn)
                return
        except (OSError, asyncio.TimeoutError):
            pass
        conn.close()

    def expect(self):
        token = secrets.token_hex(_TOKEN_BYTES)
        self.pending[token] = asyncio.get_running_loop().create_future()
        return token

    async def claim(self, token):
        return await self.pending[token]

    def forget(self, token):
        fut = self.pending.pop(token, None)
        if fut is not None and fut.done() and not fut.cancelled():
            fut.result().close()

    def close(self):
        self.task.cancel()
        self.sock.close()
        for token in list(self.pending):
            self.forget(token)


def _zchan_comm(tcp, ends):
    comm = ZchanComm(*ends, tcp._local_addr, tcp._peer_addr, tcp.deserialize)
    logger.debug("zchan+tcp: %s <-> %s takes zchan (%s backend, %d-byte pools)",
                 comm.local_address, comm.peer_address, comm.backend, ends[0].pool_size)
    tcp.abort()                     # the connection lives on in the channels
    return comm


def _tcp_comm(tcp, reason):
    tcp.path_reason = reason
    logger.debug("zchan+tcp: %s <-> %s takes TCP: %s", tcp.local_address,
                 tcp.peer_address, reason)
    return tcp


class TCPPathComm(TCP):
    """A ``zchan+tcp://`` connection that stayed on TCP (another host, or
    no zchan): Dask's own TCP comm."""

    path = "tcp"
    path_reason = None

    @property
    def extra_info(self):
        return {**self._extra, "path": self.path, "path_reason": self.path_reason}


class ZchanComm(Comm):
    """A ``zchan+tcp://`` connection between two processes of one host: a
    channel each way.

    A message is tcp://'s byte stream - its length, Dask's frame prelude,
    the frames - cut into messages of up to max_msg bytes, each written
    in a loan: the frames Dask's to_frames() returns are copied once, into
    the pool, without another pickling.  The reader copies the stream out
    into one buffer it owns (host_array(), as tcp://) and releases each
    message at once; see Documentation/dask.rst for why it copies.
    """

    path = "zchan"

    def __init__(self, producer, consumer, local_addr, peer_addr, deserialize=True):
        self._closed = False
        super().__init__(deserialize=deserialize)
        self._prod = producer
        self._cons = consumer
        self._local_addr = local_addr
        self._peer_addr = peer_addr
        self._waits = {}            # future -> (loop, fd, add_writer was used)
        self.backend = producer.backend

    @staticmethod
    def handshake_info():
        # compressing costs more than moving the bytes through the pool:
        # both ends say "none", so Dask's handshake turns it off
        return {**Comm.handshake_info(), "compression": None}

    @property
    def local_address(self):
        return self._local_addr

    @property
    def peer_address(self):
        return self._peer_addr

    @property
    def extra_info(self):
        return {"path": self.path, "backend": self.backend,
                "pool_size": self._prod.pool_size if not self._closed else None}

    def stats(self):
        """The counters of both channels: {"send": ..., "recv": ...}."""
        if self._closed:
            raise CommClosedError("in %r: closed" % self)
        return {"send": self._prod.stats(), "recv": self._cons.stats()}

    async def _wait(self, end):
        """Sleep on the event loop until end's descriptor is ready."""
        if self._closed:
            raise CommClosedError("in %r: closed" % self)
        loop = asyncio.get_running_loop()
        fd = end.fileno()
        # a kernel-backend producer is writable when room frees up; the
        # memfd backend's ends signal everything as readable
        writer = end is self._prod and self.backend == "kernel"
        fut = loop.create_future()

        def wake():
            if not fut.done():
                fut.set_result(None)

        (loop.add_writer if writer else loop.add_reader)(fd, wake)
        self._waits[fut] = (loop, fd, writer)
        try:
            await fut
        finally:
            self._unwait(fut)
        if self._closed:
            raise CommClosedError("in %r: closed" % self)

    def _unwait(self, fut):
        got = self._waits.pop(fut, None)
        if got is not None:
            loop, fd, writer = got
            (loop.remove_writer if writer else loop.remove_reader)(fd)
        if not fut.done():
            fut.set_result(None)

    def _broken(self, exc):
        self.abort()
        if isinstance(exc, CommClosedError):
            return exc
        return CommClosedError("in %r: %s: %s" % (self, type(exc).__name__, exc))

    async def _recv(self):
        while True:
            if self._closed:
                raise CommClosedError("in %r: closed" % self)
            try:
                return self._cons.recv_zc(timeout=0)
            except BlockingIOError:
                await self._wait(self._cons)

    async def read(self, deserializers=None):
        if self._closed:
            raise CommClosedError("in %r: closed" % self)
        try:
            buf = None
            at = 0
            while buf is None or at < len(buf):
                with await self._recv() as msg, memoryview(msg) as view:
                    start = 0
                    if buf is None:
                        if len(view) < _LENGTH.size:
                            raise CommClosedError("zchan+tcp: truncated message")
                        (total,) = _LENGTH.unpack_from(view)
                        buf = host_array(total)
                        start = _LENGTH.size
                    n = len(view) - start
                    if at + n > len(buf):
                        raise CommClosedError("zchan+tcp: message longer than it said")
                    buf[at:at + n] = view[start:]
                    at += n
        except BaseException as e:
            # the stream's place is lost: nothing can be read after this
            if isinstance(e, (OSError, ValueError, CommClosedError)):
                raise self._broken(e) from e
            self.abort()
            raise
        try:
            frames = unpack_frames(buf)
            return await from_frames(frames, deserialize=self.deserialize,
                                     deserializers=deserializers,
                                     allow_offload=self.allow_offload)
        except EOFError:
            self.abort()
            raise CommClosedError("aborted stream on truncated data")

    async def _loan(self, n):
        while True:
            if self._closed:
                raise CommClosedError("in %r: closed" % self)
            try:
                return self._prod.loan(n, timeout=0)
            except BlockingIOError:
                await self._wait(self._prod)

    async def write(self, msg, serializers=None, on_error="message"):
        if self._closed:
            raise CommClosedError("in %r: closed" % self)
        # no frame_split_size: frames are streamed whatever their size, and
        # shards would cost the reader a join (merge_and_deserialize)
        frames = await to_frames(
            msg, allow_offload=self.allow_offload, serializers=serializers,
            on_error=on_error,
            context={"sender": self.local_info, "recipient": self.remote_info,
                     **self.handshake_options})
        frames = [ensure_memoryview(f) for f in frames]
        prelude = pack_frames_prelude(frames)
        total = nbytes(prelude) + sum(f.nbytes for f in frames)
        parts = [memoryview(_LENGTH.pack(total) + prelude), *frames]
        left = _LENGTH.size + total
        chunk = self._prod.max_msg
        try:
            part = 0
            off = 0
            while left:
                n = min(left, chunk)
                loan = await self._loan(n)
                with memoryview(loan) as view:
                    at = 0
                    while at < n:
                        src = parts[part]
                        k = min(n - at, src.nbytes - off)
                        view[at:at + k] = src[off:off + k]
                        at += k
                        off += k
                        if off == src.nbytes:
                            part += 1
                            off = 0
                loan.commit()
                left -= n
                # skip empty frames for the next loan
                while part < len(parts) and parts[part].nbytes == 0:
                    part += 1
        except BaseException as e:
            if isinstance(e, (OSError, ValueError, CommClosedError)):
                raise self._broken(e) from e
            self.abort()
            raise
        return _LENGTH.size + total

    @gen.coroutine
    def close(self):
        # a coroutine that does its work when called (like tcp://'s): what
        # write() committed is in the pool already, nothing to flush
        self.abort()

    def abort(self):
        if self._closed:
            return
        self._closed = True
        for fut in list(self._waits):
            self._unwait(fut)
        self._prod.close()
        self._cons.close()

    def closed(self):
        if not self._closed:
            # the peer is gone (closed, or its process died) and there is
            # nothing left to read: as tcp://'s stream close callback
            hup = zchan.POLLHUP | zchan.POLLERR
            try:
                if (self._prod.poll_mask() & hup or self._cons.poll_mask() & hup) \
                        and not self._cons.poll_mask() & zchan.POLLIN:
                    self.abort()
            except ValueError:
                self.abort()
        return self._closed


class ZchanConnector(BaseTCPConnector):
    prefix = PREFIX
    comm_class = TCPPathComm
    encrypted = False

    def _get_connect_args(self, **connection_args):
        return {}

    async def connect(self, address, deserialize=True, **connection_args):
        tcp = await super().connect(address, deserialize, **connection_args)
        try:
            return await self._handshake(tcp)
        except BaseException as e:
            tcp.abort()
            if isinstance(e, (OSError, ValueError, KeyError, TypeError)) and \
                    not isinstance(e, CommClosedError):
                raise CommClosedError("zchan+tcp: handshake with %s failed: %s"
                                      % (address, e)) from e
            raise

    async def _handshake(self, tcp):
        stream = tcp.stream
        mine = _host_identity()
        await _send_json(stream, {**mine, "zchan": bool(mine) and _config("enabled", True)})
        theirs = await _recv_json(stream)
        reason = _same_host(mine, theirs)
        if reason is None and theirs.get("path") != "zchan":
            reason = theirs.get("reason") or "refused by the listener"
        sock = None
        if reason is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK)
            try:
                await asyncio.get_running_loop().sock_connect(sock, "\0" + str(theirs["unix"]))
            except OSError as e:
                sock.close()
                sock = None
                reason = "cannot reach the listener's unix socket: %s" % e
        await _send_json(stream, {"path": "tcp" if reason else "zchan"})
        if reason:
            return _tcp_comm(tcp, reason)
        with sock:
            await asyncio.get_running_loop().sock_sendall(sock, str(theirs["token"]).encode())
            ends = await _swap_ends(sock)
        return _zchan_comm(tcp, ends)


class ZchanListener(BaseTCPListener):
    prefix = PREFIX
    comm_class = TCPPathComm
    encrypted = False

    def _get_server_args(self, **connection_args):
        return {}

    async def _prepare_stream(self, stream, address):
        return stream

    async def start(self):
        await super().start()
        self._rendezvous = None
        if _config("enabled", True):
            try:
                self._rendezvous = _Rendezvous()
            except OSError as e:
                logger.info("zchan+tcp: no unix socket (%s): every connection takes TCP", e)

    def stop(self):
        super().stop()
        rendezvous, self._rendezvous = getattr(self, "_rendezvous", None), None
        if rendezvous is not None:
            rendezvous.close()

    async def _handle_stream(self, stream, address):
        # BaseTCPListener's, with the zchan handshake before Dask's
        address = self.prefix + unparse_host_port(*address[:2])
        tcp = self.comm_class(stream, self.prefix + get_stream_address(stream),
                              address, self.deserialize)
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"),
                                  default="seconds")
        try:
            comm = await asyncio.wait_for(self._handshake(tcp), timeout)
        except Exception as e:
            tcp.abort()
            logger.info("zchan+tcp: handshake with %s failed: %s: %s", address,
                        type(e).__name__, e)
            return
        comm.allow_offload = self.allow_offload
        try:
            await self.on_connection(comm)
        except CommClosedError:
            logger.info("Connection from %s closed before handshake completed", address)
            return
        await self.comm_handler(comm)

    async def _handshake(self, tcp):
        stream = tcp.stream
        theirs = await _recv_json(stream)
        mine = _host_identity()
        reason = _same_host(mine, theirs)
        if reason is None and self._rendezvous is None:
            reason = "no unix socket at the listener"
        token = None
        reply = {**mine, "zchan": reason is None, "path": "tcp" if reason else "zchan",
                 "reason": reason}
        if reason is None:
            token = self._rendezvous.expect()
            reply.update(unix=self._rendezvous.name, token=token)
        try:
            await _send_json(stream, reply)
            decision = await _recv_json(stream)
            if reason is None and decision.get("path") != "zchan":
                reason = "the connector took TCP"
            if reason:
                return _tcp_comm(tcp, reason)
            with await self._rendezvous.claim(token) as sock:
                ends = await _swap_ends(sock)
            return _zchan_comm(tcp, ends)
        finally:
            if token is not None:
                self._rendezvous.forget(token)


class ZchanTCPBackend(BaseTCPBackend):
    """The ``zchan+tcp`` scheme: addresses as ``tcp://``'s."""

    _connector_class = ZchanConnector
    _listener_class = ZchanListener


def register():
    """Register the backend in this process without its entry point
    (a source tree that is not installed)."""
    from distributed.comm.registry import backends
    backends.setdefault("zchan+tcp", ZchanTCPBackend())

