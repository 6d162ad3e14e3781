"""Observations from a CSV or Parquet file, on local disk or at an http(s) URL.

The file is either in the canonical layout (``series_id, timestamp, target,
covariates...``) or mapped to it by ``columns`` (source name -> canonical
name; only mapped columns are read). A file holding one series may omit the
series column and name the series in ``series_id``. Naive timestamps are
read in ``timezone``; without one they are an error rather than a guess.

A file has no server-side filter: it is read whole and each series is cut
at its own ``since``. Lineage records the path or URL and the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from forecasting.data.sources import http
from forecasting.data.sources.base import REASON, Batch, FetchUnit, Source, SourceError, numeric_columns
from forecasting.errors import DataValidationError

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
        self.timezone = timezone
        self.policy = policy

    def units(self) -> list[FetchUnit]:
        return [FetchUnit(key=self.path, series_ids=(self.series_id,) if self.series_id else ())]

    def fetch(self, unit: FetchUnit, since: Mapping[str, pd.Timestamp | None], until: pd.Timestamp) -> Batch:
        data = self._read_bytes()
        request = {"path": self.path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        frame = self.parse(data)
        cut = frame["series_id"].map(lambda s: since.get(s)).astype("datetime64[ns, UTC]")
        keep = frame["timestamp"].isna() | cut.isna() | (frame["timestamp"] >= cut)
        keep &= frame["timestamp"].isna() | (frame["timestamp"] <= pd.Timestamp(until))
        return Batch(self.name, unit.key, frame[keep].reset_index(drop=True), request)

    def parse(self, data: bytes) -> pd.DataFrame:
        """The file's rows as a batch frame; a layout problem raises ``DataValidationError`` listing all."""
        name = f"file {self.path}"
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
                raise DataValidationError(name, [f"mapped column(s) {absent} not in the file; it has {list(raw.columns)}"])
            raw = raw[list(self.columns)].rename(columns=self.columns)
        problems = []
        if self.series_id is not None:
            raw = raw.assign(series_id=self.series_id)
        for column in ("series_id", "timestamp", "target"):
            if column not in raw.columns:
                problems.append(f"no '{column}' column (columns after mapping: {list(raw.columns)})")
        if problems:
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
        if not path.is_file():
            raise SourceError(f"file {path} does not exist")
        return path.read_bytes()

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
                     "to the zone they were recorded in (e.g. UTC)"],
                )
            naive = naive.dt.tz_localize(self.timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        else:
            naive = naive.dt.tz_localize("UTC") if naive.dt.tz is None else naive
        stamps = naive if aware is None else aware.fillna(naive)
        stamps = stamps.dt.as_unit("ns")
        bad = stamps.isna()
        notes[bad] = [f"timestamp {v!r} is unreadable or does not exist in its zone" for v in raw[bad]]
        return stamps, notes
