"""Progress of long loops over series, fits, folds or chunks: one log line every few seconds.

Ingesting 1,400 series, fitting ETS and Theta at hundreds of origins or predicting thousands of
series can take minutes; a command that prints nothing for minutes looks hung, in a terminal and on
a Prefect run page alike. A loop reports through ``Progress`` instead: a line at most every
``every`` seconds with the count done, the rate and the time left, and a closing line when any line
was written. Short loops stay silent. The lines go to the ``forecasting`` logger, which reaches the
terminal and the flow run's log (``PREFECT_LOGGING_EXTRA_LOGGERS``); training's per-epoch lines and
bar are ``forecasting.model.progress``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

EVERY_SECONDS = 10.0
"""Least time between two progress lines of one loop: often enough to show life, rarely enough to read."""


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``: elapsed time and ETA in every progress line, training's included."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts ``total`` items of ``unit`` done under ``what``; logs ``what: k/N unit (p%), elapsed, ETA``."""

    def __init__(self, what: str, total: int, unit: str = "series", *, every: float | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.what, self.total, self.unit = what, int(total), unit
        self.every = EVERY_SECONDS if every is None else float(every)  # read at call time: tests lower it
        self.log = logger or log
        self.done = 0
        self.started = self.last = time.monotonic()
        self.reported = False

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every and self.done < self.total:
            self.last, self.reported = now, True
            self.log.info(self.line(now))

    def finish(self) -> None:
        """The closing line, written only when the loop was long enough to report along the way."""
        if self.reported:
            self.log.info(self.line(time.monotonic()))

    def line(self, now: float) -> str:
        elapsed = now - self.started
        share = self.done / self.total if self.total else 1.0
        text = f"{self.what}: {self.done}/{self.total} {self.unit} ({share:.0%}), elapsed {clock(elapsed)}"
        if 0 < self.done < self.total:
            text += f", ETA {clock(elapsed / self.done * (self.total - self.done))}"
        return text


def track(items: Iterable[T], what: str, total: int, unit: str = "series", *, every: float | None = None) -> Iterator[T]:
    """``items`` unchanged, with a progress line every ``every`` seconds while they are consumed."""
    progress = Progress(what, total, unit, every=every)
    for item in items:
        yield item
        progress.advance()
    progress.finish()
