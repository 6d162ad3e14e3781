"""The retrying GET against a real local server: what is retried, how long it waits, what it says."""

from __future__ import annotations

import random
import socket

import pytest

from forecasting.data.sources.base import SourceError
from forecasting.data.sources.http import HttpPolicy, get
from tests.data.replay import Answer

FAST = HttpPolicy(timeout=0.5, attempts=3, backoff=0.01, max_backoff=0.05, max_retry_after=5)
OK = Answer(body=b'{"ok": true}')


def _get(replay, path="/data", policy=FAST, **kwargs):
    return get(f"{replay.url}{path}", {"q": "1"}, policy=policy, what="test data for series 'x/y'", **kwargs)


def test_500_then_success_is_retried(replay) -> None:
    replay.script("/data", Answer(500, b"oops"), Answer(503, b"busy"), OK)
    response = _get(replay)
    assert response.json() == {"ok": True}
    assert len(replay.seen("/data")) == 3
    assert replay.seen()[0].params == {"q": "1"}


def test_persistent_5xx_fails_after_all_attempts_naming_the_series(replay) -> None:
    replay.script("/data", Answer(502, b"bad gateway"))
    with pytest.raises(SourceError, match=r"series 'x/y'.*failed after 3 attempt\(s\); last: HTTP 502 .*bad gateway"):
        _get(replay)
    assert len(replay.seen()) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_is_not_retried(replay, status) -> None:
    replay.script("/data", Answer(status, b'{"error":true,"reason":"bad parameter"}'), OK)
    with pytest.raises(SourceError, match=rf"HTTP {status} .*bad parameter.*not retried"):
        _get(replay)
    assert len(replay.seen()) == 1


def test_429_waits_as_long_as_retry_after_says(replay) -> None:
    replay.script("/data", Answer(429, b"slow down", headers={"Retry-After": "1"}), OK)
    assert _get(replay).json() == {"ok": True}
    first, second = replay.seen()
    assert second.at - first.at >= 0.95  # the backoff alone would be ~0.01 s


def test_retry_after_longer_than_the_limit_ends_with_a_clear_error(replay) -> None:
    replay.script("/data", Answer(429, b"", headers={"Retry-After": "3600"}), OK)
    with pytest.raises(SourceError, match="retry after 3600 s, more than max_retry_after 5 s"):
        _get(replay)
    assert len(replay.seen()) == 1


def test_retry_after_as_http_date_is_honoured(replay) -> None:
    replay.script("/data", Answer(503, b"", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), OK)
    waits: list[float] = []
    assert _get(replay, sleep=waits.append).status_code == 200
    assert waits == [0.0]  # a date in the past means "now"


def test_a_timeout_is_retried(replay) -> None:
    replay.script("/data", Answer(body=b"late", delay=1.0), OK)
    policy = HttpPolicy(timeout=0.2, attempts=2, backoff=0.01)
    assert _get(replay, policy=policy).json() == {"ok": True}
    assert len(replay.seen()) == 2


def test_only_timeouts_end_in_an_error_naming_the_timeout(replay) -> None:
    replay.script("/data", Answer(body=b"late", delay=0.6))
    with pytest.raises(SourceError, match="failed after 2 attempt.*ReadTimeout"):
        _get(replay, policy=HttpPolicy(timeout=0.2, attempts=2, backoff=0.01))


def test_a_truncated_body_is_retried(replay) -> None:
    body = b'{"ok": true, "padding": "' + b"x" * 200 + b'"}'
    replay.script("/data", Answer(body=body, truncate=40), Answer(body=body))
    assert _get(replay).json()["ok"] is True
    assert len(replay.seen()) == 2


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    waits: list[float] = []
    with pytest.raises(SourceError, match="failed after 3 attempt.*ConnectError"):
        get(f"http://127.0.0.1:{port}/x", None, policy=FAST, what="x", sleep=waits.append)
    assert len(waits) == 2


def test_backoff_grows_exponentially_with_bounded_jitter(replay) -> None:
    replay.script("/data", Answer(500))
    policy = HttpPolicy(attempts=6, backoff=1.0, max_backoff=8.0, jitter=0.5)
    waits: list[float] = []
    with pytest.raises(SourceError):
        _get(replay, policy=policy, sleep=waits.append, rng=random.Random(3))
    bases = [1.0, 2.0, 4.0, 8.0, 8.0]  # doubled each retry, capped
    assert len(waits) == 5
    assert all(0.5 * b <= w <= 1.5 * b for w, b in zip(waits, bases, strict=True))
    assert len({round(w / b, 6) for w, b in zip(waits, bases, strict=True)}) > 1  # jittered, not lockstep
