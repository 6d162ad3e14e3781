"""Every in-process fault case ends in one clear error (or survives) within its bound: no hang, no traceback."""

import time

import pytest

from forecasting.data.sources.base import SourceError
from forecasting.data.sources.http import HttpPolicy, get
from tests.faults.cases import quick_cases, run_case

pytestmark = pytest.mark.slow  # a loopback server; the trickle and silent cases wait out their deadlines


@pytest.mark.parametrize("case", quick_cases(), ids=lambda c: c.name)
def test_case_ends_in_a_clear_error_or_survives(case, fault_server, tmp_path):
    outcome = run_case(case, tmp_path, fault_server)
    expected = "survived" if case.expect == "success" else "clear error"
    assert outcome.result == expected, f"{outcome.result} after {outcome.seconds:.1f} s: {outcome.detail}"


def _get(server, mode, policy):
    return get(f"{server.url}/{mode}/x", None, policy=policy, what="test data for series 'x/y'", sleep=lambda s: None)


def test_trickle_ends_by_the_deadline_not_the_read_timeout(fault_server):
    """Row 1: one byte every 0.5 s never trips a 5 s read timeout; the 3 s deadline ends the fetch."""
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"series 'x/y'.*did not finish within its deadline of 3 s"):
        _get(fault_server, "trickle", HttpPolicy(timeout=5.0, attempts=5, deadline=3.0))
    assert time.monotonic() - started < 5.0


def test_redirect_loop_is_one_error_not_retried(fault_server):
    """Row 2."""
    before = fault_server.seen("redirect")
    with pytest.raises(SourceError, match=r"series 'x/y'.*redirects in a loop or too often.*not retried"):
        _get(fault_server, "redirect", HttpPolicy(timeout=2.0, attempts=3))
    assert fault_server.seen("redirect") - before == 21  # the first request and httpx's 20 redirects, once


@pytest.mark.parametrize("mode, error", [("gzip", "DecodingError"), ("reset", "ReadError|RemoteProtocolError"),
                                         ("truncate", "RemoteProtocolError")])
def test_corrupt_or_cut_bodies_are_retried_then_reported(fault_server, mode, error):
    """Row 3: a corrupt gzip body, a reset or a cut mid-body are transient: every attempt is made."""
    before = fault_server.seen(mode)
    with pytest.raises(SourceError, match=rf"failed after 3 attempt\(s\); last: ({error})"):
        _get(fault_server, mode, HttpPolicy(timeout=2.0, attempts=3, backoff=0.01))
    assert fault_server.seen(mode) - before == 3


def test_retry_that_would_pass_the_deadline_is_not_waited_for(fault_server):
    started = time.monotonic()
    with pytest.raises(SourceError, match="would pass the fetch's deadline of 2 s"):
        get(f"{fault_server.url}/status-503/x", None, policy=HttpPolicy(timeout=1.0, attempts=5, backoff=5.0, jitter=0.0,
                                                                       deadline=2.0), what="x")
    assert time.monotonic() - started < 1.5


def test_request_stop_ends_a_trickling_fetch_at_once(fault_server, monkeypatch):
    """Row 20's library half: a SIGTERM handler calls ``request_stop``; the fetch ends at its next chunk."""
    import threading

    from forecasting.data.sources import http

    monkeypatch.setattr(http, "_STOP", threading.Event())
    threading.Timer(1.0, http.request_stop).start()
    started = time.monotonic()
    with pytest.raises(SourceError, match="stopped: the process is shutting down"):
        _get(fault_server, "trickle", HttpPolicy(timeout=5.0, attempts=3, deadline=60.0))
    assert time.monotonic() - started < 3.0
