"""Rows that failed validation, kept with their reasons instead of being dropped.

Layout: ``<store root>/<dataset>/_quarantine/<quoted series_id>.parquet``,
one file per series beside the series' data (rows without a series id go to
``_no_series_id``). Columns: ``series_id, timestamp, reason, record`` (the
row's values as JSON) and the ``source`` and ``fetched_at`` of the fetch
that first delivered the row.

Adding is idempotent: a row already quarantined with the same timestamp,
reason and values is not added again, so re-fetching the same bad upstream
data leaves the files byte-identical. Files are replaced atomically under the
series' quarantine lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from forecasting.data.quality import QUARANTINE_COLUMNS
from forecasting.data.store import SUFFIX, ObservationStore, _file_name, write_parquet_atomic

DIRECTORY = "_quarantine"
NO_SERIES = "_no_series_id"
COLUMNS: tuple[str, ...] = (*QUARANTINE_COLUMNS, "source", "fetched_at")
_KEY = ["timestamp", "reason", "record"]


class Quarantine:
    """The quarantined rows of the datasets in one observation store."""

    def __init__(self, store: ObservationStore) -> None:
        self.store = store

    def add(self, dataset: str, rows: pd.DataFrame, *, source: str, fetched_at: pd.Timestamp) -> dict[str, int]:
        """Keep ``rows`` (``QUARANTINE_COLUMNS``); return the count of new entries per series."""
        added: dict[str, int] = {}
        if rows.empty:
            return added
        rows = rows.assign(source=source, fetched_at=pd.Timestamp(fetched_at).isoformat())[list(COLUMNS)]
        for series_id, group in rows.groupby(rows["series_id"].fillna(""), sort=True):
            key = str(series_id) or NO_SERIES
            path = self._path(dataset, key)
            with self.store.lock(dataset, [key], kind="quarantine"):
                existing = pd.read_parquet(path) if path.exists() else None
                fresh = group if existing is None else group[~_keys(group).isin(_keys(existing))]
                fresh = fresh.drop_duplicates(subset=_KEY)
                added[key] = len(fresh)
                if len(fresh):
                    combined = fresh if existing is None else pd.concat([existing, fresh], ignore_index=True)
                    write_parquet_atomic(combined.reset_index(drop=True), path)
        return added

    def read(self, dataset: str, series: Sequence[str] | None = None) -> pd.DataFrame:
        """Quarantined rows of ``series`` (all when None), in the order they were added."""
        directory = self.store.root / dataset / DIRECTORY
        if series is None:
            paths = sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []
        else:
            paths = [self._path(dataset, s or NO_SERIES) for s in series]
        frames = [pd.read_parquet(p) for p in paths if p.is_file()]
        if not frames:
            return pd.DataFrame({c: pd.Series([], dtype="str") for c in COLUMNS}).astype(
                {"timestamp": "datetime64[ns, UTC]"}
            )
        return pd.concat(frames, ignore_index=True)

    def _path(self, dataset: str, series_key: str):  # noqa: ANN202 - Path
        return self.store._dataset_dir(dataset) / DIRECTORY / _file_name(dataset, series_key)


def _keys(frame: pd.DataFrame) -> pd.Index:
    stamps = frame["timestamp"].astype("str")  # NaT compares equal as text
    return pd.Index(stamps + "\x1f" + frame["reason"].astype("str") + "\x1f" + frame["record"].astype("str"))
