"""HTTP GET with explicit timeouts and retries: the one place the sources touch the network.

Retries happen here, at the request, and nowhere else (the Prefect fetch task
has none): only this level can honour a server's ``Retry-After`` and tell a
retryable failure from one that will fail the same way again.

Retried: connection errors, timeouts, bodies cut short (all httpx transport
errors), 429 and 5xx. Not retried: any other status >= 400, which means the
request itself is wrong. Delays grow exponentially with random jitter so many
workers do not retry in lockstep; a ``Retry-After`` header sets the delay instead.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from forecasting.data.sources.base import SourceError

log = logging.getLogger(__name__)
USER_AGENT = "forecasting-ingest/0.1"
_BODY_PREVIEW = 300


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retry schedule of one source's requests."""

    timeout: float = 30.0
    """Seconds to wait for each read (and for the whole connect)."""
    attempts: int = 5
    """Tries in total, the first included."""
    backoff: float = 1.0
    """Delay before the first retry, in seconds; doubles with every retry."""
    max_backoff: float = 60.0
    """Upper bound of the exponential delay."""
    jitter: float = 0.5
    """Each delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter]."""
    max_retry_after: float = 300.0
    """A server asking to wait longer than this (Retry-After) ends the fetch with an error."""

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds before retry number ``retry`` (1-based), jitter included."""
        base = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)


def get(
    url: str,
    params: Mapping[str, str] | None,
    *,
    policy: HttpPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> httpx.Response:
    """GET ``url`` and return the fully read 2xx response, retrying what may pass next time.

    ``what`` names the data for error messages, e.g. "Open-Meteo data for
    series 'weather/berlin'". Raises ``SourceError`` naming it, the URL, the
    last failure and the number of attempts.
    """
    rng = rng or random.Random()
    timeout = httpx.Timeout(policy.timeout)
    request = httpx.Request("GET", url, params=params)
    failure = ""
    with httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT}, follow_redirects=True) as client:
        for attempt in range(1, policy.attempts + 1):
            wait: float | None = None
            try:
                response = client.get(url, params=params)  # reads the whole body, or raises
            except httpx.TransportError as exc:  # connect/read errors, timeouts, truncated bodies
                failure = f"{type(exc).__name__}: {exc or 'no detail'}"
            else:
                if response.is_success:
                    return response
                failure = f"HTTP {response.status_code} {response.reason_phrase}: {_preview(response)}"
                if not _retryable(response.status_code):
                    raise SourceError(
                        f"{what}: GET {request.url} failed with {failure} (a client error, not retried)"
                    )
                wait = _retry_after(response)
                if wait is not None and wait > policy.max_retry_after:
                    raise SourceError(
                        f"{what}: GET {request.url} answered {failure} and asks to retry after {wait:.0f} s, "
                        f"more than max_retry_after {policy.max_retry_after:.0f} s; try again later"
                    )
            if attempt == policy.attempts:
                break
            delay = wait if wait is not None else policy.delay(attempt, rng)
            log.warning("%s: %s (attempt %d/%d); retrying in %.2f s", what, failure, attempt, policy.attempts, delay)
            sleep(delay)
    raise SourceError(f"{what}: GET {request.url} failed after {policy.attempts} attempt(s); last: {failure}")


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (delta-seconds or HTTP-date), if it says."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _preview(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:_BODY_PREVIEW] + ("..." if len(text) > _BODY_PREVIEW else "") if text else "(empty body)"
