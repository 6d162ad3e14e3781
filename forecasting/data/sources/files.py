"""Observations from a CSV or Parquet file, on local disk or at an http(s) URL.

The file is either in the canonical layout (``series_id, timestamp, target,
covariates...``) or mapped to it by ``columns`` (source name -> canonical
name; only mapped columns are read). A file holding one series may omit the
series column and name the series in ``series_id``. Naive timestamps are
read in ``timezone``; without one they are an error rather than a guess.

The file is streamed once, ``read_batch_rows`` rows at a time (pyarrow's CSV
and Parquet readers), and each parsed row is appended to its series' part, a
temporary Arrow IPC file (series hash to parts); the ingest then validates and
stores one part at a time, so peak memory follows the batch and the largest
series, not the file. A URL's body is held in memory (its bytes, not parsed).

Every row is handed on: unlike a live source it has
no ``since`` cut, so older rows backfill and newer rows upsert (the upsert
counts what was unchanged). Rows dated after ``until`` (the ingest's end, or
now) are not dropped but noted, so they are quarantined with the reason.
Timestamps outside the range the store can hold (before 1677 or after 2262,
e.g. a placeholder year 0001 or 9999) quarantine their row, not the file.
Lineage records the path or URL and the file's SHA-256.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from forecasting.data.calendar import check_timezone
from forecasting.data.sources import http
from forecasting.data.sources.base import REASON, Batch, FetchUnit, Source, SourceError, empty_batch_frame, numeric_columns
from forecasting.errors import DataValidationError, ForecastingError

_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


DEFAULT_READ_BATCH_ROWS = 100_000
"""Rows parsed at a time: peak memory is a small multiple of this, not of the file."""

_ALT = "_shifted"  # a naive midnight DST skips, shifted forward: used when the whole file holds dates only
_TIME_NOTE, _VALUE_NOTE = "_time_note", "_value_note"
_ROW_BYTES = 32  # a conservative bytes-per-row guess, to size the spill's parts before the rows are counted
_MAX_PARTS = 256
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")
"""Parts are Arrow IPC streams: a writer buffers nothing between batches (a Parquet writer holds pages per part)."""


@dataclass
class SpilledBatch(Batch):
    """A file's rows on disk, partitioned by series into Arrow parts; ``frame`` holds no rows.

    Every row of one series is in one part, in file order, so a part is validated whole
    (duplicates, gaps) like the file was. ``frames`` yields one batch frame per part;
    the parts are deleted by ``close`` (or when the batch is garbage collected).
    """

    parts: tuple[str, ...] = ()
    series_ids: tuple[str, ...] = ()
    """Every series id in the file, stripped as validation strips them."""
    until: pd.Timestamp | None = None
    dates_only: bool = False
    directory: str = ""
    rows: int = 0

    def frames(self) -> Iterator[pd.DataFrame]:
        """Each part as a batch frame (``series_id, timestamp, target, covariates..., REASON``)."""
        for part in self.parts:
            yield _finish(_read_part(part), self.dates_only, self.until)

    def read_all(self) -> pd.DataFrame:
        """Every row at once (small files and tests; the ingest reads ``frames``)."""
        frames = list(self.frames())
        return pd.concat(frames, ignore_index=True) if frames else self.frame

    def close(self) -> None:
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


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
        read_batch_rows: int = DEFAULT_READ_BATCH_ROWS,
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
        self.read_batch_rows = max(1, int(read_batch_rows))

    def units(self) -> list[FetchUnit]:
        return [FetchUnit(key=self.path, series_ids=(self.series_id,) if self.series_id else ())]

    def fetch(self, unit: FetchUnit, since: Mapping[str, pd.Timestamp | None], until: pd.Timestamp) -> SpilledBatch:
        """Stream the file once, ``read_batch_rows`` at a time, into per-series parts on disk."""
        directory = tempfile.mkdtemp(prefix="forecasting-file-")
        try:
            spilled = self._spill(Path(directory))
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        request, parts, ids, dates_only, value_columns, rows = spilled
        batch = SpilledBatch(
            self.name, unit.key, empty_batch_frame(tuple(c for c in value_columns if c != "target")), request,
            parts=parts, series_ids=ids, until=pd.Timestamp(until), dates_only=dates_only, directory=directory, rows=rows,
        )
        weakref.finalize(batch, shutil.rmtree, directory, True)
        return batch

    def read_frame(self) -> pd.DataFrame:
        """The whole file as a batch frame (for inferring its grid before an ingest)."""
        batch = self.fetch(self.units()[0], {}, pd.Timestamp.max.tz_localize("UTC"))
        try:
            return batch.read_all()
        finally:
            batch.close()

    def longest_series(self) -> pd.DataFrame:
        """``series_id, timestamp`` of the series with the most readable timestamps (ties: the first id), streamed.

        What ``calendar.infer_freq`` reads, without the whole file in memory.
        """
        batch = self.fetch(self.units()[0], {}, pd.Timestamp.max.tz_localize("UTC"))
        best, key = batch.frame[["series_id", "timestamp"]], (0, "")
        try:
            for frame in batch.frames():
                stamps = frame.loc[frame["timestamp"].notna(), ["series_id", "timestamp"]]
                if stamps.empty:
                    continue
                counts = stamps.groupby("series_id").size()
                sid = counts.idxmax()
                n = int(counts[sid])
                if n > key[0] or (n == key[0] and sid < key[1]):
                    best, key = stamps[stamps["series_id"] == sid].reset_index(drop=True), (n, sid)
        finally:
            batch.close()
        return best

    def parse(self, data: bytes) -> pd.DataFrame:
        """The rows of ``data`` (the file's bytes) as a batch frame; a layout problem raises ``DataValidationError``."""
        directory = tempfile.mkdtemp(prefix="forecasting-file-")
        try:
            _, parts, _, dates_only, value_columns, _ = self._spill(Path(directory), data=data)
            frames = [_finish(_read_part(p), dates_only, None) for p in parts]
            empty = empty_batch_frame(tuple(c for c in value_columns if c != "target"))
            return pd.concat(frames, ignore_index=True) if frames else empty
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _spill(self, directory: Path, data: bytes | None = None) -> tuple[dict, tuple[str, ...], tuple[str, ...], bool, list[str], int]:
        """Parse the file batch by batch and append each row to its series' part (hash of the stripped id)."""
        name = f"file {self.path}"
        if data is None and self.is_url:
            data = http.get(self.path, None, policy=self.policy, what=name).content
        if data is not None:
            request = {"path": self.path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            if not data.strip():
                raise SourceError(f"{name} is empty (0 bytes of data): 0 rows to land; expected a header line and data rows")
            opener, size = (lambda: pa.BufferReader(data)), len(data)
        else:
            path = self._local_path()
            request = {"path": self.path, **_digest(path)}
            size = request["bytes"]
            with path.open("rb") as handle:
                head = handle.read(1 << 16)
            if not head.strip() and (size <= len(head) or not _has_data(path)):
                raise SourceError(f"{name} is empty (0 bytes of data): 0 rows to land; expected a header line and data rows")
            opener = lambda: pa.OSFile(str(path))  # noqa: E731
        n_parts = 1
        writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        schema = None
        ids: set[str] = set()
        dates_only, value_columns, rows = True, [], 0
        try:
            batches = self._raw_batches(opener, name, size)
            for raw in batches:
                frame, midnight = self._parse_batch(raw, name)
                dates_only &= midnight
                if schema is None:
                    value_columns = [c for c in frame.columns if c not in ("series_id", "timestamp", _TIME_NOTE, _VALUE_NOTE, _ALT)]
                    schema = _spill_schema(value_columns)
                    csv_ = self.format == "csv"
                    n_parts = _parts_for(size if csv_ else batches.total, self.read_batch_rows, per_row=_ROW_BYTES if csv_ else 1)
                stripped = frame["series_id"].str.strip()
                ids.update(stripped.unique().tolist())
                rows += len(frame)
                keys = pd.util.hash_array(stripped.to_numpy(dtype=object)) % n_parts if n_parts > 1 else np.zeros(len(frame), dtype=np.uint64)
                table = _to_arrow(frame, schema)
                for key in np.unique(keys):
                    key = int(key)
                    if key not in writers:
                        writers[key] = pa.ipc.new_stream(str(directory / f"part-{key:04d}.arrows"), schema, options=_IPC)
                    writers[key].write_table(table.filter(pa.array(keys == key)))
        except OSError as exc:  # reading errors are SourceErrors already: this is the spill's disk
            raise SourceError(
                f"{name}: cannot write its per-series parts under {directory}: {exc.strerror or exc} "
                "(set TMPDIR to a folder with room for about the file's size)"
            ) from None
        finally:
            for writer in writers.values():
                writer.close()
        if schema is None:  # no data row: a header-only file
            value_columns = [c for c in self._header_columns(opener, name) if c not in ("series_id", "timestamp")]
        if self.series_id:
            ids.add(self.series_id.strip())
        parts = tuple(str(directory / f"part-{k:04d}.arrows") for k in sorted(writers))
        return request, parts, tuple(sorted(ids)), dates_only, value_columns, rows

    def _local_path(self) -> Path:
        path = Path(self.path).expanduser()
        if path.is_dir():
            raise SourceError(f"file {path} is a directory; give the path of a CSV or Parquet file inside it")
        if not path.is_file():
            raise SourceError(f"file {path} does not exist")
        return path

    def _raw_batches(self, opener, name: str, size: int) -> _Batches:
        """The file's raw rows, ``read_batch_rows`` at a time: text columns for CSV, typed ones for Parquet."""
        try:
            if self.format == "parquet":
                handle = pq.ParquetFile(opener())
                available = handle.schema_arrow.names
                self._check_mapped(available, name)
                wanted = list(self.columns) if self.columns else None
                total = handle.metadata.num_rows
                frames = (_arrow_to_pandas(b) for b in handle.iter_batches(batch_size=self.read_batch_rows, columns=wanted))
                return _Batches(_guarded(frames, name, "parquet"), total)
            names = self._csv_names(opener, name)
            self._check_mapped(names, name)
            return _Batches(self._csv_batches(opener, names, name), 0)
        except ForecastingError:
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unreadable
            raise SourceError(f"{name}: cannot read it as {self.format}: {str(exc).strip()}") from None

    def _csv_names(self, opener, name: str) -> list[str]:
        with opener() as stream:
            head = stream.read(1 << 16)
        try:
            line = head[: head.find(b"\n") + 1] if b"\n" in head else head  # the header line alone
            reader = pacsv.open_csv(pa.BufferReader(line))
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"{name}: cannot read it as csv: {str(exc).strip()}") from None
        return [n.lstrip(" ") for n in reader.schema.names]

    def _csv_batches(self, opener, names: list[str], name: str) -> Iterator[pd.DataFrame]:
        """CSV blocks of about ``read_batch_rows`` rows, every cell text (as ``pandas.read_csv(dtype=str)`` with blanks kept)."""
        with opener() as stream:
            sample = stream.read(1 << 16)
        lines = sample.count(b"\n") or 1
        block = max(1 << 16, int(len(sample) / lines * self.read_batch_rows * 1.2))
        wanted = list(self.columns) if self.columns else names
        short: list[list[str]] = []

        def invalid(row: pacsv.InvalidRow) -> str:
            if row.actual_columns < row.expected_columns:  # as pandas did: missing trailing cells are blank
                cells = next(csv.reader([row.text]), [])
                short.append([*cells, *[None] * (row.expected_columns - len(cells))])
                return "skip"
            return "error"

        try:
            reader = pacsv.open_csv(
                opener(),
                read_options=pacsv.ReadOptions(block_size=block, column_names=names, skip_rows=1),
                parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=False, include_columns=wanted
                ),
            )
            for record in reader:
                table = pa.Table.from_arrays([pc.utf8_ltrim(record.column(n), characters=" ") for n in wanted], names=wanted)
                for offset in range(0, len(table), self.read_batch_rows):
                    yield table.slice(offset, self.read_batch_rows).to_pandas()
                if short:
                    yield _short_rows(short, names, wanted)
                    short.clear()
            if short:
                yield _short_rows(short, names, wanted)
        except ForecastingError:
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unreadable
            raise SourceError(f"{name}: cannot read it as csv: {str(exc).strip()}") from None

    def _header_columns(self, opener, name: str) -> list[str]:
        """Canonical column names of a file without data rows."""
        if self.format == "parquet":
            available = pq.ParquetFile(opener()).schema_arrow.names
        else:
            available = self._csv_names(opener, name)
        columns = [self.columns[c] for c in self.columns] if self.columns else list(available)
        if self.series_id is not None and "series_id" not in columns:
            columns = ["series_id", *columns]
        self._check_required(columns, name)
        return [c for c in columns if c not in ("series_id", "timestamp")]

    def _check_mapped(self, available: list[str], name: str) -> None:
        if self.columns:
            absent = [c for c in self.columns if c not in available]
            if absent:
                raise DataValidationError(
                    name, [f"mapped column(s) {absent} not in the file; it has {list(available)}.\n{_mapping_hint(list(available))}"]
                )

    def _check_required(self, columns: list[str], name: str) -> None:
        problems = [f"no '{c}' column (columns after mapping: {columns})" for c in ("series_id", "timestamp", "target") if c not in columns]
        if problems:
            problems[-1] += "\n" + _mapping_hint(columns if not self.columns else list(self.columns))
            raise DataValidationError(name, problems)

    def _parse_batch(self, raw: pd.DataFrame, name: str) -> tuple[pd.DataFrame, bool]:
        """One raw batch as spill rows, and whether its naive timestamps are all midnights (dates alone)."""
        if self.columns:
            raw = raw[list(self.columns)].rename(columns=self.columns)
        if self.series_id is not None:
            raw = raw.assign(series_id=self.series_id)
        self._check_required(list(raw.columns), name)
        stamps, alt, time_notes, midnight = self._timestamps(raw["timestamp"], name)
        value_columns = [c for c in raw.columns if c not in ("series_id", "timestamp")]
        values, value_notes = numeric_columns(raw, {c: c for c in value_columns})
        frame = pd.DataFrame({"series_id": raw["series_id"].astype("str").where(raw["series_id"].notna(), ""), "timestamp": stamps})
        frame = pd.concat([frame, values[["target", *[c for c in value_columns if c != "target"]]]], axis=1)
        frame[_TIME_NOTE], frame[_VALUE_NOTE], frame[_ALT] = time_notes.astype("str"), value_notes.astype("str"), alt
        return frame, midnight

    def _timestamps(self, raw: pd.Series, name: str) -> tuple[pd.Series, pd.Series, pd.Series, bool]:
        """Parse to UTC; naive values need ``timezone``. Unreadable ones become NaT with a note.

        Also returns, for naive midnights that DST skips, the instant shifted forward (NaT elsewhere),
        and whether every naive value is a midnight: a file of dates alone uses the shifted instants.
        """
        notes = pd.Series("", index=raw.index, dtype="str")
        alt = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            return raw.dt.tz_convert("UTC").dt.as_unit("ns"), alt, notes, True
        midnight = True
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
            # Whether the file holds dates alone is known only at its end, so both readings are kept.
            midnight = bool((naive.dropna() == naive.dropna().dt.normalize()).all())
            local = naive.dt.tz_localize(self.timezone, ambiguous="NaT", nonexistent="NaT")
            if midnight:
                shifted = naive.dt.tz_localize(self.timezone, ambiguous="NaT", nonexistent="shift_forward")
                differs = shifted.notna() & local.isna()
                if differs.any():
                    alt[differs] = shifted[differs].dt.tz_convert("UTC").dt.as_unit("ns")
            naive = local.dt.tz_convert("UTC")
        else:
            naive, outside = _within_bounds(naive.dt.tz_localize("UTC") if naive.dt.tz is None else naive)
        if aware is not None:
            aware, outside_aware = _within_bounds(aware)
            outside = outside | outside_aware
            alt = alt.where(aware.isna())
        stamps = naive if aware is None else aware.fillna(naive)
        stamps = stamps.dt.as_unit("ns")
        bad = stamps.isna()
        notes[bad] = [f"timestamp {v!r} is unreadable or does not exist in its zone" for v in raw[bad]]
        notes[outside] = [
            f"timestamp {v!r} is outside the range the store holds ({pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d})"
            for v in raw[outside]
        ]
        return stamps, alt, notes, midnight


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


class _Batches:
    """An iterator of raw frames with the file's row count where the format knows it (Parquet)."""

    def __init__(self, frames: Iterator[pd.DataFrame], total: int) -> None:
        self._frames, self.total = frames, total

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return iter(self._frames)


def _short_rows(rows: list[list], names: list[str], wanted: list[str]) -> pd.DataFrame:
    """Rows with missing trailing cells, as pandas read them: the missing cells null, the rest left-trimmed."""
    frame = pd.DataFrame(rows, columns=names, dtype=object)[wanted]
    return frame.apply(lambda c: c.where(c.isna(), c.astype("str").str.lstrip(" ")))


def _guarded(frames: Iterator[pd.DataFrame], name: str, fmt: str) -> Iterator[pd.DataFrame]:
    """``frames``, with a reader failure part-way (a truncated or corrupt file) as one ``SourceError``."""
    try:
        yield from frames
    except ForecastingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unreadable
        raise SourceError(f"{name}: cannot read it as {fmt}: {str(exc).strip()}") from None


def _arrow_to_pandas(batch: pa.RecordBatch) -> pd.DataFrame:
    """A Parquet batch as pandas, once its text is checked to be UTF-8 (a damaged file fails here, as unreadable)."""
    batch.validate(full=True)
    return batch.to_pandas()


def _parts_for(size: int, batch_rows: int, *, per_row: int) -> int:
    """How many parts to spill into: each about one read batch of rows, at most ``_MAX_PARTS`` open files."""
    return int(min(_MAX_PARTS, max(1, -(-size // (per_row * batch_rows)))))


def _to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame`` in the spill's schema; UTC instants go over as their int64 nanoseconds (no copy through objects)."""
    arrays = []
    for column in schema:
        values = frame[column.name]
        if pa.types.is_timestamp(column.type):
            nanos = values.dt.tz_convert("UTC").dt.as_unit("ns").array.asi8
            arrays.append(pa.array(nanos, type=pa.int64(), mask=values.isna().to_numpy()).cast(column.type))
        else:
            arrays.append(pa.array(values.to_numpy(dtype=object if column.type == pa.string() else "float64"), type=column.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _read_part(path: str) -> pd.DataFrame:
    with pa.OSFile(path) as handle:
        return pa.ipc.open_stream(handle).read_all().to_pandas()


def _spill_schema(value_columns: list[str]) -> pa.Schema:
    return pa.schema(
        [("series_id", pa.string()), ("timestamp", pa.timestamp("ns", tz="UTC")), *[(c, pa.float64()) for c in value_columns],
         (_TIME_NOTE, pa.string()), (_VALUE_NOTE, pa.string()), (_ALT, pa.timestamp("ns", tz="UTC"))]
    )


def _finish(part: pd.DataFrame, dates_only: bool, until: pd.Timestamp | None) -> pd.DataFrame:
    """A spilled part as a batch frame: the file-wide reading of skipped midnights, then the notes joined."""
    part["series_id"] = part["series_id"].astype("str")
    part["timestamp"] = part["timestamp"].dt.as_unit("ns")
    time_notes = part[_TIME_NOTE].astype("str")
    if dates_only:
        use = part[_ALT].notna()
        if use.any():
            part.loc[use, "timestamp"] = part.loc[use, _ALT].dt.as_unit("ns")
            time_notes = time_notes.where(~use, "")
    part[REASON] = (time_notes + "; " + part[_VALUE_NOTE].astype("str")).str.strip("; ").astype("str")
    frame = part.drop(columns=[_TIME_NOTE, _VALUE_NOTE, _ALT])
    if until is not None:
        late = frame["timestamp"].notna() & (frame["timestamp"] > until)
        if late.any():
            note = f"timestamp is after the ingest's end {until} (set 'end:' later to land it)"
            frame.loc[late, REASON] = (frame.loc[late, REASON] + "; " + note).str.strip("; ")
    return frame.reset_index(drop=True)


def _digest(path: Path) -> dict:
    """SHA-256 and size of a local file, read in chunks."""
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256")
        return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}
    except OSError as exc:
        raise SourceError(f"file {path}: cannot read it: {exc.strerror or exc}") from None


def _has_data(path: Path) -> bool:
    """Whether a file whose first 64 KiB are blank holds anything but whitespace further on."""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            if chunk.strip():
                return True
    return False
