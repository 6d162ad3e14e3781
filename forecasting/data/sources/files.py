"""Observations from a CSV or Parquet file, on local disk or at an http(s) URL.

The file is either in the canonical layout (``series_id, timestamp, target,
covariates...``) or mapped to it by ``columns`` (source name -> canonical
name; only mapped columns are read). A file holding one series may omit the
series column and name the series in ``series_id``. Naive timestamps are
read in ``timezone``; without one they are an error rather than a guess.

A file is read whole and every row is handed on: unlike a live source it has
no ``since`` cut, so older rows backfill and newer rows upsert (the upsert
counts what was unchanged). Rows dated after ``until`` (the ingest's end, or
now) are not dropped but noted, so they are quarantined with the reason.
Timestamps outside the range the store can hold (before 1677 or after 2262,
e.g. a placeholder year 0001 or 9999) quarantine their row, not the file.
Lineage records the path or URL and the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from forecasting.data.calendar import check_timezone
from forecasting.data.sources import http
from forecasting.data.sources.base import REASON, Batch, FetchUnit, Source, SourceError, numeric_columns
from forecasting.errors import DataValidationError, ForecastingError

_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


class FileSource(Source):
    name = "files"

    def __init__(
        self,
        path: str,
        *,
        format: Literal["csv", "parquet"] | None = None,
        columns: Mapping[str, str] | None = None,
        series_id: str | None = None,
        timezone: str | None = None,
        policy: http.HttpPolicy = http.HttpPolicy(),
    ) -> None:
        self.path = path
        self.is_url = path.startswith(("http://", "https://"))
        self.format = format or ("parquet" if path.lower().split("?")[0].endswith((".parquet", ".pq")) else "csv")
        self.columns = dict(columns or {})
        self.series_id = series_id
        try:
            self.timezone = None if timezone is None else check_timezone(timezone)
        except ForecastingError as exc:
            raise SourceError(f"file {path}: timezone {exc}") from None
        self.policy = policy

    def units(self) -> list[FetchUnit]:
        return [FetchUnit(key=self.path, series_ids=(self.series_id,) if self.series_id else ())]

    def fetch(self, unit: FetchUnit, since: Mapping[str, pd.Timestamp | None], until: pd.Timestamp) -> Batch:
        data = self._read_bytes()
        request = {"path": self.path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        frame = self.parse(data)
        late = frame["timestamp"].notna() & (frame["timestamp"] > pd.Timestamp(until))
        if late.any():
            note = f"timestamp is after the ingest's end {pd.Timestamp(until)} (set 'end:' later to land it)"
            frame.loc[late, REASON] = (frame.loc[late, REASON] + "; " + note).str.strip("; ")
        return Batch(self.name, unit.key, frame.reset_index(drop=True), request)

    def read_frame(self) -> pd.DataFrame:
        """The whole file as a batch frame (for inferring its grid before an ingest)."""
        return self.parse(self._read_bytes())

    def parse(self, data: bytes) -> pd.DataFrame:
        """The file's rows as a batch frame; a layout problem raises ``DataValidationError`` listing all."""
        name = f"file {self.path}"
        if not data.strip():
            raise SourceError(f"{name} is empty (0 bytes of data): 0 rows to land; expected a header line and data rows")
        try:
            if self.format == "parquet":
                raw = pd.read_parquet(io.BytesIO(data))
            else:
                raw = pd.read_csv(io.BytesIO(data), dtype="str", keep_default_na=False, skipinitialspace=True)
        except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unreadable
            raise SourceError(f"{name}: cannot read it as {self.format}: {str(exc).strip()}") from None
        if self.columns:
            absent = [c for c in self.columns if c not in raw.columns]
            if absent:
                raise DataValidationError(
                    name, [f"mapped column(s) {absent} not in the file; it has {list(raw.columns)}.\n{_mapping_hint(list(raw.columns))}"]
                )
            raw = raw[list(self.columns)].rename(columns=self.columns)
        problems = []
        if self.series_id is not None:
            raw = raw.assign(series_id=self.series_id)
        for column in ("series_id", "timestamp", "target"):
            if column not in raw.columns:
                problems.append(f"no '{column}' column (columns after mapping: {list(raw.columns)})")
        if problems:
            problems[-1] += "\n" + _mapping_hint(list(raw.columns) if not self.columns else list(self.columns))
            raise DataValidationError(name, problems)
        stamps, time_notes = self._timestamps(raw["timestamp"], name)
        value_columns = [c for c in raw.columns if c not in ("series_id", "timestamp")]
        values, value_notes = numeric_columns(raw, {c: c for c in value_columns})
        frame = pd.DataFrame({"series_id": raw["series_id"].astype("str").where(raw["series_id"].notna(), ""), "timestamp": stamps})
        frame = pd.concat([frame, values[["target", *[c for c in value_columns if c != "target"]]]], axis=1)
        frame[REASON] = (time_notes + "; " + value_notes).str.strip("; ").astype("str")
        return frame

    def _read_bytes(self) -> bytes:
        if self.is_url:
            return http.get(self.path, None, policy=self.policy, what=f"file {self.path}").content
        path = Path(self.path).expanduser()
        if path.is_dir():
            raise SourceError(f"file {path} is a directory; give the path of a CSV or Parquet file inside it")
        if not path.is_file():
            raise SourceError(f"file {path} does not exist")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SourceError(f"file {path}: cannot read it: {exc.strerror or exc}") from None

    def _timestamps(self, raw: pd.Series, name: str) -> tuple[pd.Series, pd.Series]:
        """Parse to UTC; naive values need ``timezone``. Unreadable ones become NaT with a note."""
        notes = pd.Series("", index=raw.index, dtype="str")
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            return raw.dt.tz_convert("UTC").dt.as_unit("ns"), notes
        if pd.api.types.is_datetime64_dtype(raw.dtype):
            naive, aware = raw, None
        else:
            text = raw.astype("str").str.strip()
            has_zone = text.str.contains(_TZ_SUFFIX, regex=True)
            aware = pd.to_datetime(text.where(has_zone), utc=True, format="ISO8601", errors="coerce")
            naive = pd.to_datetime(text.where(~has_zone & text.ne("")), format="ISO8601", errors="coerce")
        if naive.notna().any():
            if self.timezone is None:
                example = raw[naive.notna()].iloc[0]
                raise DataValidationError(
                    name,
                    [f"timestamps such as {str(example)!r} have no time zone; set 'timezone' in the config "
                     "to the zone they were recorded in (e.g. UTC), e.g.\n    timezone: Europe/Berlin"
                     "\n  (or --timezone Europe/Berlin with forecast ingest --file)"],
                )
            naive, outside = _within_bounds(naive)
            # Dates alone (all at midnight) are days: a midnight that DST skips starts the day an hour later.
            dates_only = bool((naive.dropna() == naive.dropna().dt.normalize()).all())
            nonexistent = "shift_forward" if dates_only else "NaT"
            naive = naive.dt.tz_localize(self.timezone, ambiguous="NaT", nonexistent=nonexistent).dt.tz_convert("UTC")
        else:
            naive, outside = _within_bounds(naive.dt.tz_localize("UTC") if naive.dt.tz is None else naive)
        if aware is not None:
            aware, outside_aware = _within_bounds(aware)
            outside = outside | outside_aware
        stamps = naive if aware is None else aware.fillna(naive)
        stamps = stamps.dt.as_unit("ns")
        bad = stamps.isna()
        notes[bad] = [f"timestamp {v!r} is unreadable or does not exist in its zone" for v in raw[bad]]
        notes[outside] = [
            f"timestamp {v!r} is outside the range the store holds ({pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d})"
            for v in raw[outside]
        ]
        return stamps, notes


def _mapping_hint(available: list[str]) -> str:
    """The config lines that map a file's own column names onto the canonical ones."""
    time_col = next((c for c in available if c.lower() in ("date", "time", "datetime", "timestamp", "day")), "date")
    value_col = next((c for c in available if c != time_col), "value")
    return (
        "  map your columns in the ingest config, e.g.\n"
        "    columns:\n"
        f"      {time_col}: timestamp\n"
        f"      {value_col}: target\n"
        "      # station: series_id   (a column naming each series; or, for one series:)\n"
        "    series_id: my-series\n"
        f"  or: forecast ingest --file FILE --dataset NAME --time-col {time_col} --target-col {value_col} [--id-col COLUMN]"
    )


def _within_bounds(stamps: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``stamps`` with values outside nanosecond range set to NaT, and the (n,) mask of those values."""
    lo, hi = pd.Timestamp.min.as_unit("us"), pd.Timestamp.max.as_unit("us")
    if stamps.dt.tz is not None:
        lo, hi = lo.tz_localize("UTC"), hi.tz_localize("UTC")
    outside = stamps.notna() & ((stamps < lo + pd.Timedelta(days=1)) | (stamps > hi - pd.Timedelta(days=1)))
    return stamps.where(~outside), outside
