"""What every source gives the ingest: one small interface, so a new source is one file.

A source splits its work into *fetch units* (a location, a ticker, a file, a
bundled dataset) and turns one unit into a ``Batch``: rows in the canonical
columns, still unvalidated, plus the request that produced them for lineage.
Values a parser could not read are NaN and the row carries the reason in
``REASON``, so validation can quarantine the row instead of losing it.

Only sources touch the network, and only through ``forecasting.data.sources.http``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forecasting.errors import ForecastingError

REASON = "_reason"
"""Column of parse problems per row ("" when the row parsed cleanly)."""


class SourceError(ForecastingError):
    """A source could not deliver: the request failed for good, or the answer is unreadable."""


@dataclass(frozen=True)
class FetchUnit:
    """One request's worth of work."""

    key: str
    """Human-readable name of the unit, e.g. the series id or the file path."""
    series_ids: tuple[str, ...] = ()
    """Series the unit delivers; empty when only the data can tell (files)."""


@dataclass
class Batch:
    """What one fetch returned, before validation."""

    source: str
    unit: str
    frame: pd.DataFrame
    """``series_id, timestamp (UTC or NaT), target, covariates..., REASON``."""
    request: dict[str, Any]
    """What was asked, e.g. ``{"url": ..., "params": {...}}``: recorded as lineage."""
    fetched_at: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))
    pending: int = 0
    """Trailing rows the source has not published yet (all values null): left out, fetched again next run."""

    def lineage(self) -> dict[str, Any]:
        return {"source": self.source, "fetched_at": self.fetched_at.isoformat(), "request": self.request}


class Source(ABC):
    """A place observations come from."""

    name: str = "source"

    @abstractmethod
    def units(self) -> list[FetchUnit]:
        """The fetch units, without touching the network."""

    @abstractmethod
    def fetch(self, unit: FetchUnit, since: Mapping[str, pd.Timestamp | None], until: pd.Timestamp) -> Batch:
        """Rows of ``unit`` from ``since[series_id]`` (None: from the configured start) to ``until``.

        Sources may return more than asked (whole days, a whole file); the
        upsert makes that harmless. Raises ``SourceError`` when nothing usable came back.
        """


def empty_batch_frame(covariates: tuple[str, ...] = ()) -> pd.DataFrame:
    """A batch frame with no rows and the right dtypes."""
    columns: dict[str, pd.Series] = {
        "series_id": pd.Series([], dtype="str"),
        "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
        "target": pd.Series([], dtype="float64"),
    }
    for column in covariates:
        columns[column] = pd.Series([], dtype="float64")
    columns[REASON] = pd.Series([], dtype="str")
    return pd.DataFrame(columns)


def numeric_columns(raw: pd.DataFrame, columns: Mapping[str, str]) -> tuple[pd.DataFrame, pd.Series]:
    """Parse text or mixed columns to float64, noting every unreadable cell per row.

    ``columns`` maps a raw column name to its canonical name. Empty cells and
    JSON nulls become NaN without a note (validation reports missing values);
    anything else that is not a number becomes NaN with a note naming the
    column and the value.
    """
    out = pd.DataFrame(index=raw.index)
    notes = pd.Series("", index=raw.index, dtype="str")
    for raw_name, name in columns.items():
        column = raw[raw_name]
        parsed = pd.to_numeric(column, errors="coerce").astype("float64")
        text = column.astype("str").str.strip()
        blank = column.isna() | text.eq("")
        unreadable = parsed.isna() & ~blank
        for row in raw.index[unreadable]:
            notes[row] = _join(notes[row], f"{name} {column[row]!r} is not a number")
        out[name] = parsed
    return out, notes


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
