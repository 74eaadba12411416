# SPDX-License-Identifier: MIT OR LGPL-2.1
"""Nothing leaks: descriptors and memory after 100000 messages and after
1000 channels."""
import gc
import os

import numpy as np

import zchan


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def maps():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def test_100000_messages(backend):
    p = zchan.create(backend=backend, pool_size=1 << 20)
    c = p.consumer()
    a = np.arange(16, dtype=np.float64)

    def round_trip(n):
        for i in range(n):
            p.send(b"m%d" % i)
            assert c.recv() == b"m%d" % i
            with p.loan(64) as loan:
                memoryview(loan)[:2] = b"zc"
            with c.recv_zc() as msg:
                assert bytes(msg[:2]) == b"zc"
            p.send_array(a)
            assert c.recv_array()[3] == 3.0

    round_trip(1000)                # warm up allocators and caches
    gc.collect()
    fds, rss = open_fds(), rss_kib()
    round_trip(100000 // 3)
    gc.collect()
    assert open_fds() == fds
    assert rss_kib() - rss < 4096, "RSS grew by %d KiB" % (rss_kib() - rss)
    assert p.stats()["messages"] == c.stats()["messages"]


def test_1000_channels(backend):
    def churn(n):
        for _ in range(n):
            p = zchan.create(backend=backend, pool_size=1 << 16)
            c = p.consumer()
            p.send(b"x")
            msg = c.recv_zc()
            arr = np.frombuffer(memoryview(msg), np.uint8)
            c.close()               # deferred: the array still maps it
            p.close()
            assert arr[0] == ord("x")
            del arr, msg

    churn(50)
    gc.collect()
    fds, rss, nmaps = open_fds(), rss_kib(), maps()
    churn(1000)
    gc.collect()
    assert open_fds() == fds
    assert maps() == nmaps
    assert rss_kib() - rss < 4096, "RSS grew by %d KiB" % (rss_kib() - rss)
