"""Is the service healthy? The rules ``forecast status`` applies, as plain functions over plain data.

What needs a person (a model without a champion, a champion that loses to a baseline, a monitoring
alert, forecasts older than the data) and what the store and the forecasts folder say (newest data
and its lag, the last ingest, the last forecast). Reads files only: the registry's part of a model's
entry comes from ``forecasting.registry.overview``, so anything that can build such an entry (the CLI,
a flow, a health endpoint) judges it by the same rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forecasting.data.store import ObservationStore


def model_problems(entry: dict[str, Any]) -> list[str]:
    """What needs a person: no champion, a champion that loses to a baseline, an alert, no or stale forecasts."""
    out = []
    if entry["champion"] is None:
        out.append("no champion: `forecast predict` fails until a version passes the promotion gate or is promoted by hand")
    backtest = entry["backtest"]
    if backtest and backtest["loses_to"]:
        out.append(f"champion's backtest MASE {backtest['model']:.3g} does not beat {', '.join(backtest['loses_to'])}")
    monitoring = entry["monitoring"]
    if monitoring and monitoring["alert"]:
        out.append("monitoring alert: " + "; ".join(monitoring["alerts"]))
    forecast, ingest = entry["last_forecast"], entry["ingest"]
    if entry["champion"] is not None and forecast is None:
        out.append("no forecast yet: run `forecast predict`")
    elif forecast and ingest and ingest["newest"] and forecast["origin"] < ingest["newest"]:
        out.append(f"last forecast is from origin {forecast['origin']}; the data reaches {ingest['newest']}")
    return out


def datasets_status(store_dir: Path, now: datetime) -> list[dict[str, Any]]:
    """Per stored dataset: series, newest timestamp, its lag behind ``now``, and the last ingest that landed rows."""
    store = ObservationStore(store_dir)
    out = []
    for dataset in store.datasets():
        newest = max(store.last_timestamps(dataset).values(), default=None)
        series = store.series(dataset)
        landed = [entry for sid in series for entry in store.lineage(dataset, sid)[-1:]]
        last = max(landed, key=lambda e: str(e.get("fetched_at", "")), default={})
        lag = None if newest is None else (now - newest.to_pydatetime()).total_seconds()
        out.append({
            "dataset": dataset,
            "series": len(series),
            "newest": None if newest is None else newest.isoformat(),
            "lag_seconds": lag,
            "lag": None if lag is None else duration_text(lag),
            "last_ingest_at": _second(last.get("fetched_at")),
            "last_ingest_source": last.get("source"),
        })
    return out


def _second(stamp: object) -> str | None:
    """An ISO time to the second (lineage keeps microseconds), or the text as it was if it is no time."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp)).isoformat(timespec="seconds")
    except ValueError:
        return str(stamp)


def last_forecast(forecasts_dir: Path, name: str) -> dict[str, Any] | None:
    """The latest batch of ``name`` in the forecasts folder (``<name>/origin=YYYYMMDDTHHMMSSZ.parquet``)."""
    files = sorted((Path(forecasts_dir) / name).glob("origin=*.parquet"))
    if not files:
        return None
    path = files[-1]  # the stamp sorts as text
    origin = datetime.strptime(path.stem.removeprefix("origin="), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return {"origin": origin.isoformat(), "written_at": written.isoformat(timespec="seconds"), "path": str(path)}


def duration_text(seconds: float) -> str:
    """``45 s``, ``12 min``, ``5.2 h``, ``3.1 days``: how far behind, at a glance."""
    if seconds < 0:
        return f"{duration_text(-seconds)} ahead"
    for unit, size in (("days", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size * (2 if unit == "days" else 1):
            value = seconds / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{seconds:.0f} s"
