# SPDX-License-Identifier: MIT OR LGPL-2.1
"""A hostile producer never crashes a Python consumer: a forged descriptor
makes recv(), recv_zc(), recv_array() and recv_obj() raise OSError(EPROTO),
in a forked consumer whose death by a signal is a failure (issue 23).

The forger writes the producer's ring through the producer's own writable
mapping of it (memfd backend: found in /proc/self/maps), as a raw producer
could; the layout is the one zchan_layout_set_words() gives."""
import ctypes
import errno
import os
import struct

import numpy as np
import pytest

import zchan

ZCHAN_DESC_PAGES = 1 << 1
ZCHAN_OFF_PAGES = 1 << 40
ZCHAN_PAGES_MAX = 1 << 30
PROD_TAIL = 0           # struct zchan_prod_ring: tail, then 3 lines of words
PROD_DESCS = 192        # then the descriptors: off (u64), len, flags (u32)
DESC = struct.Struct("<QII")


def producer_ring():
    """Address of the only writable mapping of a zchan-prod memfd at 0."""
    found = None
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if (len(fields) >= 6 and fields[1] == "rw-s" and int(fields[2], 16) == 0
                    and "zchan-prod" in line):
                found = int(fields[0].split("-")[0], 16)
    assert found is not None, "no writable producer ring mapped"
    return found


def forge(p, off, length, flags):
    """Publish one descriptor behind the producer's back."""
    ring = producer_ring()
    tail = ctypes.c_uint32.from_address(ring + PROD_TAIL)
    t = tail.value
    slot = ring + PROD_DESCS + (t % p.ring_entries) * DESC.size
    ctypes.memmove(slot, DESC.pack(off, length, flags), DESC.size)
    tail.value = t + 1


FORGERIES = {
    "pages-no-transfer": lambda p: (ZCHAN_OFF_PAGES + 3 * ZCHAN_PAGES_MAX, 4096,
                                    ZCHAN_DESC_PAGES),
    "len-over-max": lambda p: (0, p.max_msg + 1, 0),
    "past-pool": lambda p: (p.pool_size - 64, 4096, 0),
    "unknown-flags": lambda p: (0, 64, 1 << 7),
}

CALLS = {
    "recv": lambda c: c.recv(timeout=0),
    "recv_zc": lambda c: c.recv_zc(timeout=0),
    "recv_array": lambda c: c.recv_array(timeout=0),
    "recv_obj": lambda c: c.recv_obj(timeout=0),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_descriptor_raises_eproto(forgery, call):
    p = zchan.create(backend="memfd", pool_size=1 << 20, ring_entries=64)
    c = p.consumer()
    try:
        p.send_array(np.arange(8))
        held = c.recv_array(timeout=0)          # taken before the forgery
        forge(p, *FORGERIES[forgery](p))
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                try:
                    CALLS[call](c)
                    code = 10
                except OSError as e:
                    code = 0 if e.errno == errno.EPROTO else 11
                if not code:
                    try:                        # and for good
                        c.recv(timeout=0)
                        code = 12
                    except OSError as e:
                        code = 0 if e.errno == errno.EPROTO else 13
                if not code and list(held) != list(range(8)):
                    code = 14
                del held                        # released: no error
            except BaseException:
                code = 15
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert not os.WIFSIGNALED(status), "consumer killed by signal %d" % \
            os.WTERMSIG(status)
        assert os.WEXITSTATUS(status) == 0
        del held
    finally:
        c.close()
        p.close()
