# SPDX-License-Identifier: MIT OR LGPL-2.1
"""zchan.futures: concurrent.futures.ProcessPoolExecutor over zchan.

    from zchan.futures import ProcessPoolExecutor    # one import changed

    with ProcessPoolExecutor(4) as ex:
        for a in ex.map(make_big_array, range(100)):   # read-only, in the pool
            total += a.sum()

The API and semantics are concurrent.futures.ProcessPoolExecutor's
(submit, map with chunksize, shutdown(wait, cancel_futures), initializer,
initargs, mp_context, max_workers, BrokenProcessPool when a worker dies).
Calls and results travel with pickle protocol 5, their out-of-band
buffers (numpy arrays, PickleBuffer) copied once into a zchan pool
instead of through a pipe: each worker has a job channel from the parent
and a result channel to it.

Results: the arrays in a result are read-only views of the result
channel's pool (no copy), alive as long as they are: the pool space comes
back when the result, every array in it and the Future holding it are
gone.  Results the caller keeps never stall a worker: when they pin its
pool, the worker moves to a fresh channel and the old pool stays mapped
until the last array in it is gone; a result above the channel's max_msg
makes the worker move to a channel large enough for it.  copy=True:
writable copies of the results' arrays instead.  Arguments arrive in the
worker as private writable copies, as with concurrent.futures.  See
Documentation/python.rst, "zchan.futures".
"""

import errno
import itertools
import os
import pickle
import select
import socket
import threading
import time
import traceback
import weakref
from collections import deque
from concurrent.futures import _base
from concurrent.futures.process import (BrokenProcessPool, _chain_from_iterable_of_lists,
                                        _ExceptionWithTraceback, _get_chunks,
                                        _process_chunk)
from functools import partial

from . import _geometry, _zchan, create, pipe, recv_peer

__all__ = ["ProcessPoolExecutor", "BrokenProcessPool"]

# Result channels: big enough for the large arrays this is for; the pool
# is memory the workers touch as they write it (memfd, or the module's
# pages), not reserved up front.  A larger result grows its channel.
RESULT_POOL_SIZE = 64 << 20
RESULT_MAX_MSG = 8 << 20
# Job channels: a call and its arguments, up to two queued per worker;
# larger ones go in pieces, copied (the worker copies its arguments anyway).
JOB_POOL_SIZE = 8 << 20
JOB_MAX_MSG = 2 << 20
# Jobs a worker may have sent to it at once: the one it runs and the next,
# so that it never waits for the parent between two calls.
_PER_WORKER = 2
# A worker whose results' pool the parent's held results have pinned for
# this long moves to a fresh channel.  Results waiting in futures for a
# caller that takes them (map() running ahead of its loop) are let go
# of sooner than that; a fresh pool costs page faults, so waiting is
# the cheaper bet until it is clearly lost.
_STUCK_S = 0.2
# work id -1: a job "move to a fresh result channel", and the result that
# says the worker did (its consumer end waits on the control socket)
_SWITCH = -1
_HEADER_ROOM = 4096                     # zchan's object header, and more

_BROKEN = ("A process in the process pool was terminated abruptly while "
           "the future was running or pending.")
_BROKEN_POOL = "A child process terminated abruptly, the process pool is not usable anymore"


class _Pieces:
    """The head of an object too large for one message: its pickle and
    out-of-band buffers follow as plain messages of at most max_msg."""

    def __init__(self, sizes):
        self.sizes = sizes


def _send(prod, obj):
    """send_obj(), or, for an object above the channel's max_msg, the
    object in pieces (copied on both sides): for jobs."""
    try:
        prod.send_obj(obj)
        return
    except OSError as e:
        if e.errno != errno.EMSGSIZE:
            raise
    bufs = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)
    parts = [memoryview(data)] + [b.raw() for b in bufs]
    prod.send_obj(_Pieces([p.nbytes for p in parts]))
    step = prod.max_msg - _HEADER_ROOM
    for p in parts:
        for at in range(0, p.nbytes, step):
            prod.send(p[at:at + step])


def _recv(cons, timeout=None, copy=False):
    """An object of _send(): copy as recv_obj()'s."""
    obj = cons.recv_obj(timeout=timeout, copy=copy)
    if type(obj) is not _Pieces:
        return obj
    parts = []
    for n in obj.sizes:
        buf = bytearray(n)
        at = 0
        while at < n:
            at += cons.recv_bytes_into(buf, at)
        parts.append(buf)
    return pickle.loads(parts[0], buffers=parts[1:])


def _switch(results, ctl, max_msg):
    """Move to a fresh result channel: its consumer end over the control
    socket, then the _SWITCH result in the old channel, which tells the
    parent to take it.  (Results the parent holds pin the old pool, or a
    result needs a larger max_msg.)"""
    pool = max(results.pool_size, 2 * (max_msg + _HEADER_ROOM))
    new = create(pool_size=pool, max_msg=max_msg, backend=results.backend)
    try:
        new.send_peer(ctl)
        results.send_obj((_SWITCH, True, None))
    except BaseException:
        new.close()
        raise
    _close(results)
    return new


def _send_result(results, ctl, r):
    """The result (work id, ok, value) to the parent, in a channel large
    enough for it; returns the channel to use from now on."""
    try:
        results.send_obj(r)
        return results
    except OSError as e:
        if e.errno != errno.EMSGSIZE:
            raise
    bufs = []
    n = len(pickle.dumps(r, protocol=5, buffer_callback=bufs.append))
    n += sum(b.raw().nbytes + 64 for b in bufs) + _HEADER_ROOM
    results = _switch(results, ctl, n)
    results.send_obj(r)
    return results


def _worker(jobs, results, ctl, initializer, initargs):
    """A worker process: run each job of the job channel, send its
    result, until the parent closes the channel (or is gone)."""
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            _base.LOGGER.critical("Exception in initializer:", exc_info=True)
            return                      # the parent sees the pool broken
    try:
        while True:
            try:
                job = _recv(jobs, copy=True)
            except (BrokenPipeError, EOFError):
                return
            work_id, fn, args, kwargs = job
            del job
            if work_id == _SWITCH:
                results = _switch(results, ctl, results.max_msg - _HEADER_ROOM)
                continue
            try:
                r = (work_id, True, fn(*args, **kwargs))
            except BaseException as e:
                r = (work_id, False, _ExceptionWithTraceback(e, e.__traceback__))
            del fn, args, kwargs
            try:
                results = _send_result(results, ctl, r)
            except BrokenPipeError:
                return
            except BaseException as e:  # the result does not pickle
                exc = _ExceptionWithTraceback(e, e.__traceback__)
                results = _send_result(results, ctl, (work_id, False, exc))
            del r
    finally:
        _close(jobs)
        _close(results)
        ctl.close()


class _Worker:
    __slots__ = ("proc", "jobs", "results", "ctl", "fd", "inflight", "closing",
                 "switching", "room", "stuck")

    def __init__(self, proc, jobs, results, ctl, room):
        self.proc = proc
        self.jobs = jobs                # Producer: parent -> worker
        self.results = results          # Consumer: worker -> parent
        self.ctl = ctl                  # socket: new result channels come here
        self.fd = results.fileno()
        self.inflight = deque()         # work ids sent, oldest first
        self.closing = False            # its job channel was closed
        self.switching = False          # asked to move to a fresh channel
        self.room = room                # (pool_size, max_msg) of results
        self.stuck = None               # since when its pool has no room

    def can_take(self):
        """Room for one more job's result: in flight below _PER_WORKER,
        and the results' pool not pinned by what the caller holds (or a
        move to a fresh one asked: later jobs' results go there).  One
        max_msg spare: what the ring loses when a message wraps, and
        room for the _SWITCH result."""
        if len(self.inflight) >= _PER_WORKER:
            return False
        if self.switching:
            return True
        pool, max_msg = self.room
        return pool - self.results.pinned() >= (len(self.inflight) + 2) * max_msg


class _WorkItem:
    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future, fn, args, kwargs):
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs


_executors = weakref.WeakSet()
# The parent's ends of every worker's channels, and its wake pipes: a
# child forked later (a worker, or any fork) closes its copies, so that a
# worker sees the end of its job stream when the parent is gone.
_parent_ends = weakref.WeakSet()
_parent_socks = weakref.WeakSet()
_wake_fds = set()


def _close(end):
    """Close at once: zchan's close() keeps a pending end's socket while
    anything else references the end (a pickler might), and the
    executor's own references would keep it for ever."""
    _zchan.End.close(end)


def _after_fork_child():
    for end in list(_parent_ends):
        _close(end)
    _parent_ends.clear()
    for sock in list(_parent_socks):
        sock.close()
    _parent_socks.clear()
    for fd in _wake_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _wake_fds.clear()


os.register_at_fork(after_in_child=_after_fork_child)
_global_shutdown = False


def _python_exit():
    global _global_shutdown
    _global_shutdown = True
    for ex in list(_executors):
        ex.shutdown(wait=True)


# before the interpreter joins non-daemon threads, as concurrent.futures
threading._register_atexit(_python_exit)
_mp_exit_pid = None


def _register_mp_exit():
    """In a multiprocessing child, the interpreter's exit hooks do not
    run: multiprocessing's own exit joins the child's children (the
    workers, which would wait for jobs for ever) after running its
    finalizers.  Shut down there too."""
    global _mp_exit_pid
    if _mp_exit_pid != os.getpid():
        from multiprocessing import util
        util.Finalize(None, _python_exit, exitpriority=10)
        _mp_exit_pid = os.getpid()


class ProcessPoolExecutor(_base.Executor):
    """concurrent.futures.ProcessPoolExecutor with calls and results
    through zchan channels (see the module's help).

    max_workers, mp_context, initializer, initargs: as concurrent.futures'.
    pool_size, max_msg: each worker's result channel (64 MiB, 16 MiB):
    a result above max_msg travels in pieces, copied.  copy: True for
    writable copies of the results' arrays instead of read-only views of
    the pool.  backend: zchan.create()'s.
    """

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(),
                 *, max_tasks_per_child=None, pool_size=RESULT_POOL_SIZE,
                 max_msg=RESULT_MAX_MSG, copy=False, backend="auto"):
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            raise NotImplementedError("zchan.futures: max_tasks_per_child is not "
                                      "supported yet")
        if mp_context is None:
            import multiprocessing
            mp_context = multiprocessing.get_context()
        self._max_workers = max_workers
        self._mp_context = mp_context
        self._initializer = initializer
        self._initargs = initargs
        self._result_args = dict(pool_size=pool_size, max_msg=max_msg, backend=backend)
        self._job_args = dict(pool_size=JOB_POOL_SIZE, max_msg=JOB_MAX_MSG, backend=backend)
        self._copy = bool(copy)
        self._lock = threading.Lock()
        self._items = {}                # work id -> _WorkItem, until done
        self._queued = deque()          # work ids not sent to a worker yet
        self._ids = itertools.count()
        self._workers = []
        self._thread = None
        self._wake_r = self._wake_w = -1
        self._shutdown = False
        self._cancel_pending = False
        self._broken = False
        self._poll_ms = None            # the manager's next poll() timeout

    # -- the caller's side ---------------------------------------------

    def submit(self, fn, /, *args, **kwargs):
        with self._lock:
            if self._broken:
                raise BrokenProcessPool(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _global_shutdown:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            f = _base.Future()
            work_id = next(self._ids)
            self._items[work_id] = _WorkItem(f, fn, args, kwargs)
            self._queued.append(work_id)
            if self._thread is None:
                self._start()
            self._wake()
            return f
    submit.__doc__ = _base.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Returns an iterator equivalent to map(fn, iter), as
        concurrent.futures.ProcessPoolExecutor.map(): chunksize calls
        travel in one job and their results in one message."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        results = super().map(partial(_process_chunk, fn),
                              _get_chunks(*iterables, chunksize=chunksize),
                              timeout=timeout)
        return _chain_from_iterable_of_lists(results)

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._cancel_pending = self._cancel_pending or cancel_futures
            self._shutdown = True
            thread = self._thread
            if thread is not None:
                self._wake()
        if thread is not None and wait:
            thread.join()
    shutdown.__doc__ = _base.Executor.shutdown.__doc__

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass                        # full: it wakes anyway; closed: done

    def _start(self):
        """The workers, then the thread that feeds them (no thread runs
        while fork() starts workers)."""
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _wake_fds.update((self._wake_r, self._wake_w))
        try:
            for _ in range(self._max_workers):
                self._workers.append(self._spawn())
        except BaseException:
            for w in self._workers:
                w.proc.terminate()
            raise
        _executors.add(self)
        _register_mp_exit()
        self._thread = threading.Thread(target=self._manage, name="zchan.futures manager",
                                        daemon=True)
        self._thread.start()

    def _spawn(self):
        job_r, job_w = pipe(**self._job_args)
        res_r, res_w = pipe(**self._result_args)
        ctl, ctl_worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        _parent_ends.update((job_w, res_r))
        _parent_socks.add(ctl)
        p = self._mp_context.Process(target=_worker, args=(
            job_r, res_w, ctl_worker, self._initializer, self._initargs))
        try:
            p.start()
        finally:
            job_r.close()
            res_w.close()
            ctl_worker.close()
        # the sizes of a pending consumer would wait for the worker
        sizes = _geometry(self._result_args)
        room = (sizes["pool_size"], sizes["max_msg"] or sizes["pool_size"] // 4)
        return _Worker(p, job_w, res_r, ctl, room)

    # -- the manager thread ----------------------------------------------

    def _manage(self):
        try:
            while True:
                self._dispatch()
                if self._finished():
                    break
                self._wait()
        except BaseException as e:      # a bug here must not hang the callers
            self._break("zchan.futures manager thread failed: %r" % (e,),
                        traceback.format_exc())
        finally:
            self._cleanup()

    def _dispatch(self):
        """Send queued jobs to workers with room: an idle worker first,
        then one running a job (a job in pieces waits for an idle one)."""
        while not self._broken:
            with self._lock:
                if self._cancel_pending:
                    for wid in list(self._queued):
                        if self._items[wid].future.cancel():
                            del self._items[wid]
                            self._queued.remove(wid)
                if not self._queued:
                    return
                live = [w for w in self._workers if not w.closing]
                if not live:
                    return
                ready = [w for w in live if w.can_take()]
                if not ready:
                    self._ask_switch(live)
                    return
                for w in ready:
                    w.stuck = None
                worker = min(ready, key=lambda w: len(w.inflight))
                work_id = self._queued.popleft()
                item = self._items[work_id]
            if not item.future.running() and not item.future.set_running_or_notify_cancel():
                with self._lock:
                    del self._items[work_id]
                continue
            job = (work_id, item.fn, item.args, item.kwargs)
            del item
            try:
                if worker.inflight:
                    worker.jobs.send_obj(job)
                else:
                    _send(worker.jobs, job)
            except (BrokenPipeError, ConnectionError):
                self._dead(worker)
                return
            except OSError as e:
                if e.errno != errno.EMSGSIZE:
                    self._done(work_id, False, e)
                    continue
                with self._lock:        # in pieces: to the next idle worker
                    self._queued.appendleft(work_id)
                return
            except BaseException as e:  # as concurrent.futures: that future fails
                self._done(work_id, False, e)
                continue
            worker.inflight.append(work_id)

    def _ask_switch(self, live):
        """No worker has room for a result: results the parent holds pin
        their pools.  A worker whose pool stays pinned for _STUCK_S
        moves to a fresh channel; until then the manager looks again
        every few milliseconds (a release does not wake it)."""
        now = time.monotonic()
        self._poll_ms = None
        for w in live:
            if w.switching or len(w.inflight) >= _PER_WORKER:
                w.stuck = None
                continue
            if w.stuck is None:
                w.stuck = now
            if now - w.stuck < _STUCK_S:
                left = int((w.stuck + _STUCK_S - now) * 1000) + 1
                self._poll_ms = min(self._poll_ms or 20, left, 20)
                continue
            try:
                w.jobs.send_obj((_SWITCH, None, None, None), timeout=0)
            except BlockingIOError:
                self._poll_ms = 20
                continue                # the next round
            except (BrokenPipeError, ConnectionError):
                continue                # its sentinel says it
            w.switching = True
            w.stuck = None

    def _switched(self, w):
        """The worker moved to a new result channel: take its consumer
        end; the old one is closed (its pool stays mapped while the
        caller's arrays use it)."""
        new = recv_peer(w.ctl, timeout=60)
        _close(w.results)
        w.results = new
        w.fd = new.fileno()
        w.room = (new.pool_size, new.max_msg)
        w.switching = False

    def _wait(self):
        fds = {self._wake_r: None}
        for w in self._workers:
            fds[w.fd] = w
            fds[w.proc.sentinel] = w
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        dead = []
        timeout, self._poll_ms = self._poll_ms, None
        for fd, _ in poller.poll(timeout):
            w = fds[fd]
            if w is None:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            elif fd == w.fd:
                if not self._drain(w):
                    dead.append(w)
            else:
                dead.append(w)
        for w in dict.fromkeys(dead):
            self._dead(w)

    def _drain(self, w):
        """Take every result the worker committed; False once its stream
        ended."""
        while True:
            try:
                r = _recv(w.results, timeout=0, copy=self._copy)
            except BlockingIOError:
                return True
            except (BrokenPipeError, EOFError):
                return False
            work_id = r[0]
            if work_id == _SWITCH:
                del r
                self._switched(w)
                continue
            try:
                w.inflight.remove(work_id)
            except ValueError:
                pass
            self._done(*r)
            del r

    def _done(self, work_id, ok, value):
        with self._lock:
            item = self._items.pop(work_id, None)
        if item is None:
            return
        if ok:
            item.future.set_result(value)
        else:
            item.future.set_exception(value)

    def _dead(self, w):
        """A worker's process or result stream ended: what it committed is
        delivered; if it was not told to go, the pool is broken."""
        if w not in self._workers:
            return
        self._drain(w)
        if w.closing:                   # told to go, nothing in flight
            w.proc.join()
            self._workers.remove(w)
            _close(w.jobs)
            _close(w.results)
            w.ctl.close()
            return
        w.proc.join(1)
        code = w.proc.exitcode
        if code is None:
            cause = "worker process %d closed its result channel" % w.proc.pid
        elif code < 0:
            cause = "worker process %d was killed by signal %d" % (w.proc.pid, -code)
        else:
            cause = "worker process %d exited with status %d" % (w.proc.pid, code)
        self._break(_BROKEN_POOL, [cause + "\n"])

    def _break(self, why, cause=None):
        with self._lock:
            if self._broken:
                return
            self._broken = why
            self._shutdown = True
            items, self._items = self._items, {}
            self._queued.clear()
        bpe = BrokenProcessPool(_BROKEN)
        if cause:
            from concurrent.futures.process import _RemoteTraceback
            bpe.__cause__ = _RemoteTraceback("\n'''\n%s'''" % "".join(cause))
        for item in items.values():
            if not item.future.done():
                item.future.set_exception(bpe)
        del items
        for w in self._workers:
            w.proc.terminate()

    def _finished(self):
        """Shutting down: close each idle worker's job channel (it exits);
        True once every worker is gone."""
        with self._lock:
            if not self._shutdown:
                return False
            if self._broken:
                return True
            idle = not self._queued
        for w in self._workers:
            if idle and not w.inflight and not w.closing:
                w.closing = True
                _close(w.jobs)
        return not self._workers

    def _cleanup(self):
        for w in self._workers:
            if self._broken:
                w.proc.terminate()
            w.proc.join()
            _close(w.jobs)
            _close(w.results)
            w.ctl.close()
        self._workers = []
        with self._lock:
            _wake_fds.difference_update((self._wake_r, self._wake_w))
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_w = -1
        _executors.discard(self)

