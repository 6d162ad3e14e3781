"""Parquet store of canonical observations, partitioned by series.

Layout: ``<root>/<dataset>/<quoted series_id>.parquet``, the series id quoted
with ``urllib.parse.quote(safe="")`` so ids like ``stock/FB`` stay one file.
One file per series keeps an upsert's writes proportional to the series it
touches, and lets readers load a subset without scanning the rest.

Every file is replaced atomically, and unchanged series are never rewritten,
so repeating an ingestion is free and leaves the files byte-identical.
Writers lock each series they touch (``<dataset>/.locks/``, advisory
``flock``), so concurrent upserts of different series proceed in parallel and
those of the same series are serialised instead of losing an update.

Lineage travels inside each partition: every write that changed the series
appends an entry (source, fetched_at, request, counts) to a JSON list in the
Parquet file's key-value metadata, so data and lineage are replaced by the
same atomic rename and can never disagree.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from forecasting.data.calendar import as_utc
from forecasting.data.schema import REQUIRED_COLUMNS, empty_observations, validate_observations
from forecasting.errors import ForecastingError

SUFFIX = ".parquet"
_MAX_FILE_NAME = 255  # bytes, the limit on common POSIX file systems
_MAX_LISTED = 20
LINEAGE_KEY = "forecasting.lineage"
"""Key of the lineage JSON in each partition's Parquet key-value metadata."""
MAX_LINEAGE = 200
"""Lineage entries kept per partition (the most recent)."""


STALE_TEMPORARY_SECONDS = 3600.0
"""A temporary file this old belongs to a writer that was killed (kill -9 skips its cleanup), even on another host."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _host() -> str:
    return socket.gethostname().replace(".", "_")  # dots separate the parts of a temporary's name


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporaries of ``path`` that killed writers left behind.

    A temporary is named ``.NAME.HOST-PID.RANDOM.tmp``: one whose writer on this host is dead goes
    at once (a rerun right after a kill -9 leaves nothing behind), any other only once it is stale.
    """
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    host = _host()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        writer = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        writer_host, _, pid = writer.rpartition("-")
        try:
            dead = writer_host == host and pid.isdigit() and not _pid_alive(int(pid))
            if dead or tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except FileNotFoundError:  # another writer got there first
            pass


def write_parquet_atomic(frame: pd.DataFrame, path: Path, *, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``frame`` (not its index) to ``path``; readers see the old or new file, never half.

    The frame goes to a temporary file in the same directory (same file system,
    so ``os.replace`` is atomic on POSIX), is fsynced, then renamed over
    ``path``. Parent directories are created. ``metadata`` is added to the
    file's key-value metadata. If anything fails the temporary file is
    removed, the previous ``path`` is left untouched and the original
    exception propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with warnings.catch_warnings():  # as pandas' own to_parquet does: pyarrow reads Series.values
                warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
                table = pa.Table.from_pandas(frame, preserve_index=False)
            if metadata:
                extra = {k.encode(): v.encode() for k, v in metadata.items()}
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)  # mkstemp creates 0600; store files are meant to be shared read-only
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class UpsertSummary:
    """Row counts per series_id of what one ``ObservationStore.upsert`` did.

    ``updated`` counts incoming rows whose timestamp was stored already with at
    least one different value; ``unchanged`` those stored with identical values.
    """

    dataset: str
    added: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]

    @property
    def total_added(self) -> int:
        return sum(self.added.values())

    @property
    def total_updated(self) -> int:
        return sum(self.updated.values())

    @property
    def total_unchanged(self) -> int:
        return sum(self.unchanged.values())

    @property
    def changed_series(self) -> list[str]:
        """Series whose stored rows gained or changed values, sorted."""
        return sorted(s for s in self.added if self.added[s] or self.updated[s])


@dataclass(frozen=True)
class SeriesFooter:
    """What one series file's Parquet footer says (column statistics): no row is read to build it."""

    series_id: str
    rows: int
    columns: tuple[str, ...]
    first: pd.Timestamp | None
    last: pd.Timestamp | None


class ObservationStore:
    """Datasets of canonical observation frames under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def datasets(self) -> list[str]:
        """Names of stored datasets, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _is_valid_name(p.name))

    def series(self, dataset: str) -> list[str]:
        """Series ids stored in ``dataset``, sorted; unknown dataset raises ``ForecastingError``."""
        directory = self._existing_dataset_dir(dataset)
        return sorted(
            unquote(p.name[: -len(SUFFIX)])
            for p in directory.iterdir()
            if p.name.endswith(SUFFIX) and p.is_file()
        )

    def describe(self, dataset: str) -> tuple[SeriesFooter, ...]:
        """Columns, row count and time range of every series of ``dataset``, from the Parquet footers only
        (whether a model can be judged on it is decided before any row loads); empty partitions are left
        out. An unknown dataset raises the error ``series`` raises."""
        directory = self._existing_dataset_dir(dataset)
        footers = (_footer(path) for path in sorted(directory.glob(f"*{SUFFIX}")))
        return tuple(f for f in footers if f is not None)

    def upsert(self, dataset: str, frame: pd.DataFrame, *, lineage: Mapping[str, Any] | None = None) -> UpsertSummary:
        """Merge ``frame`` into ``dataset`` by (series_id, timestamp); incoming values win.

        The frame is validated before anything is touched, and every merged
        series is computed before the first write. For columns the incoming
        frame provides, its values replace stored ones (NaN included); stored
        columns it lacks keep their values. Only series whose content changed
        are rewritten, each atomically, and each of those gains a lineage
        entry: ``lineage`` (e.g. source, fetched_at, request) plus the counts.
        """
        directory = self._dataset_dir(dataset)
        incoming = validate_observations(frame, name=f"upsert into dataset '{dataset}'")
        added: dict[str, int] = {}
        updated: dict[str, int] = {}
        unchanged: dict[str, int] = {}
        pending: list[tuple[Path, pd.DataFrame, dict[str, str]]] = []
        groups = {str(sid): rows.reset_index(drop=True) for sid, rows in incoming.groupby("series_id", sort=True)}
        with self.lock(dataset, list(groups)):
            for series_id, rows in groups.items():
                path = directory / _file_name(dataset, series_id)
                existing = pd.read_parquet(path) if path.exists() else None
                merged, counts = _merge(existing, rows)
                added[series_id], updated[series_id], unchanged[series_id] = counts
                if merged is not None:
                    entry = {**(lineage or {}), "added": counts[0], "updated": counts[1]}
                    history = [*(_read_lineage(path) if existing is not None else []), entry][-MAX_LINEAGE:]
                    pending.append((path, merged, {LINEAGE_KEY: json.dumps(history, default=str)}))
            for path, merged, metadata in pending:
                write_parquet_atomic(merged, path, metadata=metadata)
        return UpsertSummary(dataset=dataset, added=added, updated=updated, unchanged=unchanged)

    def lineage(self, dataset: str, series_id: str) -> list[dict[str, Any]]:
        """The writes that shaped a stored series, oldest first (at most ``MAX_LINEAGE``)."""
        path = self._existing_dataset_dir(dataset) / _file_name(dataset, series_id)
        if not path.is_file():
            raise ForecastingError(f"dataset '{dataset}' has no series {series_id!r}")
        return _read_lineage(path)

    def last_timestamps(self, dataset: str) -> dict[str, pd.Timestamp]:
        """The latest stored timestamp of every series in ``dataset`` ({} for a new dataset)."""
        directory = self._dataset_dir(dataset)
        if not directory.is_dir():
            return {}
        out = {}
        for series_id in self.series(dataset):
            stamps = pd.read_parquet(directory / _file_name(dataset, series_id), columns=["timestamp"])["timestamp"]
            if len(stamps):
                out[series_id] = stamps.max().tz_convert("UTC")
        return out

    def has_series(self, dataset: str, series_id: str) -> bool:
        return (self._dataset_dir(dataset) / _file_name(dataset, series_id)).is_file()

    @contextlib.contextmanager
    def lock(self, dataset: str, series: Sequence[str], *, kind: str = "data") -> Iterator[None]:
        """Hold exclusive advisory locks on ``series`` of ``dataset`` (taken in sorted order: no deadlock).

        Not re-entrant: a holder must not ask again for a series it holds.
        """
        directory = self._dataset_dir(dataset) / ".locks"
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            for series_id in sorted(set(series)):
                digest = hashlib.sha256(series_id.encode()).hexdigest()[:32]  # fits any file-name limit
                path = directory / f"{kind}-{digest}.lock"
                handle = stack.enter_context(open(path, "a+b"))  # noqa: SIM115 - closed by the stack
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                stack.callback(fcntl.flock, handle.fileno(), fcntl.LOCK_UN)
            yield

    def read(
        self,
        dataset: str,
        series: Sequence[str] | None = None,
        *,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Canonical frame of ``series`` (all when None) in ``dataset``, through ``end``.

        A single string is taken as one series id. Columns are the union over
        the series read; a covariate a series lacks is NaN for its rows.
        """
        available = self.series(dataset)
        if series is None:
            wanted = available
        else:
            wanted = list(dict.fromkeys([series] if isinstance(series, str) else series))
            known = set(available)
            missing = [s for s in wanted if s not in known]
            if missing:
                raise ForecastingError(
                    f"dataset '{dataset}' has no series {', '.join(repr(s) for s in missing)}; "
                    f"available series: {_preview(available)}"
                )
        cutoff = None if end is None else _utc_cutoff(end)
        directory = self._dataset_dir(dataset)
        frames = []
        for series_id in wanted:
            rows = pd.read_parquet(directory / _file_name(dataset, series_id))
            frames.append(rows if cutoff is None else rows[rows["timestamp"] <= cutoff])
        columns = _union_columns(frames)
        non_empty = [f for f in frames if len(f)]
        if not non_empty:
            return empty_observations([c for c in columns if c not in REQUIRED_COLUMNS])
        combined = pd.concat(non_empty, ignore_index=True).reindex(columns=columns)
        return validate_observations(combined, name=f"stored dataset '{dataset}'")

    def _dataset_dir(self, dataset: str) -> Path:
        if not _is_valid_name(dataset):
            raise ForecastingError(
                f"invalid dataset name {dataset!r}: use a non-empty name without path "
                "separators that does not start with '.'"
            )
        return self.root / dataset

    def _existing_dataset_dir(self, dataset: str) -> Path:
        directory = self._dataset_dir(dataset)
        if not directory.is_dir():
            raise ForecastingError(
                f"unknown dataset '{dataset}' in store {self.root}; "
                f"available datasets: {_preview(self.datasets())}"
            )
        return directory


def _footer(path: Path) -> SeriesFooter | None:
    meta = pq.ParquetFile(path).metadata
    names = tuple(meta.schema.to_arrow_schema().names)
    lows, highs, sid = [], [], None
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            stats = column.statistics
            if stats is None or not stats.has_min_max:
                continue
            if column.path_in_schema == "timestamp":
                lows.append(pd.Timestamp(stats.min))
                highs.append(pd.Timestamp(stats.max))
            elif column.path_in_schema == "series_id":
                sid = stats.min if isinstance(stats.min, str) else bytes(stats.min).decode()
    if sid is None:
        return None  # an empty partition: nothing to judge on
    first = as_utc(min(lows)) if lows else None
    last = as_utc(max(highs)) if highs else None
    return SeriesFooter(sid, meta.num_rows, names, first, last)


def _merge(
    existing: pd.DataFrame | None, incoming: pd.DataFrame
) -> tuple[pd.DataFrame | None, tuple[int, int, int]]:
    """Merge one series' incoming rows into its stored rows.

    Returns the merged frame (None when nothing would change) and the
    (added, updated, unchanged) row counts.
    """
    if existing is None:
        # A file only gains a column once some value in it is known.
        return incoming.dropna(axis="columns", how="all"), (len(incoming), 0, 0)
    old = existing.set_index("timestamp")
    new = incoming.set_index("timestamp")
    new = new.drop(columns=[c for c in new.columns if c not in old.columns and new[c].isna().all()])
    values = [c for c in new.columns if c != "series_id"]
    overlap = new.index.intersection(old.index)
    before = old.reindex(index=overlap, columns=values).to_numpy()
    after = new.loc[overlap, values].to_numpy()
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    n_updated = int((~same.all(axis=1)).sum())
    counts = (len(new) - len(overlap), n_updated, len(overlap) - n_updated)
    gained = [c for c in values if c not in old.columns]
    if counts[0] == 0 and n_updated == 0 and not gained:
        return None, counts
    merged = old.reindex(index=old.index.union(new.index), columns=[*old.columns, *gained])
    merged.loc[new.index, values] = new[values]
    merged["series_id"] = new["series_id"].iloc[0]
    merged = merged.rename_axis("timestamp").reset_index()
    return validate_observations(merged, name="merged series"), counts


def _read_lineage(path: Path) -> list[dict[str, Any]]:
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(LINEAGE_KEY.encode())
    return json.loads(raw) if raw else []


def _file_name(dataset: str, series_id: str) -> str:
    name = quote(series_id, safe="") + SUFFIX
    if len(name.encode()) > _MAX_FILE_NAME:
        raise ForecastingError(
            f"series id {series_id!r} in dataset '{dataset}' is too long to store: its quoted "
            f"file name has {len(name.encode())} bytes, the limit is {_MAX_FILE_NAME}"
        )
    return name


def _is_valid_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and name.strip() != ""
        and not name.startswith(".")
        and not any(ch in name for ch in ("/", "\\", "\0"))
    )


def _utc_cutoff(end: pd.Timestamp) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise ForecastingError(f"end={end!r} is not a timestamp: {exc}") from exc
    if stamp.tzinfo is None:
        raise ForecastingError(
            f"end={end!r} is a naive timestamp; pass a timezone-aware one, e.g. "
            f"pd.Timestamp('{stamp}', tz='UTC')"
        )
    return stamp.tz_convert("UTC")


def _union_columns(frames: list[pd.DataFrame]) -> list[str]:
    """Canonical columns first, then covariates in first-seen order."""
    covariates = dict.fromkeys(c for f in frames for c in f.columns if c not in REQUIRED_COLUMNS)
    return [*REQUIRED_COLUMNS, *covariates]


def _preview(names: list[str]) -> str:
    if not names:
        return "(none)"
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown if len(names) <= _MAX_LISTED else f"{shown}, ... ({len(names)} in total)"
