"""Append-only log of every issued forecast, so monitoring can score them once actuals arrive.

Layout: ``<root>/model=<quoted name>/origin_date=<YYYY-MM-DD>/<version>-<origin>.parquet``,
one file per (model, version, origin). A batch is split by (version, origin)
and each part replaces its own file atomically: logging the same batch twice
leaves one copy, and a later origin never touches an earlier one. Reading a
time range opens only the ``origin_date`` folders inside it, so the log stays
cheap to read as it grows.

Rows are keyed by (model_name, model_version, series_id, origin, step).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd

from forecasting.data.calendar import as_utc
from forecasting.data.store import write_parquet_atomic
from forecasting.errors import ForecastingError

KEY = ["model_name", "model_version", "series_id", "origin", "step"]


def _model_dir(root: Path, model_name: str) -> Path:
    return Path(root) / f"model={quote(model_name, safe='')}"


def log_path(root: str | Path, model_name: str, version: str, origin: pd.Timestamp) -> Path:
    """The file holding one version's forecasts from one origin."""
    origin = pd.Timestamp(origin).tz_convert("UTC")
    return (
        _model_dir(Path(root), model_name)
        / f"origin_date={origin.strftime('%Y-%m-%d')}"
        / f"{quote(str(version), safe='')}-{origin.strftime('%Y%m%dT%H%M%SZ')}.parquet"
    )


def append(root: str | Path, forecasts: pd.DataFrame) -> list[Path]:
    """Add a batch of forecasts (the predict contract, with lineage columns) to the log; idempotent.

    Returns the files written, one per (version, origin) in the batch.
    """
    missing = [c for c in [*KEY, "timestamp", "mean"] if c not in forecasts.columns]
    if missing:
        raise ForecastingError(f"forecasts lack column(s) {missing} the forecast log needs; they have {list(forecasts.columns)}")
    if forecasts.empty:
        raise ForecastingError("refusing to log an empty batch of forecasts")
    names = forecasts["model_name"].unique()
    if len(names) != 1:
        raise ForecastingError(f"a forecast batch must come from one model, got {sorted(map(str, names))}")
    if forecasts.duplicated(KEY).any():
        raise ForecastingError("forecast batch repeats a (model_name, model_version, series_id, origin, step) key")
    frame = forecasts.assign(model_version=forecasts["model_version"].astype(str))
    written = []
    for (version, origin), part in frame.groupby(["model_version", "origin"], sort=True):
        path = log_path(root, str(names[0]), str(version), origin)
        write_parquet_atomic(part.sort_values(["series_id", "step"]).reset_index(drop=True), path)
        written.append(path)
    return written


def read(
    root: str | Path,
    model_name: str,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    versions: list[str] | None = None,
) -> pd.DataFrame:
    """Logged forecasts of ``model_name`` whose origin lies in ``[start, end]`` (UTC; None = open).

    Empty frame (with the key columns) when nothing matches.
    """
    lo = None if start is None else as_utc(start)
    hi = None if end is None else as_utc(end)
    directory = _model_dir(Path(root), model_name)
    frames = []
    if directory.is_dir():
        for day_dir in sorted(directory.glob("origin_date=*")):
            day = pd.Timestamp(day_dir.name.split("=", 1)[1], tz="UTC")
            if (lo is not None and day + pd.Timedelta(days=1) <= lo) or (hi is not None and day > hi):
                continue  # the whole day lies outside the range: never opened
            frames.extend(pd.read_parquet(p) for p in sorted(day_dir.glob("*.parquet")))
    if not frames:
        return pd.DataFrame(columns=[*KEY, "timestamp", "mean"])
    out = pd.concat(frames, ignore_index=True)
    out["model_version"] = out["model_version"].astype(str)
    keep = pd.Series(True, index=out.index)
    if lo is not None:
        keep &= out["origin"] >= lo
    if hi is not None:
        keep &= out["origin"] <= hi
    if versions is not None:
        keep &= out["model_version"].isin([str(v) for v in versions])
    return out[keep].sort_values(KEY).reset_index(drop=True)
