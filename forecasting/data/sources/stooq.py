"""Daily stock prices from Stooq's CSV download.

One request per ticker: ``GET {base_url}/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD``.
The answer is CSV, oldest first, prices adjusted for splits and dividends::

    Date,Open,High,Low,Close,Volume
    2012-07-02,20.9675,21.1343,20.8646,21.1129,401880000

Rows are trading sessions, labelled 00:00 UTC of the session date (the
``XNYS`` grid). An unknown symbol or an empty range answers ``No data``
with status 200; an over-used key answers a plain-text notice. The target is
``Close``; covariates are ``open, high, low, close, volume`` (the bundled
``stocks`` dataset's columns; indices have no volume).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from forecasting.data.sources import http
from forecasting.data.sources.base import REASON, Batch, FetchUnit, Source, SourceError, empty_batch_frame, numeric_columns

DEFAULT_BASE_URL = "https://stooq.com"
DOWNLOAD_PATH = "/q/d/l/"
HEADER = ("Date", "Open", "High", "Low", "Close")
COLUMNS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
COVARIATES = ("open", "high", "low", "close", "volume")


class StooqSource(Source):
    name = "stooq"

    def __init__(
        self,
        tickers: Sequence[str],
        *,
        start: dt.date,
        suffix: str = ".us",
        base_url: str = DEFAULT_BASE_URL,
        policy: http.HttpPolicy = http.HttpPolicy(),
    ) -> None:
        self.symbols = {f"stock/{t.upper()}": f"{t.lower()}{suffix}" for t in tickers}
        self.start = start
        self.url = base_url.rstrip("/") + DOWNLOAD_PATH
        self.policy = policy

    def units(self) -> list[FetchUnit]:
        return [FetchUnit(key=sid, series_ids=(sid,)) for sid in self.symbols]

    def fetch(self, unit: FetchUnit, since: Mapping[str, pd.Timestamp | None], until: pd.Timestamp) -> Batch:
        first = since.get(unit.key)
        start = self.start if first is None else first.tz_convert("UTC").date()
        end = pd.Timestamp(until).tz_convert("UTC").date()
        params = {"s": self.symbols[unit.key], "i": "d", "d1": f"{start:%Y%m%d}", "d2": f"{end:%Y%m%d}"}
        request: dict[str, Any] = {"url": self.url, "params": params}
        if start > end:
            return Batch(self.name, unit.key, empty_batch_frame(COVARIATES), {**request, "skipped": "start after end"})
        what = f"Stooq prices for series '{unit.key}'"
        response = http.get(self.url, params, policy=self.policy, what=what)
        return Batch(self.name, unit.key, parse_daily_csv(response.text, series_id=unit.key, what=what), request)


def parse_daily_csv(text: str, *, series_id: str, what: str = "Stooq answer") -> pd.DataFrame:
    """Turn Stooq's daily CSV into a batch frame; an unreadable file raises ``SourceError``."""
    body = text.lstrip("\ufeff").strip()
    if not body or body.lower() == "no data":
        return empty_batch_frame(COVARIATES)
    first_line = body.splitlines()[0]
    header = tuple(h.strip() for h in first_line.split(","))
    if header[: len(HEADER)] != HEADER:
        if "limit" in body.lower():
            raise SourceError(f"{what}: Stooq refused the request: {first_line[:200]!r}; try again later")
        raise SourceError(
            f"{what}: malformed CSV: expected a header starting {','.join(HEADER)}, got {first_line[:200]!r}"
        )
    try:
        raw = pd.read_csv(io.StringIO(body), dtype="str", keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise SourceError(f"{what}: malformed CSV: {str(exc).strip()}") from None
    present = {k: v for k, v in COLUMNS.items() if k in raw.columns}
    values, notes = numeric_columns(raw, present)
    dates = pd.to_datetime(raw["Date"], format="%Y-%m-%d", errors="coerce")
    outside = dates.notna() & ((dates < pd.Timestamp.min.ceil("D")) | (dates > pd.Timestamp.max.floor("D")))
    stamps = dates.where(~outside).dt.tz_localize("UTC").dt.as_unit("ns")  # the store's nanoseconds: years 1678-2261
    date_notes = pd.Series("", index=raw.index, dtype="str")
    bad_dates = dates.isna()
    date_notes[bad_dates] = [f"Date {d!r} is not YYYY-MM-DD" for d in raw.loc[bad_dates, "Date"]]
    date_notes[outside] = [f"Date {d!r} is outside the years 1678-2261" for d in raw.loc[outside, "Date"]]
    frame = pd.DataFrame({"series_id": series_id, "timestamp": stamps, "target": values["close"]})
    for column in COVARIATES:
        if column in values:  # indices have no Volume column: no column rather than all-NaN rows
            frame[column] = values[column]
    frame[REASON] = (date_notes + "; " + notes).str.strip("; ").astype("str")
    return frame
