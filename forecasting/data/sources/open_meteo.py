"""Weather from the Open-Meteo historical archive API (reanalysis, no key needed).

One request per location: ``GET {base_url}/v1/archive?latitude=..&longitude=..
&start_date=YYYY-MM-DD&end_date=YYYY-MM-DD&hourly=var1,var2&timezone=GMT``.
The answer is JSON::

    {"latitude": 52.52, "longitude": 13.419998, "utc_offset_seconds": 0,
     "timezone": "GMT", "timezone_abbreviation": "GMT", "elevation": 38.0,
     "hourly_units": {"time": "iso8601", "temperature_2m": "°C", ...},
     "hourly": {"time": ["2024-01-01T00:00", ...], "temperature_2m": [1.3, ...], ...}}

Times are local to ``timezone`` without an offset; ``utc_offset_seconds``
turns hourly ones into UTC. Daily rows are local dates, labelled 00:00 UTC of
the date (like the bundled daily data). The archive lags real time by a few
days and answers ``null`` for hours it does not have yet: a trailing run of
all-null rows is left out as *pending* (counted, not quarantined) and the
next run, which re-reads from the last stored hour, picks it up once
published. Any other null is a bad row for validation to quarantine. A bad
request answers 400 with ``{"error": true, "reason": "..."}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from forecasting.data.sources import http
from forecasting.data.sources.base import REASON, Batch, FetchUnit, Source, SourceError, empty_batch_frame, numeric_columns

DEFAULT_BASE_URL = "https://archive-api.open-meteo.com"
ARCHIVE_PATH = "/v1/archive"
MAX_UTC_OFFSET = 18 * 3600  # the widest offset a time zone has


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Location:
    name: str
    """Short name; the series id is ``weather/<name>``."""
    latitude: float
    longitude: float

    @property
    def series_id(self) -> str:
        return f"weather/{self.name}"


class OpenMeteoSource(Source):
    name = "open_meteo"

    def __init__(
        self,
        locations: Sequence[Location],
        *,
        variables: Sequence[str],
        target: str,
        start: dt.date,
        interval: Literal["hourly", "daily"] = "hourly",
        timezone: str = "GMT",
        base_url: str = DEFAULT_BASE_URL,
        policy: http.HttpPolicy = http.HttpPolicy(),
    ) -> None:
        if target not in variables:
            raise ValueError(f"target {target!r} must be one of the variables {list(variables)}")
        self.locations = {loc.series_id: loc for loc in locations}
        self.variables = tuple(variables)
        self.target = target
        self.start = start
        self.interval = interval
        self.timezone = timezone
        self.url = base_url.rstrip("/") + ARCHIVE_PATH
        self.policy = policy

    def units(self) -> list[FetchUnit]:
        return [FetchUnit(key=sid, series_ids=(sid,)) for sid in self.locations]

    def fetch(self, unit: FetchUnit, since: Mapping[str, pd.Timestamp | None], until: pd.Timestamp) -> Batch:
        location = self.locations[unit.key]
        first = since.get(unit.key)
        start = self.start if first is None else first.tz_convert("UTC").date()
        end = pd.Timestamp(until).tz_convert("UTC").date()
        params = {
            "latitude": f"{location.latitude:g}",
            "longitude": f"{location.longitude:g}",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            self.interval: ",".join(self.variables),
            "timezone": self.timezone,
        }
        request: dict[str, Any] = {"url": self.url, "params": params}
        covariates = tuple(v for v in self.variables if v != self.target)
        if start > end:  # already up to date: nothing to ask
            return Batch(self.name, unit.key, empty_batch_frame(covariates), {**request, "skipped": "start after end"})
        what = f"Open-Meteo data for series '{unit.key}'"
        response = http.get(self.url, params, policy=self.policy, what=what)
        try:
            payload = response.json()
        except ValueError as exc:
            raise SourceError(f"{what}: the answer from {response.url} is not valid JSON ({exc}); body starts {response.text[:120]!r}") from None
        frame, meta = parse_archive(payload, series_id=unit.key, variables=self.variables, target=self.target, interval=self.interval, what=what)
        return Batch(self.name, unit.key, frame, {**request, "units": meta["units"]}, pending=meta["pending"])


def parse_archive(
    payload: Any,
    *,
    series_id: str,
    variables: Sequence[str],
    target: str,
    interval: Literal["hourly", "daily"] = "hourly",
    what: str = "Open-Meteo answer",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Turn an archive answer into a batch frame and ``{"units": {variable: unit}, "pending": n}``."""
    if not isinstance(payload, dict):
        raise SourceError(f"{what}: expected a JSON object, got {type(payload).__name__}")
    if payload.get("error"):
        raise SourceError(f"{what}: Open-Meteo reports an error: {payload.get('reason', '(no reason given)')}")
    block = payload.get(interval)
    problems = []
    if not isinstance(block, dict) or not isinstance(block.get("time"), list):
        problems.append(f"no '{interval}.time' list (top-level keys: {sorted(payload)})")
        block = {}
    missing = [v for v in variables if not isinstance(block.get(v), list)] if block else []
    if missing:
        problems.append(f"no '{interval}' values for {missing}")
    lengths = {k: len(block[k]) for k in ("time", *variables) if isinstance(block.get(k), list)}
    if len(set(lengths.values())) > 1:
        problems.append(f"'{interval}' arrays differ in length: {lengths}")
    for key in ("time", *variables):
        values = block.get(key) if isinstance(block, dict) else None
        if isinstance(values, list):
            odd = next((v for v in values if isinstance(v, (dict, list, bool))), None)
            huge = next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**63 - 1), None)
            if odd is not None:
                problems.append(f"'{interval}.{key}' holds {type(odd).__name__} {_short(odd)}, not numbers or times")
            elif huge is not None:
                problems.append(f"'{interval}.{key}' holds the integer {_short(huge)}, too large for any number or time")
    offset = payload.get("utc_offset_seconds", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or abs(offset) > MAX_UTC_OFFSET:
        problems.append(f"utc_offset_seconds is {_short(offset)}, not a whole number of seconds within +-18 h")
    units = payload.get(f"{interval}_units") or {}
    if not isinstance(units, dict):
        problems.append(f"'{interval}_units' is {type(units).__name__} {_short(units)}, not an object")
    if problems:
        raise SourceError(f"{what}: unexpected answer format: " + "; ".join(problems))

    covariates = tuple(v for v in variables if v != target)
    units = {str(k): str(v) for k, v in units.items()}
    raw = pd.DataFrame({k: pd.Series(block[k], dtype=object) for k in ("time", *variables)})
    published = np.flatnonzero(raw[list(variables)].notna().any(axis=1).to_numpy())
    pending = len(raw) - (int(published[-1]) + 1 if len(published) else 0)
    raw = raw.iloc[: len(raw) - pending]
    if raw.empty:
        return empty_batch_frame(covariates), {"units": units, "pending": pending}
    stamps, time_notes = _parse_times(raw["time"], interval, offset)
    values, value_notes = numeric_columns(raw, {v: ("target" if v == target else v) for v in variables})
    frame = pd.DataFrame({"series_id": series_id, "timestamp": stamps})
    frame = pd.concat([frame, values[["target", *covariates]]], axis=1)
    frame[REASON] = (time_notes + "; " + value_notes).str.strip("; ").astype("str")
    return frame, {"units": units, "pending": pending}


def _parse_times(raw: pd.Series, interval: str, offset: int) -> tuple[pd.Series, pd.Series]:
    """ISO local times (or unix seconds) to UTC; unreadable ones become NaT with a note."""
    if len(raw) and all(isinstance(t, int) and not isinstance(t, bool) for t in raw):  # timeformat=unixtime
        seconds = raw.astype("int64")
        lowest, highest = pd.Timestamp.min.ceil("s").value // 10**9, pd.Timestamp.max.floor("s").value // 10**9
        outside = (seconds < lowest) | (seconds > highest)
        stamps = pd.to_datetime(seconds.where(~outside), unit="s", utc=True).dt.as_unit("ns")
        notes = pd.Series("", index=raw.index, dtype="str")
        notes[outside] = [f"time {t} (unix seconds) is outside the years 1678-2261" for t in raw[outside]]
        return stamps, notes
    fmt = "%Y-%m-%dT%H:%M" if interval == "hourly" else "%Y-%m-%d"
    local = pd.to_datetime(raw.astype("str"), format=fmt, errors="coerce")
    unreadable = local.isna()
    if interval == "hourly":
        local = local - pd.Timedelta(seconds=offset)
    outside = local.notna() & ((local < pd.Timestamp.min.ceil("D")) | (local > pd.Timestamp.max.floor("D")))
    stamps = local.where(~outside).dt.tz_localize("UTC").dt.as_unit("ns")  # the store's nanoseconds: years 1678-2261
    notes = pd.Series("", index=raw.index, dtype="str")
    notes[unreadable] = [f"time {t!r} is not {fmt}" for t in raw[unreadable]]
    notes[outside] = [f"time {t!r} is outside the years 1678-2261" for t in raw[outside]]
    return stamps, notes
