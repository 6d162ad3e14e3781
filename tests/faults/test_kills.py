"""kill -9 of training, registration, promotion and predict subprocesses, then a rerun; SIGTERM during a fetch.

Nothing may be torn (a version without its decision, an unreadable file), orphaned (a RUNNING run, a
checkpoint folder, a held lock) or duplicated (two versions for one training, repeated forecast rows).
"""

import time

import pytest

from tests.faults import kills

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scenario", ["kill_training", "kill_registration", "kill_promotion", "kill_predict"])
def test_kill_then_rerun_leaves_nothing_torn_orphaned_or_duplicated(scenario, tmp_path):
    # A kill inside an atomic write leaves its temporary beside whole data; the rerun's write of that
    # path removes it (the temporary names its dead writer), so nothing is left over either.
    assert getattr(kills, scenario)(tmp_path / scenario) == []


SIGTERM_WORKER = """
import signal, sys, threading
from concurrent.futures import ThreadPoolExecutor
from forecasting.data.sources import http

def on_term(signum, frame):
    http.request_stop()  # what a command's SIGTERM path calls
    raise SystemExit(143)

signal.signal(signal.SIGTERM, on_term)
with ThreadPoolExecutor(1) as pool:  # the fetch in a worker thread, as a Prefect task runs it
    future = pool.submit(http.get, sys.argv[1] + "/trickle/x", None, policy=http.HttpPolicy(timeout=5.0, deadline=600.0),
                         what="data for series 'x/y'")
    print("fetching", flush=True)
    future.result()
"""


def test_sigterm_stops_a_fetch_in_a_worker_thread_within_seconds(fault_server, tmp_path):
    """Row 20, the library's half: with ``request_stop`` in the SIGTERM path, a process whose worker thread
    is reading a trickle (deadline 10 minutes away) exits within seconds, not when the body ends."""
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_WORKER, fault_server.url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(kills.REPO)})
    assert proc.stdout.readline().strip() == "fetching"
    time.sleep(1.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert time.monotonic() - started < 5.0
    assert proc.returncode == 143, proc.stderr.read()[-2000:]


def test_sigterm_during_a_trickling_fetch_ends_the_command_within_seconds(fault_server, tmp_path):
    """Row 20: `forecast ingest` reading one byte every 0.5 s stops on SIGTERM, without a traceback."""
    before = fault_server.seen("trickle")
    proc = kills.sigterm_during_fetch(tmp_path, fault_server.url)
    deadline = time.monotonic() + 180
    while fault_server.seen("trickle") == before:
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("forecast ingest never reached the server in 180 s")
        time.sleep(0.2)
    time.sleep(1.0)
    assert kills.finish_sigterm(proc, tmp_path, bound=20.0) == []
