# SPDX-License-Identifier: MIT OR LGPL-2.1
"""zchan.futures.ProcessPoolExecutor: concurrent.futures' API and
semantics, calls and results through zchan.  Every wait is bounded: a
hang fails, a worker's death must show as BrokenProcessPool."""
import concurrent.futures as cf
import gc
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import zchan
from zchan.futures import BrokenProcessPool, ProcessPoolExecutor

# As test_habits.py: in the guest (kernel backend) workers start with fork
# only; under emulation a spawned worker re-imports numpy for seconds.
IN_GUEST = os.environ.get("ZCHAN_TEST_BACKEND") == "kernel"
METHODS = ["fork"] if IN_GUEST else ["fork", "spawn", "forkserver"]
T = 60                                  # seconds any result may take


def square(x):
    return x * x


def add(x, y=0):
    return x + y


def full(i, n=1 << 17):
    return np.full(n, i, np.float64)


def fail(x):
    raise KeyError("no %r" % (x,))


def pid(_=None):
    return os.getpid()


def bump(a):
    a += 1                              # arguments are the worker's own
    return a


def die(sig=signal.SIGKILL):
    os.kill(os.getpid(), sig)
    time.sleep(60)


def exit_now(code):
    os._exit(code)


def sleep_then(x, secs):
    time.sleep(secs)
    return x


def unpicklable_result():
    return threading.Lock()


_state = []


def init(*args):
    _state.extend(args)


def get_state():
    return list(_state)


def init_fails():
    raise RuntimeError("initializer failed")


def executor(backend, method="fork", workers=2, **kw):
    return ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                               backend=backend, **kw)


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def maps():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


@pytest.mark.parametrize("method", METHODS)
def test_submit_map_chunksize(method, backend):
    with executor(backend, method) as ex:
        assert ex.submit(add, 2, y=3).result(T) == 5
        assert list(ex.map(square, range(200), timeout=T)) == [x * x for x in range(200)]
        assert list(ex.map(add, range(50), range(50), chunksize=7, timeout=T)) == \
            [2 * x for x in range(50)]
        assert list(ex.map(square, [], timeout=T)) == []
        with pytest.raises(ValueError):
            ex.map(square, range(3), chunksize=0)
        assert len(set(ex.map(pid, range(20), timeout=T))) >= 1


@pytest.mark.parametrize("method", METHODS)
def test_arrays_are_read_only_views_of_the_pool(method, backend):
    with executor(backend, method) as ex:
        for i, a in enumerate(ex.map(full, range(64), timeout=T)):
            assert a.shape == (1 << 17,) and a[0] == i and a[-1] == i
            assert not a.flags.writeable
            with pytest.raises(ValueError):
                a[0] = 0
        got = ex.submit(full, 7).result(T)
        assert got.sum() == 7 * (1 << 17) and not got.flags.writeable


def test_copy_true_gives_writable_arrays(backend):
    with executor(backend, copy=True) as ex:
        a = ex.submit(full, 3).result(T)
        assert a.flags.writeable
        a[0] = 1
        assert a[1] == 3


def test_arguments_are_private_copies(backend):
    src = np.arange(1000, dtype=np.int64)
    with executor(backend) as ex:
        got = ex.submit(bump, src).result(T)
    assert (got == np.arange(1, 1001)).all()
    assert (src == np.arange(1000)).all()


def test_exceptions_carry_the_remote_traceback(backend):
    with executor(backend) as ex:
        f = ex.submit(fail, 3)
        with pytest.raises(KeyError) as info:
            f.result(T)
        assert "fail" in str(info.value.__cause__)
        # the pool goes on
        assert ex.submit(square, 4).result(T) == 16
        it = ex.map(fail, [1], timeout=T)
        with pytest.raises(KeyError):
            next(it)


def test_unpicklable_call_and_result_fail_their_future(backend):
    with executor(backend) as ex:
        f = ex.submit(square, threading.Lock())
        with pytest.raises((TypeError, pickle.PicklingError)):
            f.result(T)
        f = ex.submit(unpicklable_result)
        with pytest.raises((TypeError, pickle.PicklingError)):
            f.result(T)
        assert ex.submit(square, 5).result(T) == 25


def test_results_above_max_msg_grow_the_channel(backend):
    """A result above the channel's max_msg arrives whole and in place
    (the worker moves to a channel large enough); arguments above the job
    channel's travel in pieces."""
    with executor(backend, pool_size=4 << 20, max_msg=1 << 20) as ex:
        small = ex.submit(full, 4, 1 << 10).result(T)
        big = ex.submit(full, 5, 3 << 17).result(T)          # 3 MB
        assert big.shape == (3 << 17,) and (big == 5).all()
        assert not big.flags.writeable and (small == 4).all()
        bigs = list(ex.map(full, range(6), [3 << 17] * 6, timeout=T))
        assert [a[-1] for a in bigs] == list(range(6))
        arg = np.arange(3 << 20, dtype=np.int64)             # 24 MB of arguments
        got = ex.submit(bump, arg).result(T)
        assert got[0] == 1 and got[-1] == 3 << 20
        assert list(ex.map(square, range(10), timeout=T)) == [x * x for x in range(10)]


def test_holding_results_never_stalls_the_pool(backend):
    """Results kept by the caller pin their pool: the workers move to
    fresh channels, so a list() of many times the pools completes, every
    result in place, and each old pool goes with its last array."""
    gc.collect()
    fds, nmaps = open_fds(), maps()
    with executor(backend, pool_size=8 << 20, max_msg=2 << 20) as ex:
        kept = list(ex.map(full, range(100), timeout=T))     # 100 MB, 16 MB of pools
        assert [a[0] for a in kept] == list(range(100))
        assert not any(a.flags.writeable for a in kept)
        # every 10th kept: the rest go, and the pools with them
        kept = kept[::10]
        assert [a[-1] for a in kept] == list(range(0, 100, 10))
        more = list(ex.map(full, range(20), timeout=T))
        assert [a[1] for a in more] == list(range(20))
    del kept, more
    gc.collect()
    assert open_fds() == fds
    assert maps() == nmaps


def test_initializer_and_initargs(backend):
    for method in METHODS[:2]:
        with executor(backend, method, initializer=init, initargs=(1, "two")) as ex:
            assert ex.submit(get_state).result(T) == [1, "two"]
    with pytest.raises(TypeError):
        ProcessPoolExecutor(1, initializer=3)
    with pytest.raises(ValueError):
        ProcessPoolExecutor(0)


def test_initializer_failure_breaks_the_pool(backend):
    with executor(backend, initializer=init_fails) as ex:
        f = ex.submit(square, 2)
        with pytest.raises(BrokenProcessPool):
            f.result(T)
        with pytest.raises(BrokenProcessPool):
            ex.submit(square, 3)


@pytest.mark.parametrize("method", METHODS)
def test_worker_killed_mid_task(method, backend):
    """SIGKILL of a worker while it runs a call: that future and every
    pending one fail with BrokenProcessPool (the stdlib's class), new
    submits too, nothing hangs, and no descriptor or mapping is left."""
    gc.collect()
    fds, nmaps = open_fds(), maps()
    ex = executor(backend, method)
    warm = list(ex.map(square, range(10), timeout=T))
    assert warm[3] == 9
    killed = ex.submit(die)
    pending = [ex.submit(sleep_then, i, 0.01) for i in range(20)]
    with pytest.raises(BrokenProcessPool) as info:
        killed.result(T)
    assert isinstance(info.value, cf.process.BrokenProcessPool)
    assert "signal 9" in str(info.value.__cause__)
    done, not_done = cf.wait(pending, timeout=T)
    assert not not_done
    for f in pending:
        assert f.exception() is None or isinstance(f.exception(), BrokenProcessPool)
    with pytest.raises(BrokenProcessPool):
        ex.submit(square, 1)
    ex.shutdown(wait=True)
    del ex, killed, pending, done, info
    gc.collect()
    assert open_fds() == fds
    assert maps() == nmaps


@pytest.mark.parametrize("how", ["exit", "SIGTERM", "between-tasks"])
def test_worker_dies_other_ways(how, backend):
    with executor(backend) as ex:
        assert ex.submit(square, 2).result(T) == 4
        if how == "exit":
            f = ex.submit(exit_now, 3)
        elif how == "SIGTERM":
            f = ex.submit(die, signal.SIGTERM)
        else:
            victim = ex.submit(pid).result(T)
            os.kill(victim, signal.SIGKILL)
            f = ex.submit(sleep_then, 1, 0.5)
            g = ex.submit(sleep_then, 2, 0.5)
            with pytest.raises(BrokenProcessPool):
                f.result(T)
                g.result(T)
            return
        with pytest.raises(BrokenProcessPool):
            f.result(T)


def test_results_held_across_a_broken_pool_stay_valid(backend):
    """Arrays received before a worker died stay readable: they keep
    their pool mapped until they are gone."""
    ex = executor(backend)
    kept = list(ex.map(full, range(8), timeout=T))
    with pytest.raises(BrokenProcessPool):
        ex.submit(die).result(T)
    ex.shutdown()
    assert [a[5] for a in kept] == list(range(8))


def test_shutdown(backend):
    ex = executor(backend, workers=1)
    first = ex.submit(sleep_then, 1, 0.5)
    rest = [ex.submit(square, i) for i in range(20)]
    cf.wait([first], timeout=0.2)       # sent to the worker: running
    assert first.running() or first.done()
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result(0) == 1
    assert any(f.cancelled() for f in rest)
    for f in rest:
        assert f.cancelled() or f.result(0) >= 0
    with pytest.raises(RuntimeError):
        ex.submit(square, 1)
    ex.shutdown()                       # twice is fine

    ex = executor(backend)
    fs = [ex.submit(square, i) for i in range(20)]
    ex.shutdown(wait=False)
    assert [f.result(T) for f in fs] == [i * i for i in range(20)]

    with executor(backend) as ex:       # never used: nothing started
        pass


def test_future_cancel_before_it_runs(backend):
    with executor(backend, workers=1) as ex:
        blocker = ex.submit(sleep_then, 0, 0.5)
        fs = [ex.submit(square, i) for i in range(10)]
        cancelled = [f for f in fs[5:] if f.cancel()]
        assert blocker.result(T) == 0
        for f in fs:
            assert f.cancelled() or f.result(T) == fs.index(f) ** 2
        assert cancelled and all(f.cancelled() for f in cancelled)


def test_is_a_drop_in(backend):
    """The names code imports from concurrent.futures."""
    assert issubclass(ProcessPoolExecutor, cf.Executor)
    assert BrokenProcessPool is cf.process.BrokenProcessPool
    with executor(backend) as ex:
        fs = [ex.submit(square, i) for i in range(10)]
        assert sorted(f.result() for f in cf.as_completed(fs, timeout=T)) == \
            [i * i for i in range(10)]


def _exit_without_shutdown(backend):
    ex = executor(backend)
    assert ex.submit(square, 3).result(T) == 9
    ex.submit(sleep_then, 1, 0.2)
    sys.exit(0)                         # multiprocessing's exit shuts it down


def test_exit_without_shutdown(backend):
    """A program (or multiprocessing child) that never shuts its executor
    down exits, after its pending calls, as with concurrent.futures."""
    p = mp.get_context("fork").Process(target=_exit_without_shutdown, args=(backend,))
    p.start()
    p.join(T)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail("a process that never shut its executor down hung at exit")
    assert p.exitcode == 0
    script = ("import sys; sys.path.insert(0, %r); import test_futures as t; "
              "ex = t.executor(%r); print(ex.submit(t.square, 4).result(%d))"
              % (os.path.dirname(__file__), backend, T))
    path = os.path.dirname(os.path.dirname(zchan.__file__))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         timeout=T, text=True, env=dict(os.environ, PYTHONPATH=path))
    assert out.returncode == 0 and out.stdout == "16\n", out.stderr
