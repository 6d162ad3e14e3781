"""Incremental ingestion: fetch from where each series left off, check, fill, upsert, report.

The steps, each usable alone (the Prefect flow runs them as tasks):

1. ``plan_since``: per stored series, the last timestamp minus ``overlap``
   grid steps, so revised recent values are fetched again.
2. ``Source.fetch``: the only network step, retried inside the source.
3. ``store_batch``: per series, ``check_batch`` splits good from bad rows,
   the gap policy fills short gaps (with the stored neighbours as context),
   bad rows go to quarantine, good rows are upserted with the fetch's lineage.
   A file arrives spilled to disk per series (``SpilledBatch``): it is checked
   and stored one part at a time, each part holding whole series, so memory
   follows the part, not the file.

A series is the unit of atomicity: its rows land completely or not at all,
and a failure in one series (or one fetch) never blocks the others. A full
disk is the exception: it stops the run at once (``DiskFullError``), and
every series after it is reported as never tried, so a rerun finishes them.
Every outcome is a ``SeriesReport``; ``check_outcome`` turns failures, and a
run that landed nothing, into one error that names them all.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from forecasting.data.calendar import Grid, regularize
from forecasting.data.quality import CheckedBatch, check_batch
from forecasting.data.quarantine import Quarantine
from forecasting.data.sources.base import Batch, FetchUnit
from forecasting.data.sources.files import SpilledBatch
from forecasting.data.store import ObservationStore
from forecasting.errors import DataValidationError, ForecastingError, capped_list
from forecasting.progress import track

if TYPE_CHECKING:  # the data layer sits below config; it only reads the config it is handed
    from forecasting.config.ingest import IngestConfig


@dataclass
class SeriesReport:
    """What one ingest did to one series."""

    dataset: str
    series_id: str
    status: str = "unchanged"
    """``changed`` (rows added or updated), ``unchanged``, ``quarantined`` (no good row), ``empty``
    (the source had nothing new), ``failed`` or ``not tried`` (the run stopped first: rerun it)."""
    fetched: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    """Rows of this fetch that failed validation (all of them, including ones quarantined before)."""
    filled: int = 0
    open_gaps: int = 0
    """Gaps longer than the policy allows, left absent, in the range this fetch touched."""
    duplicates: int = 0
    pending: int = 0
    """Trailing rows the source has not published yet; fetched again next run."""
    problems: list[str] = field(default_factory=list)
    error: str = ""
    gap_spans: list[str] = field(default_factory=list)
    """Each open gap as 'first missing .. last missing (n points)', on the grid's local calendar."""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def landed(self) -> int:
        """Rows of this run now in the store: added, updated and unchanged."""
        return self.added + self.updated + self.unchanged

    @property
    def has_problems(self) -> bool:
        return bool(self.problems or self.error or self.status in ("failed", "not tried", "quarantined"))


class DiskFullError(ForecastingError):
    """The store's file system is full: no later series can land, so the run stops and says which did."""


def _disk_full(store: ObservationStore, exc: OSError) -> DiskFullError:
    return DiskFullError(
        f"the disk holding the store {store.root} is full ({exc.strerror or exc}); free space and rerun: "
        "series that landed are kept and skipped as unchanged"
    )


def plan_since(store: ObservationStore, config: IngestConfig) -> dict[str, pd.Timestamp]:
    """Per stored series of the dataset: fetch from its last timestamp minus ``overlap`` steps."""
    grid = config.grid()
    return {sid: grid.shift(last, -config.overlap) for sid, last in store.last_timestamps(config.dataset).items()}


def until(config: IngestConfig, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The last instant to fetch: the end of ``config.end``'s day, or now."""
    if config.end is not None:
        return pd.Timestamp(config.end, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")


def store_batch(store: ObservationStore, config: IngestConfig, batch: Batch, unit: FetchUnit) -> list[SeriesReport]:
    """Check, fill and store one fetched batch; one report per series, failures included."""
    if isinstance(batch, SpilledBatch):
        return _store_spilled(store, config, batch, unit)
    try:
        checked = check_batch(batch.frame, config.rules(), name=f"{batch.source} batch {unit.key}")
    except DataValidationError as exc:
        return failed(config.dataset, unit, exc)
    return _store_checked(store, config, batch, unit, checked, sorted({*unit.series_ids, *checked.good["series_id"], *checked.quarantine["series_id"]}))


def _store_spilled(store: ObservationStore, config: IngestConfig, batch: SpilledBatch, unit: FetchUnit) -> list[SeriesReport]:
    """A big file, one part at a time: every series of a part is whole, so it is checked as the whole file would be.

    Reports come back sorted by series, as for any batch; a full disk names every series not yet stored.
    """
    reports: list[SeriesReport] = []
    try:
        for frame in batch.frames():
            try:
                checked = check_batch(frame, config.rules(), name=f"{batch.source} batch {unit.key}")
            except DataValidationError as exc:
                reports.extend(failed(config.dataset, unit, exc))
                break
            series = sorted({*checked.good["series_id"], *checked.quarantine["series_id"]})
            del frame
            try:
                reports.extend(_store_checked(store, config, batch, unit, checked, series))
            except StoppedError as stop:  # a full disk: this part's reports, then every series no part reached
                reported = {r.series_id for r in (*reports, *stop.reports)}
                rest = not_tried(config.dataset, [s for s in batch.series_ids if s not in reported])
                raise StoppedError(stop.cause, sorted([*reports, *stop.reports, *rest], key=lambda r: r.series_id)) from None
        seen = {r.series_id for r in reports}
        missing = [s for s in unit.series_ids if s not in seen]  # a single-series file with no row for it
        if missing:
            reports.extend(_store_checked(store, config, batch, unit, check_batch(batch.frame, config.rules()), missing))
    except ForecastingError:
        batch.close()
        raise
    # Any other error (a transient OSError) keeps the parts, so a retry of this store step can read them again;
    # they go when the batch is garbage collected.
    batch.close()
    return sorted(reports, key=lambda r: r.series_id)


def _store_checked(
    store: ObservationStore, config: IngestConfig, batch: Batch, unit: FetchUnit, checked: CheckedBatch, series: list[str]
) -> list[SeriesReport]:
    dataset = config.dataset
    reports = []
    goods = dict(tuple(checked.good.groupby("series_id", sort=False)))  # one pass, not one scan per series
    bads = dict(tuple(checked.quarantine.groupby("series_id", sort=False)))
    for sid in track(series, f"ingest {dataset}", len(series)):
        good = goods.get(sid, checked.good.iloc[0:0])
        bad = bads.get(sid, checked.quarantine.iloc[0:0])
        report = SeriesReport(
            dataset, sid, fetched=len(good) + len(bad) + checked.duplicates.get(sid, 0), quarantined=len(bad),
            duplicates=checked.duplicates.get(sid, 0), pending=batch.pending if unit.series_ids == (sid,) else 0,
            problems=checked.problems.get(sid, []),
        )
        try:
            _store_series(store, config, batch, good, bad, report)
        except DiskFullError as exc:
            report.status, report.error = "failed", str(exc)
            reports.append(report)
            reports.extend(not_tried(dataset, [s for s in series if s > sid]))
            raise StoppedError(exc, reports) from None
        except ForecastingError as exc:
            report.status, report.error = "failed", str(exc)
        reports.append(report)
    return reports


class StoppedError(ForecastingError):
    """A run stopped by ``cause`` (a full disk), carrying the reports of everything it did and did not do."""

    def __init__(self, cause: ForecastingError, reports: list[SeriesReport]) -> None:
        self.cause, self.reports = cause, reports
        super().__init__(str(cause))

    def __reduce__(self):  # noqa: ANN204 - picklable across Prefect's task boundary
        return (StoppedError, (self.cause, self.reports))


def not_tried(dataset: str, keys: Sequence[str]) -> list[SeriesReport]:
    """Reports for series (or fetch units) a stopped run never reached."""
    return [SeriesReport(dataset, key, status="not tried", error="never tried: the run stopped first; rerun to finish it") for key in keys]


def failed(dataset: str, unit: FetchUnit, exc: Exception) -> list[SeriesReport]:
    """Reports for every series of a unit whose fetch or batch failed as a whole."""
    return [SeriesReport(dataset, sid, status="failed", error=str(exc)) for sid in unit.series_ids or (unit.key,)]


def ingest(config: IngestConfig, store: ObservationStore, *, now: pd.Timestamp | None = None) -> list[SeriesReport]:
    """Run every step in this process, one fetch unit after another (the flow does the same as tasks)."""
    source = config.build_source()
    since, last = plan_since(store, config), until(config, now)
    reports: list[SeriesReport] = []
    units = source.units()
    for k, unit in enumerate(units):
        try:
            batch = source.fetch(unit, since, last)
        except ForecastingError as exc:
            reports.extend(failed(config.dataset, unit, exc))
            continue
        try:
            reports.extend(store_batch(store, config, batch, unit))
        except StoppedError as stop:
            reports.extend(stop.reports)
            reports.extend(r for u in units[k + 1 :] for r in not_tried(config.dataset, u.series_ids or (u.key,)))
            break
    return reports


def raise_for_failures(reports: Sequence[SeriesReport]) -> None:
    """One ``ForecastingError`` naming every failed series and why; nothing when none failed."""
    failures = [r for r in reports if r.status in ("failed", "not tried")]
    if not failures:
        return
    failed_ = [r for r in failures if r.status == "failed"]
    skipped = [r for r in failures if r.status == "not tried"]
    landed = [r for r in reports if r.status not in ("failed", "not tried")]
    if len(reports) == 1:
        head = f"ingest failed for series '{reports[0].series_id}' of dataset '{reports[0].dataset}'"
    else:
        head = f"ingest failed for {len(failed_)} of {len(reports)} series "
        if skipped:
            head += f"({len(landed)} landed, {len(skipped)} never tried: rerun to finish them)"
        else:
            head += "(the others landed)" if landed else "(none landed)"
    lines = capped_list([f"{r.dataset} / {r.series_id}: {r.error}" for r in failed_])
    if skipped:
        lines += "\nnever tried: " + capped_list([r.series_id for r in skipped], bullet="")
    raise ForecastingError(f"{head}:\n{lines}")


def check_outcome(reports: Sequence[SeriesReport], *, what: str = "ingest") -> None:
    """Failures (``raise_for_failures``), then a run that landed no row at all: one line saying why."""
    raise_for_failures(reports)
    if any(r.landed or r.status == "empty" for r in reports):
        return
    fetched = sum(r.fetched for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    if not reports or fetched == 0:
        raise ForecastingError(f"{what}: 0 rows landed: the source gave no data rows (a header-only or empty file?)")
    first = next((p for r in reports for p in r.problems), "")
    raise ForecastingError(
        f"{what}: 0 rows landed: all {quarantined} of {fetched} rows were quarantined"
        + (f"; first problem: {first}" if first else "")
    )


def summary_markdown(reports: Sequence[SeriesReport]) -> str:
    """A table of rows per series, then every validation problem and error."""
    head = "| dataset | series | status | fetched | added | updated | quarantined | filled | open gaps | pending |\n"
    head += "|---|---|---|---|---|---|---|---|---|---|\n"
    rows = "\n".join(
        f"| {r.dataset} | {r.series_id} | {r.status} | {r.fetched} | {r.added} | {r.updated} | {r.quarantined} "
        f"| {r.filled} | {r.open_gaps} | {r.pending} |"
        for r in reports
    )
    notes = [f"- {p}" for r in reports for p in r.problems] + [f"- **{r.series_id} {r.status}**: {r.error}" for r in reports if r.error]
    return head + rows + ("\n\n**Problems**\n\n" + "\n".join(notes) if notes else "")


def totals(reports: Sequence[SeriesReport]) -> dict[str, int]:
    """Series and row counts over ``reports``: what a summary of thousands of series leads with."""
    keys = ("fetched", "added", "updated", "unchanged", "quarantined", "filled")
    out = {"series": len(reports), **{k: sum(getattr(r, k) for r in reports) for k in keys}}
    out["failed"] = sum(r.status == "failed" for r in reports)
    out["not_tried"] = sum(r.status == "not tried" for r in reports)
    out["with_problems"] = sum(r.has_problems for r in reports)
    return out


def problem_lines(reports: Sequence[SeriesReport], *, limit: int | None = 10) -> list[str]:
    """One line per series with problems (failed first), at most ``limit`` then a count of the rest."""
    order = {"failed": 0, "not tried": 1, "quarantined": 2}
    bad = sorted((r for r in reports if r.has_problems), key=lambda r: (order.get(r.status, 3), r.dataset, r.series_id))
    lines = []
    for r in bad if limit is None else bad[:limit]:
        detail = r.error or "; ".join(p.split(": ", 1)[-1] for p in r.problems)
        lines.append(f"{r.dataset} / {r.series_id} [{r.status}]: {detail}")
    if limit is not None and len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more series with problems (--details lists all; the CSV report has every series)")
    return lines


def write_report_csv(reports: Sequence[SeriesReport], store: ObservationStore, *, stamp: pd.Timestamp | None = None) -> list[str]:
    """The full per-series report as CSV beside each dataset's data (``<store>/<dataset>/_reports/``); returns the paths.

    A failure to write it (a full disk) is not the run's failure: the summary already says what happened.
    """
    import os
    import tempfile

    stamp = pd.Timestamp.now(tz="UTC") if stamp is None else stamp
    paths = []
    frame = pd.DataFrame([{**r.as_dict(), "problems": " | ".join(r.problems), "gap_spans": " | ".join(r.gap_spans)} for r in reports])
    for dataset, rows in frame.groupby("dataset", sort=True) if len(frame) else []:
        try:
            directory = store.root / str(dataset) / "_reports"
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"ingest-{stamp.strftime('%Y%m%dT%H%M%SZ')}.csv"
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                rows.to_csv(handle, index=False)
            os.replace(tmp, path)
            paths.append(str(path))
        except (OSError, ForecastingError):
            continue
    return paths


def _store_series(
    store: ObservationStore, config: IngestConfig, batch: Batch, good: pd.DataFrame, bad: pd.DataFrame, report: SeriesReport
) -> None:
    sid = report.series_id
    if good.empty and bad.empty:
        if not store.has_series(config.dataset, sid) and not report.pending:
            raise ForecastingError(
                f"{batch.source} returned no rows for series '{sid}' and nothing is stored for it yet (0 rows landed); "
                f"check its name and the start date (request: {batch.request})"
            )
        report.status = "empty"
        return
    try:
        Quarantine(store).add(config.dataset, bad, source=batch.source, fetched_at=batch.fetched_at)
        if good.empty:
            report.status = "quarantined"
            return
        is_new = not store.has_series(config.dataset, sid)
        rows, filled, open_gaps = _fill_gaps(store, config, good)
        lineage = {**batch.lineage(), "filled": len(filled), "quarantined": len(bad)}
        summary = store.upsert(config.dataset, rows, lineage=lineage)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _disk_full(store, exc) from None
        raise ForecastingError(f"cannot write series '{sid}' to the store {store.root}: {exc.strerror or exc}") from None
    report.added, report.updated = summary.added[sid], summary.updated[sid]
    report.unchanged, report.filled, report.open_gaps = summary.unchanged[sid], len(filled), len(open_gaps)
    report.status = "changed" if report.added or report.updated else "unchanged"
    grid = config.grid()
    report.gap_spans = [_span(grid, before, after, n) for before, after, n in open_gaps]
    if open_gaps:
        shown = capped_list(report.gap_spans, limit=5, bullet="")
        report.problems.append(
            f"series '{sid}': {len(open_gaps)} open gap(s) longer than gaps.max_fill {config.gaps.max_fill}, left absent: {shown}"
        )
    report.problems.extend(_flags(config, sid, good, is_new))


def _span(grid: Grid, before: pd.Timestamp, after: pd.Timestamp, missing: int) -> str:
    """'2024-01-05 .. 2024-01-08 (4 missing)': the first and last missing grid points, local to the grid."""
    first, last = grid.shift(before, 1), grid.shift(after, -1)
    daily = not grid.is_fixed
    fmt = (lambda t: str(grid.local_dates([t])[0].date())) if daily else (lambda t: pd.Timestamp(t).strftime("%Y-%m-%d %H:%M"))
    if missing == 1:
        return f"{fmt(first)} (1 missing)"
    return f"{fmt(first)} .. {fmt(last)} ({missing} missing)"


def _flags(config: IngestConfig, sid: str, good: pd.DataFrame, is_new: bool) -> list[str]:
    """Plausibility flags (not errors): a new series too short to train on, a constant one."""
    limits = config.limits
    flags = []
    if is_new and len(good) < limits.min_rows:
        flags.append(
            f"series '{sid}': only {len(good)} row(s), fewer than limits.min_rows {limits.min_rows}: too short for most "
            "models (lookback + horizon); lower it with 'limits: {min_rows: N}' if that is expected"
        )
    values = good["target"].to_numpy()
    if limits.flag_constant and len(values) >= 2 and (values == values[0]).all():
        flags.append(
            f"series '{sid}': constant: all {len(values)} target(s) are {values[0]:g} (a stuck sensor or a placeholder?); "
            "'limits: {flag_constant: false}' silences this"
        )
    return flags


def _fill_gaps(store: ObservationStore, config: IngestConfig, good: pd.DataFrame) -> tuple[pd.DataFrame, pd.DatetimeIndex, list]:
    """Apply the gap policy over the batch and its stored neighbours; return the rows to upsert.

    The stored point just before and just after the batch (and stored points
    inside its range that the batch lacks) are context: a gap between the
    last stored hour and the first fetched one is filled like any other.
    Returned rows are the batch's plus the filled ones, never stored rows again.
    """
    sid = good["series_id"].iloc[0]
    lo, hi = good["timestamp"].min(), good["timestamp"].max()
    context = good.iloc[0:0]
    if store.has_series(config.dataset, sid):
        stored = store.read(config.dataset, [sid])
        stamps = stored["timestamp"]
        before, after = stamps[stamps < lo], stamps[stamps > hi]
        inside = (stamps >= lo) & (stamps <= hi) & ~stamps.isin(good["timestamp"])
        keep = inside | stamps.eq(before.max()) | stamps.eq(after.min())
        context = stored.loc[keep, [c for c in good.columns if c in stored.columns]]
    combined = pd.concat([good, context], ignore_index=True) if len(context) else good
    regular, gaps = regularize(combined, config.grid(), config.gap_policy())
    wanted = regular["timestamp"].isin(good["timestamp"]) | regular["timestamp"].isin(gaps.filled)
    return regular.loc[wanted].reset_index(drop=True), gaps.filled, gaps.open_gaps
