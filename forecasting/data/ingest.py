"""Incremental ingestion: fetch from where each series left off, check, fill, upsert, report.

The steps, each usable alone (the Prefect flow runs them as tasks):

1. ``plan_since``: per stored series, the last timestamp minus ``overlap``
   grid steps, so revised recent values are fetched again.
2. ``Source.fetch``: the only network step, retried inside the source.
3. ``store_batch``: per series, ``check_batch`` splits good from bad rows,
   the gap policy fills short gaps (with the stored neighbours as context),
   bad rows go to quarantine, good rows are upserted with the fetch's lineage.

A series is the unit of atomicity: its rows land completely or not at all,
and a failure in one series (or one fetch) never blocks the others. Every
outcome is a ``SeriesReport``; ``raise_for_failures`` turns the failed ones
into one error that names them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from forecasting.data.calendar import regularize
from forecasting.data.quality import check_batch
from forecasting.data.quarantine import Quarantine
from forecasting.data.sources.base import Batch, FetchUnit
from forecasting.data.store import ObservationStore
from forecasting.errors import DataValidationError, ForecastingError

if TYPE_CHECKING:  # the data layer sits below config; it only reads the config it is handed
    from forecasting.config.ingest import IngestConfig


@dataclass
class SeriesReport:
    """What one ingest did to one series."""

    dataset: str
    series_id: str
    status: str = "unchanged"
    """``changed`` (rows added or updated), ``unchanged``, ``quarantined`` (no good row), ``empty``
    (the source had nothing new) or ``failed``."""
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

    def as_dict(self) -> dict:
        return asdict(self)


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
    dataset = config.dataset
    try:
        checked = check_batch(batch.frame, config.rules(), name=f"{batch.source} batch {unit.key}")
    except DataValidationError as exc:
        return failed(dataset, unit, exc)
    series = sorted({*unit.series_ids, *checked.good["series_id"], *checked.quarantine["series_id"]})
    reports = []
    for sid in series:
        good = checked.good[checked.good["series_id"] == sid]
        bad = checked.quarantine[checked.quarantine["series_id"] == sid]
        report = SeriesReport(
            dataset, sid, fetched=len(good) + len(bad) + checked.duplicates.get(sid, 0), quarantined=len(bad),
            duplicates=checked.duplicates.get(sid, 0), pending=batch.pending if unit.series_ids == (sid,) else 0,
            problems=checked.problems.get(sid, []),
        )
        try:
            _store_series(store, config, batch, good, bad, report)
        except ForecastingError as exc:
            report.status, report.error = "failed", str(exc)
        reports.append(report)
    return reports


def failed(dataset: str, unit: FetchUnit, exc: Exception) -> list[SeriesReport]:
    """Reports for every series of a unit whose fetch or batch failed as a whole."""
    return [SeriesReport(dataset, sid, status="failed", error=str(exc)) for sid in unit.series_ids or (unit.key,)]


def ingest(config: IngestConfig, store: ObservationStore, *, now: pd.Timestamp | None = None) -> list[SeriesReport]:
    """Run every step in this process, one fetch unit after another (the flow does the same as tasks)."""
    source = config.build_source()
    since, last = plan_since(store, config), until(config, now)
    reports: list[SeriesReport] = []
    for unit in source.units():
        try:
            batch = source.fetch(unit, since, last)
        except ForecastingError as exc:
            reports.extend(failed(config.dataset, unit, exc))
            continue
        reports.extend(store_batch(store, config, batch, unit))
    return reports


def raise_for_failures(reports: Sequence[SeriesReport]) -> None:
    """One ``ForecastingError`` naming every failed series and why; nothing when none failed."""
    failures = [r for r in reports if r.status == "failed"]
    if failures:
        lines = "\n".join(f"  - {r.dataset} / {r.series_id}: {r.error}" for r in failures)
        raise ForecastingError(f"ingest failed for {len(failures)} of {len(reports)} series (the others landed):\n{lines}")


def summary_markdown(reports: Sequence[SeriesReport]) -> str:
    """A table of rows per series, then every validation problem and error."""
    head = "| dataset | series | status | fetched | added | updated | quarantined | filled | open gaps | pending |\n"
    head += "|---|---|---|---|---|---|---|---|---|---|\n"
    rows = "\n".join(
        f"| {r.dataset} | {r.series_id} | {r.status} | {r.fetched} | {r.added} | {r.updated} | {r.quarantined} "
        f"| {r.filled} | {r.open_gaps} | {r.pending} |"
        for r in reports
    )
    notes = [f"- {p}" for r in reports for p in r.problems] + [f"- **{r.series_id} failed**: {r.error}" for r in reports if r.error]
    return head + rows + ("\n\n**Problems**\n\n" + "\n".join(notes) if notes else "")


def _store_series(
    store: ObservationStore, config: IngestConfig, batch: Batch, good: pd.DataFrame, bad: pd.DataFrame, report: SeriesReport
) -> None:
    sid = report.series_id
    if good.empty and bad.empty:
        if not store.has_series(config.dataset, sid) and not report.pending:
            raise ForecastingError(
                f"{batch.source} returned no rows for series '{sid}' and nothing is stored for it yet; "
                f"check its name and the start date (request: {batch.request})"
            )
        report.status = "empty"
        return
    Quarantine(store).add(config.dataset, bad, source=batch.source, fetched_at=batch.fetched_at)
    if good.empty:
        report.status = "quarantined"
        return
    rows, filled, open_gaps = _fill_gaps(store, config, good)
    lineage = {**batch.lineage(), "filled": len(filled), "quarantined": len(bad)}
    summary = store.upsert(config.dataset, rows, lineage=lineage)
    report.added, report.updated = summary.added[sid], summary.updated[sid]
    report.unchanged, report.filled, report.open_gaps = summary.unchanged[sid], len(filled), open_gaps
    report.status = "changed" if report.added or report.updated else "unchanged"


def _fill_gaps(store: ObservationStore, config: IngestConfig, good: pd.DataFrame) -> tuple[pd.DataFrame, pd.DatetimeIndex, int]:
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
    return regular.loc[wanted].reset_index(drop=True), gaps.filled, len(gaps.open_gaps)
