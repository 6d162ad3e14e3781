"""HTTP GET with a total deadline, explicit timeouts and retries: the one place the sources touch the network.

Retries happen here, at the request, and nowhere else (the Prefect fetch task
has none): only this level can honour a server's ``Retry-After`` and tell a
retryable failure from one that will fail the same way again.

Every fetch ends by its deadline (``HttpPolicy.deadline``, all attempts and waits
included), whatever the server does: the body is read in chunks against the
clock, so a server trickling one byte a second cannot hold a fetch past it, as a
per-read timeout alone would. ``request_stop`` (a SIGTERM handler's call) ends
every fetch in progress at its next chunk or retry wait.

Retried: connection errors, timeouts, bodies cut short or reset mid-body, bodies
that do not decode (corrupt gzip), 429 and 5xx. Not retried: any other status
>= 400, which means the request itself is wrong, and a redirect loop. Delays
grow exponentially with random jitter so many workers do not retry in lockstep;
a ``Retry-After`` header sets the delay instead.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from forecasting.data.sources.base import SourceError

log = logging.getLogger(__name__)
USER_AGENT = "forecasting-ingest/0.1"
_BODY_PREVIEW = 300
_STOP = threading.Event()


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, deadline and retry schedule of one source's requests."""

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
    deadline: float | None = None
    """Seconds one fetch may take in all, every attempt, body read and retry wait included.
    None: 12 x ``timeout``, at least 60 s."""

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds before retry number ``retry`` (1-based), jitter included."""
        base = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    @property
    def total(self) -> float:
        """The deadline in seconds, resolved."""
        return self.deadline if self.deadline is not None else max(60.0, 12.0 * self.timeout)


def request_stop() -> None:
    """End every fetch in progress (and refuse new ones) with a SourceError: the process is stopping."""
    _STOP.set()


def stopping() -> bool:
    return _STOP.is_set()


# When the main thread ends (SIGTERM or Ctrl-C unwinding it, or a normal exit), Python joins the worker
# threads before it exits: a fetch running in one (a Prefect task) would hold the process for as long as
# its server trickles. Threading's exit hooks run before that join (and before thread pools join their
# workers), so every fetch stops at its next chunk instead.
_register_at_exit = getattr(threading, "_register_atexit", None)
if _register_at_exit is not None:
    _register_at_exit(request_stop)


class _Deadline(Exception):
    """The fetch's deadline passed while reading."""


class _Stopped(Exception):
    """``request_stop`` was called."""


def get(
    url: str,
    params: Mapping[str, str] | None,
    *,
    policy: HttpPolicy,
    what: str,
    sleep: Callable[[float], None] | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> httpx.Response:
    """GET ``url`` and return the fully read 2xx response, retrying what may pass next time.

    ``what`` names the data for error messages, e.g. "Open-Meteo data for
    series 'weather/berlin'". Raises ``SourceError`` naming it, the URL, the
    last failure and the number of attempts, by ``policy``'s deadline at the latest.
    """
    rng = rng or random.Random()
    started = clock()
    ends = started + policy.total
    request = httpx.Request("GET", url, params=params)
    failure = ""
    attempt = 0
    with httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=True) as client:
        for attempt in range(1, policy.attempts + 1):
            wait: float | None = None
            try:
                response = _fetch(client, url, params, policy=policy, ends=ends, clock=clock)
            except _Stopped:
                raise SourceError(f"{what}: GET {request.url} stopped: the process is shutting down") from None
            except _Deadline:
                raise SourceError(
                    f"{what}: GET {request.url} did not finish within its deadline of {policy.total:.0f} s "
                    f"(attempt {attempt}/{policy.attempts}, the server sends too slowly or not at all)"
                ) from None
            except httpx.TooManyRedirects as exc:
                raise SourceError(f"{what}: GET {request.url} redirects in a loop or too often ({exc}); not retried") from None
            except httpx.UnsupportedProtocol as exc:
                raise SourceError(f"{what}: GET {request.url} leads to an unsupported URL ({exc}); not retried") from None
            except (httpx.TransportError, httpx.DecodingError, httpx.StreamError) as exc:
                # connect/read errors, timeouts, truncated or reset bodies, corrupt compression
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
            if clock() + delay >= ends:
                raise SourceError(
                    f"{what}: GET {request.url} failed {attempt} time(s) and the next retry (in {delay:.1f} s) would "
                    f"pass the fetch's deadline of {policy.total:.0f} s; last: {failure}"
                )
            log.warning("%s: %s (attempt %d/%d); retrying in %.2f s", what, failure, attempt, policy.attempts, delay)
            if sleep is not None:
                sleep(delay)
            elif _STOP.wait(delay):
                raise SourceError(f"{what}: GET {request.url} stopped: the process is shutting down; last: {failure}")
    raise SourceError(f"{what}: GET {request.url} failed after {attempt} attempt(s); last: {failure}")


def _fetch(
    client: httpx.Client,
    url: str,
    params: Mapping[str, str] | None,
    *,
    policy: HttpPolicy,
    ends: float,
    clock: Callable[[], float],
) -> httpx.Response:
    """One attempt: the response with its whole decoded body, read in chunks against the deadline."""
    if _STOP.is_set():
        raise _Stopped
    remaining = ends - clock()
    if remaining <= 0:
        raise _Deadline
    # A silent server is cut off by the read timeout, a trickling one by the clock between chunks: the fetch
    # ends by its deadline, or one read timeout after it when the last read began just before.
    timeout = httpx.Timeout(min(policy.timeout, remaining))
    with client.stream("GET", url, params=params, timeout=timeout) as response:
        chunks: list[bytes] = []
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if _STOP.is_set():
                raise _Stopped
            if clock() >= ends:
                raise _Deadline
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=response.request)


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
