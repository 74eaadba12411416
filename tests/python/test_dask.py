# SPDX-License-Identifier: MIT OR LGPL-2.1
"""The Dask comm backend zchan+tcp:// (python/zchan/dask.py) with Debian's
python3-distributed: comms between two processes, dead peers, and real
LocalClusters against tcp://, natively on the memfd backend.

The backend is found through its entry point, as an installed zchan's
would be: python/zchan_source_tree-0.dist-info has it for the source
tree.
"""
import asyncio
import json
import multiprocessing as mp
from multiprocessing import resource_tracker
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.abspath(os.path.join(TESTS_DIR, "..", "..", "python"))
# every test bounded: the worst that may happen is a CommClosedError
TIMEOUT = 120


@pytest.fixture(scope="module", autouse=True)
def entry_point():
    """The worker processes Dask spawns find zchan+tcp by its entry point
    in python/ (zchan_source_tree-0.dist-info), as an installed zchan's,
    and this file's functions (client.run) by name."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [PYTHON_DIR, TESTS_DIR, old]))
    yield
    if old is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = old


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def open_fds():
    return sorted(os.listdir("/proc/self/fd"))


def zchan_maps():
    with open("/proc/self/maps") as f:
        return sum("zchan" in line for line in f)


async def echo_server(comm):
    """Write back what it reads: listen(..., deserialize=False) keeps the
    frames of to_serialize() objects as they came (as the scheduler does)."""
    from distributed.comm import CommClosedError
    try:
        while True:
            await comm.write(await comm.read())
    except CommClosedError:
        pass


def test_entry_point_registers_the_scheme():
    from distributed.comm.registry import get_backend
    from zchan.dask import ZchanTCPBackend
    assert isinstance(get_backend("zchan+tcp"), ZchanTCPBackend)


def test_round_trip_same_process_takes_zchan():
    """Messages of every size through a zchan comm; 100 MB through 8 MB pools."""
    from distributed.comm import connect, listen
    from distributed.protocol import to_serialize
    import dask

    async def main():
        with dask.config.set({"distributed.comm.zchan.pool-size": "8 MiB",
                              "distributed.comm.zchan.message-size": "1 MiB"}):
            async with listen("zchan+tcp://127.0.0.1:0", echo_server, deserialize=False) as listener:
                comm = await connect(listener.contact_address)
                assert comm.path == "zchan" and comm.extra_info["path"] == "zchan"
                assert comm.extra_info["backend"] == "memfd"
                assert comm.extra_info["pool_size"] == 8 << 20
                for n in (0, 1, 1000, 1 << 20, (4 << 20) + 3, 100 << 20):
                    a = np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8)
                    await comm.write({"a": to_serialize(a), "n": n, "empty": b""})
                    got = await comm.read()
                    assert got["n"] == n and got["empty"] == b""
                    assert np.array_equal(got["a"], a)
                    # Dask owns what it received: writeable, not the pool
                    assert got["a"].flags.writeable
                stats = comm.stats()
                assert stats["send"]["bytes"] > 100 << 20
                await comm.close()
                assert comm.closed()

    fds, maps = open_fds(), zchan_maps()
    run(main())
    assert open_fds() == fds
    assert zchan_maps() == maps


def test_disabled_connector_stays_on_tcp():
    from distributed.comm import connect, listen
    from distributed.protocol import to_serialize
    import dask

    async def main():
        async with listen("zchan+tcp://127.0.0.1:0", echo_server, deserialize=False) as listener:
            with dask.config.set({"distributed.comm.zchan.enabled": False}):
                comm = await connect(listener.contact_address)
            assert comm.path == "tcp"
            assert comm.extra_info["path_reason"] == "zchan disabled here"
            assert comm.peer_address == listener.contact_address
            a = np.arange(1 << 20)
            await comm.write({"a": to_serialize(a)})
            assert np.array_equal((await comm.read())["a"], a)
            await comm.close()

    run(main())


def test_close_and_abort_raise_comm_closed():
    from distributed.comm import CommClosedError, connect, listen

    async def main():
        server_comms = []

        async def keep(comm):
            server_comms.append(comm)

        async with listen("zchan+tcp://127.0.0.1:0", keep) as listener:
            comm = await connect(listener.contact_address)
            while not server_comms:
                await asyncio.sleep(0.01)
            peer = server_comms[0]
            # a read waiting when its own comm closes ends, not hangs
            reader = asyncio.ensure_future(comm.read())
            await asyncio.sleep(0.05)
            comm.abort()
            with pytest.raises(CommClosedError):
                await reader
            with pytest.raises(CommClosedError):
                await comm.write("x")
            # the peer: what was committed before is read, then closed
            with pytest.raises(CommClosedError):
                await peer.read()
            assert peer.closed()
            with pytest.raises(CommClosedError):
                await peer.write("x")
            await peer.close()

    fds, maps = open_fds(), zchan_maps()
    run(main())
    assert open_fds() == fds
    assert zchan_maps() == maps


def _killed_peer(address, nbytes):
    """Child: two comms; on the first, start writing nbytes the parent
    does not read; the second waits.  Then it waits to be killed."""
    import zchan.dask
    from distributed.comm import connect
    from distributed.protocol import to_serialize

    zchan.dask.register()

    async def main():
        writing = await connect(address)
        waiting = await connect(address)
        assert writing.path == waiting.path == "zchan"
        await waiting.write("waiting")
        data = np.random.default_rng(0).integers(0, 255, nbytes, np.uint8)
        await writing.write({"a": to_serialize(data)})

    asyncio.run(main())


def test_dead_peer_mid_message():
    """A peer killed while its message is half in the pool, and while this
    end waits for room in a full pool: both get CommClosedError."""
    from distributed.comm import CommClosedError, listen
    from distributed.protocol import to_serialize
    import dask
    import zchan

    async def main():
        comms = []

        async def keep(comm):
            comms.append(comm)

        with dask.config.set({"distributed.comm.zchan.pool-size": "4 MiB",
                              "distributed.comm.zchan.message-size": "1 MiB"}):
            async with listen("zchan+tcp://127.0.0.1:0", keep) as listener:
                child = mp.get_context("spawn").Process(
                    target=_killed_peer, args=(listener.contact_address, 64 << 20))
                child.start()
                try:
                    while len(comms) < 2:
                        await asyncio.sleep(0.05)
                    reading, writing = comms
                    assert reading.path == writing.path == "zchan"
                    assert await writing.read() == "waiting"
                    # the child fills the pool of the first and waits for room
                    while not reading._cons.poll_mask() & zchan.POLLIN:
                        await asyncio.sleep(0.05)
                    # this end fills the pool of the second
                    writer = asyncio.ensure_future(
                        writing.write({"a": to_serialize(np.random.default_rng(1).random(1 << 20))}))
                    await asyncio.sleep(0.5)
                    assert not writer.done()
                    os.kill(child.pid, signal.SIGKILL)
                    with pytest.raises(CommClosedError):
                        await writer
                    # the first: a part of a message, then the peer is gone
                    with pytest.raises(CommClosedError):
                        await reading.read()
                    assert reading.closed() and writing.closed()
                finally:
                    child.kill()
                    child.join()
                    child.close()

    resource_tracker.ensure_running()   # spawn's, for the life of this process
    fds, maps = open_fds(), zchan_maps()
    run(main())
    assert open_fds() == fds
    assert zchan_maps() == maps


# Real clusters.  The array: 10000 x 10000 float64 in 1000 x 1000
# chunks (800 MB, 100 chunks of 8 MB); the benchmark runs it too.
N, CHUNK = 10000, 1000


def cluster(protocol, **kw):
    from distributed import LocalCluster
    return LocalCluster(protocol=protocol, n_workers=2, threads_per_worker=1,
                        processes=True, dashboard_address=None, **kw)


def comm_paths(dask_worker=None, dask_scheduler=None):
    """(peer address, path) of every open comm of this process."""
    from distributed.comm.core import Comm
    return sorted((c.peer_address, getattr(c, "path", "?"))
                  for c in list(Comm._instances) if not c.closed())


def array_work(client):
    import dask.array as da
    x = da.random.RandomState(42).random((N, N), chunks=(CHUNK, CHUNK))
    transpose_sum = (x + x.T).sum(axis=0).compute()
    rechunked = x.rechunk((N // 10 // 4, N)).sum(axis=1).compute()
    moved = sum(sum(t["total"] for t in log) for log in client.run(
        lambda dask_worker: list(dask_worker.transfer_incoming_log)).values())
    return transpose_sum, rechunked, moved


def test_local_cluster_array_work_equals_tcp():
    from distributed import Client
    results = {}
    for protocol in ("tcp://", "zchan+tcp://"):
        with cluster(protocol) as c, Client(c) as client:
            results[protocol] = array_work(client)
            if protocol == "zchan+tcp://":
                paths = client.run(comm_paths)
                # every comm is zchan, a worker's to the other one too
                a, b = paths
                assert (b, "zchan") in paths[a] or (a, "zchan") in paths[b], paths
                for comms in paths.values():
                    assert comms and all(path == "zchan" for _, path in comms), comms
    (ts_tcp, rc_tcp, moved_tcp), (ts_z, rc_z, moved_z) = results.values()
    assert moved_tcp > 0 and moved_z > 0
    assert np.array_equal(ts_tcp, ts_z)
    assert np.array_equal(rc_tcp, rc_z)


def test_worker_to_worker_100mb():
    from distributed import Client
    with cluster("zchan+tcp://") as c, Client(c) as client:
        a, b = sorted(client.scheduler_info()["workers"])
        big = client.submit(lambda: np.arange(100 << 20 >> 3, dtype=np.int64),
                            workers=[a], pure=False)
        total = client.submit(lambda x: int(x.sum()), big, workers=[b])
        n = (100 << 20) >> 3
        assert total.result(timeout=TIMEOUT) == n * (n - 1) // 2
        log = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log),
                         workers=[b])[b]
        assert [t["who"] for t in log] == [a]
        assert log[0]["total"] >= 100 << 20


def _kill_when_sending(dask_worker):
    """Run in the sending worker: SIGKILL it once a transfer is under way."""
    import threading

    def watch():
        while dask_worker.transfer_outgoing_count == 0:
            time.sleep(0.001)
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.parametrize("protocol", ["tcp://", "zchan+tcp://"], ids=["tcp", "zchan+tcp"])
def test_worker_killed_mid_transfer(protocol):
    """The sender dies during a 400 MB transfer; Dask recomputes the data
    and the result is right, on zchan+tcp:// as on tcp://."""
    from distributed import Client, wait
    n = (400 << 20) >> 3
    with cluster(protocol) as c, Client(c) as client:
        a, b = sorted(client.scheduler_info()["workers"])
        big = client.submit(np.arange, n, dtype=np.int64, workers=[a],
                            allow_other_workers=True, pure=False)
        wait(big, timeout=TIMEOUT)
        client.run(_kill_when_sending, workers=[a])
        total = client.submit(lambda x: int(x.sum()), big, workers=[b])
        assert total.result(timeout=TIMEOUT) == n * (n - 1) // 2
        # killed mid-transfer: b never received a's array from a
        log = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log),
                         workers=[b])[b]
        assert a not in [t["who"] for t in log], log
        # the nanny restarted the killed worker: two workers again, a gone
        deadline = time.monotonic() + TIMEOUT
        while a in client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.1)
        client.wait_for_workers(2, timeout=TIMEOUT)
        assert a not in client.scheduler_info()["workers"]


NETNS_CLUSTER = textwrap.dedent("""
    import json, subprocess, sys, time
    import numpy as np
    from distributed import Client, LocalCluster
    from test_dask import comm_paths
    ip, other_ns, python = sys.argv[1:4]
    if __name__ == "__main__":
        with LocalCluster(protocol="zchan+tcp://", host=ip, n_workers=2,
                          threads_per_worker=1, dashboard_address=None) as c, \\
                Client(c) as client:
            worker = subprocess.Popen(
                ["ip", "netns", "exec", other_ns, "unshare", "--ipc", python,
                 "-m", "distributed.cli.dask_worker", c.scheduler_address,
                 "--nthreads", "1", "--no-nanny", "--no-dashboard",
                 "--host", sys.argv[4]])
            try:
                client.wait_for_workers(3, timeout=90)
                workers = sorted(client.scheduler_info()["workers"])
                # one array on each worker, each summed on every other
                parts = [client.submit(np.full, 1 << 17, i, workers=[w], pure=False)
                         for i, w in enumerate(workers)]
                sums = [client.submit(lambda x, i: (i, float(x.sum())), p, j,
                                      workers=[w], pure=False)
                        for j, p in enumerate(parts) for w in workers]
                got = client.gather(sums)
                paths = client.run(comm_paths)
                paths["scheduler"] = client.run_on_scheduler(comm_paths)
                print(json.dumps({"workers": workers, "paths": paths, "sums": got,
                                  "scheduler": c.scheduler_address}))
            finally:
                worker.terminate()
                worker.wait(30)
""")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"),
                    reason="needs root, ip(8) and unshare(1) for network namespaces")
def test_worker_in_other_namespaces_takes_tcp(tmp_path):
    """A second "host": a worker in its own network and IPC namespaces,
    joined by a veth pair to the namespace of the cluster (both made here,
    10.231.x.y/30 inside them).  Its connections take TCP; the same-host
    workers' connections to each other take zchan."""
    tag = "zchan-dask-%d" % os.getpid()
    ns_a, ns_b = tag + "-a", tag + "-b"
    net = "10.231.%d" % (os.getpid() % 250)
    ip_a, ip_b = net + ".1", net + ".2"

    def sh(*args, ns=None):
        cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
        subprocess.run(cmd, check=True, timeout=30)

    try:
        sh("ip", "netns", "add", ns_a)
        sh("ip", "netns", "add", ns_b)
        sh("ip", "link", "add", "zd%da" % os.getpid(), "netns", ns_a, "type", "veth",
           "peer", "name", "zd%db" % os.getpid(), "netns", ns_b)
        for ns, dev, addr in ((ns_a, "zd%da" % os.getpid(), ip_a),
                              (ns_b, "zd%db" % os.getpid(), ip_b)):
            sh("ip", "addr", "add", addr + "/30", "dev", dev, ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        script = tmp_path / "netns_cluster.py"
        script.write_text(NETNS_CLUSTER)
        out = subprocess.run(["ip", "netns", "exec", ns_a, sys.executable, str(script),
                              ip_a, ns_b, sys.executable, ip_b],
                             check=True, timeout=TIMEOUT, cwd=str(tmp_path),
                             stdout=subprocess.PIPE).stdout
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    got = json.loads(out.decode().strip().splitlines()[-1])
    assert sorted(got["sums"]) == sorted([i, float(i << 17)] for i in range(3) for _ in range(3))
    remote = [w for w in got["workers"] if ip_b in w]
    local = [w for w in got["workers"] if ip_a in w]
    assert len(remote) == 1 and len(local) == 2
    # the remote worker's comms: all TCP (scheduler, workers)
    assert got["paths"][remote[0]] and all(p == "tcp" for _, p in got["paths"][remote[0]])
    for w in local:
        comms = dict(got["paths"][w])
        other = [x for x in local if x != w][0]
        assert comms.get(other) == "zchan", got["paths"][w]
        assert comms.get(remote[0]) == "tcp", got["paths"][w]
    sched = got["paths"]["scheduler"]
    assert {p for a, p in sched if ip_b in a} == {"tcp"}
    assert "zchan" in {p for a, p in sched if ip_a in a}
