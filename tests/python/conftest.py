# SPDX-License-Identifier: MIT OR LGPL-2.1
"""pytest setup for zchan's Python tests.

With ZCHAN_TAP=1 (tests/python/run-pytest, which also turns pytest's own
terminal output off) this file is the reporter: a `1..N` plan, then one
TAP line per test, `ok N name` or `not ok N name` followed by its
traceback as `#` comments, so that tests/run-tests.sh counts pytest's
results like every other test program's.  A failing setup or teardown
fails its test; a module that does not import is one `not ok`.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

_tap = None
_results = {}


def pytest_configure(config):
    global _tap
    if os.environ.get("ZCHAN_TAP") == "1":
        _tap = os.fdopen(os.dup(1), "w", buffering=1)


def _comment(text):
    for line in text.splitlines():
        _tap.write("# %s\n" % line)


def pytest_collectreport(report):
    if _tap and report.failed:
        _tap.write("not ok 0 collecting %s\n" % report.nodeid)
        _comment(report.longreprtext)


def pytest_collection_finish(session):
    if _tap:
        _tap.write("TAP version 13\n1..%d\n" % len(session.items))


def pytest_runtest_logreport(report):
    if not _tap:
        return
    state = _results.setdefault(report.nodeid, {"failed": False, "skipped": None,
                                                "text": "", "seconds": 0.0})
    state["seconds"] += report.duration
    if report.failed:
        state["failed"] = True
        state["text"] += "%s failed:\n%s\n" % (report.when, report.longreprtext)
    elif report.skipped and report.when in ("setup", "call"):
        state["skipped"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped"
    if report.when != "teardown":
        return
    n = len(_results)
    name = report.nodeid.split("/")[-1]
    if state["failed"]:
        _tap.write("not ok %d %s\n" % (n, name))
        _comment(state["text"])
    elif state["skipped"] is not None:
        _tap.write("ok %d %s # SKIP %s\n" % (n, name, state["skipped"]))
    else:
        _tap.write("ok %d %s\n" % (n, name))
    _tap.write("#   %.2f s\n" % state["seconds"])


@pytest.fixture
def backend():
    """The backend the native tests use (memfd unless told otherwise)."""
    return os.environ.get("ZCHAN_TEST_BACKEND", "memfd")
