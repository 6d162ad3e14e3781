"""Ingest flows: one per source set. Thin: each task calls one library function.

- ``ingest_source_flow(config)``: live sources from an ingest YAML
  (``configs/ingest/weather.yaml``, ``configs/ingest/stocks.yaml``); deploy one
  per file on its own schedule.
- ``ingest_flow(datasets)``: the bundled sample datasets, offline (the quickstart).

Fetches run concurrently (a few threads: the APIs are shared and rate-limited),
one task per fetch unit. The fetch task has no Prefect retries on purpose:
the source retries the request itself, where it can honour ``Retry-After``
and skip retrying a 4xx; retrying the task as well would multiply the attempts.
The store task retries (an upsert is atomic and idempotent, so a retry is safe).
A run is named after its dataset and the last instant it fetches
(``ingest-weather@2026-11-23T10:05``).
Each series lands or fails on its own; the flow publishes a summary artifact
(rows fetched/added/updated/quarantined/filled per series), writes the full
per-series report as CSV beside the store (``<store>/<dataset>/_reports/``),
and then fails if any series failed or the run landed no row at all, in one
error with totals and at most ten series. A full disk stops the run; the
error names the series that landed, failed and were never tried.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import ExternalSignal
from prefect.task_runners import ThreadPoolTaskRunner

from forecasting.data.ingest import (
    SeriesReport,
    StoppedError,
    check_outcome,
    failed,
    not_tried,
    plan_since,
    store_batch,
    summary_markdown,
    totals,
    until,
    write_report_csv,
)
from forecasting.data.sources import http
from forecasting.data.sources.base import Batch, FetchUnit
from forecasting.data.sources.bundled import bundled_names
from forecasting.data.store import ObservationStore
from forecasting.errors import ForecastingError
from forecasting.config.ingest import IngestConfig, bundled_config, load_ingest_config, parse_ingest_config
from forecasting.settings import Settings
from pipelines._common import artifact_key, io_task_options, name_run, stamp

FETCH_THREADS = 4


@task(cache_policy=NO_CACHE, task_run_name="fetch {unit.key}")
def fetch(config: IngestConfig, unit: FetchUnit, since: dict[str, pd.Timestamp], last: pd.Timestamp) -> Batch:
    return config.build_source().fetch(unit, since, last)


@task(cache_policy=NO_CACHE, task_run_name="store {unit.key}", **io_task_options())
def store(store_root: str, config: IngestConfig, batch: Batch, unit: FetchUnit) -> list[SeriesReport]:
    return store_batch(ObservationStore(store_root), config, batch, unit)


def ingest_config(config: IngestConfig, store_root: str, last: pd.Timestamp | None = None) -> list[SeriesReport]:
    """Fetch every unit of one config concurrently (through ``last``, default now), then store each batch as it is read."""
    observations = ObservationStore(store_root)
    units = config.build_source().units()
    since, last = plan_since(observations, config), (until(config) if last is None else last)
    futures = [fetch.submit(config, unit, since, last) for unit in units]
    try:
        return _store_as_read(config, store_root, units, futures)
    except (KeyboardInterrupt, SystemExit, ExternalSignal):
        # SIGTERM or Ctrl-C: Prefect raises in this (the main) thread, which would then wait for the
        # fetch threads for as long as a server trickles. Stop them now; the stop takes effect at their next chunk.
        http.request_stop()
        _cancel(futures)
        raise


def _cancel(futures: list) -> None:
    """Drop the fetches not yet started (a Prefect future wraps a concurrent.futures one, which cancels)."""
    for future in futures:
        getattr(future, "wrapped_future", future).cancel()


def _store_as_read(config: IngestConfig, store_root: str, units: list[FetchUnit], futures: list) -> list[SeriesReport]:
    """Store each unit's batch as its fetch finishes, in order; a full disk ends the run and names what never landed."""
    reports: list[SeriesReport] = []
    for k, (unit, future) in enumerate(zip(units, futures, strict=True)):
        try:
            batch = future.result()
        except ForecastingError as exc:
            reports.extend(failed(config.dataset, unit, exc))
            continue
        try:
            reports.extend(store(store_root, config, batch, unit))
        except StoppedError as stop:  # the disk is full: nothing later can land
            reports.extend(stop.reports)
            reports.extend(r for u in units[k + 1 :] for r in not_tried(config.dataset, u.series_ids or (u.key,)))
            _cancel(futures[k + 1 :])
            break
    return reports


@flow(name="ingest-source", flow_run_name="ingest-source", task_runner=ThreadPoolTaskRunner(max_workers=FETCH_THREADS))
def ingest_source_flow(config: str | dict, home: str | None = None) -> list[dict]:
    """Ingest the sources of one ingest YAML (or, for ``forecast ingest --file``, its mapping) incrementally; a rerun changes nothing."""
    parsed = load_ingest_config(config) if isinstance(config, str) else parse_ingest_config(config, source="--file")
    settings = Settings.from_env(home)
    last = until(parsed)
    name_run(f"ingest-{parsed.dataset}@{stamp(last)}")
    reports = ingest_config(parsed, str(settings.store_dir), last)
    return _finish(reports, key=artifact_key("ingest", parsed.dataset), store_dir=str(settings.store_dir))


@flow(name="ingest", flow_run_name="ingest-bundled", task_runner=ThreadPoolTaskRunner(max_workers=FETCH_THREADS))
def ingest_flow(datasets: list[str] | None = None, home: str | None = None) -> list[dict]:
    """Ingest the bundled datasets (all by default) offline; a rerun adds nothing."""
    settings = Settings.from_env(home)
    configs = [bundled_config(name) for name in datasets or bundled_names()]
    name_run("ingest-bundled-" + "+".join(c.dataset for c in configs))
    reports = [r for c in configs for r in ingest_config(c, str(settings.store_dir))]
    return _finish(reports, key="ingest-summary", store_dir=str(settings.store_dir))


def _finish(reports: Sequence[SeriesReport], *, key: str, store_dir: str) -> list[dict]:
    create_markdown_artifact(summary_markdown(reports), key=key, description="Rows fetched, added, updated, quarantined and filled per series")
    paths = write_report_csv(reports, ObservationStore(store_dir))
    t = totals(reports)
    get_run_logger().info(
        "ingested %d series into %s: %d rows fetched, %d added, %d updated, %d unchanged, %d quarantined; %d failed, %d not tried%s",
        t["series"], store_dir, t["fetched"], t["added"], t["updated"], t["unchanged"], t["quarantined"], t["failed"],
        t["not_tried"], f"; report {', '.join(paths)}" if paths else "",
    )
    try:
        check_outcome(reports)
    except ForecastingError as exc:
        where = f"\nfull per-series report: {', '.join(paths)}" if paths else ""
        raise ForecastingError(f"{exc}{where}") from None
    out = per_dataset(reports)
    for row in out:
        row["report_csv"] = next((p for p in paths if f"/{row['dataset']}/" in p), "")
    return out


def per_dataset(reports: Sequence[SeriesReport]) -> list[dict]:
    """Totals per dataset (``rows`` = rows upserted) with the series reports under ``series_reports``."""
    out: dict[str, dict] = {}
    for r in reports:
        row = out.setdefault(
            r.dataset,
            {"dataset": r.dataset, "series": 0, "rows": 0, "added": 0, "updated": 0, "unchanged": 0,
             "quarantined": 0, "filled": 0, "series_reports": []},
        )
        row["series"] += 1
        row["rows"] += r.added + r.updated + r.unchanged
        row.setdefault("fetched", 0)
        row["fetched"] += r.fetched
        row.setdefault("failed", 0)
        row["failed"] += r.status in ("failed", "not tried")
        for k in ("added", "updated", "unchanged", "quarantined", "filled"):
            row[k] += getattr(r, k)
        row["series_reports"].append(r.as_dict())
    return list(out.values())
