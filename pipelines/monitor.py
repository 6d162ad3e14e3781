"""Monitor flow: score the logged forecasts of a model against the actuals that arrived since.

On alert the flow run ends **Failed** (``MonitorAlert``) after everything is
recorded: the summary artifact, the MLflow monitoring run, the
``monitor.alert`` tag on each version and ``<home>/monitoring/<model>/scores.parquet``.
A Prefect automation on failed ``monitor`` runs is the notification hook.
``fail_on_alert=False`` returns the summary instead (the CLI uses it to print
the table, then exits 1).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from forecasting import forecast_log, monitor, registry
from forecasting.data.store import ObservationStore, write_parquet_atomic
from forecasting.errors import ForecastingError
from pipelines._common import resolve_settings
from forecasting.predict import as_of_timestamp


class MonitorAlert(ForecastingError):
    """A monitored model misses its promise or its inputs drifted."""


@task(cache_policy=NO_CACHE)
def version_context(model_name: str, versions: list[str]) -> dict:
    """Season, dataset, freq and training window of the newest version; promised MASE of each."""
    newest = max(versions, key=lambda v: (len(v), v))
    trained = registry.load_trained(model_name, newest)
    data = trained.meta.get("data") or {}
    return {
        "season": int(trained.config.baseline.season_length),
        "dataset": trained.config.data.dataset,
        "freq": trained.config.data.freq,
        "training_window": (pd.Timestamp(data["start"]), pd.Timestamp(data["end"])) if data.get("start") else None,
        "promised": {v: monitor.promised_mase(registry.version_tags(model_name, v)) for v in versions},
    }


@task(cache_policy=NO_CACHE)
def read_actuals(store_root: str, dataset: str, series: list[str], end: pd.Timestamp | None) -> pd.DataFrame:
    store = ObservationStore(store_root)
    return store.read(dataset, [s for s in series if store.has_series(dataset, s)], end=end)


@flow(name="monitor", flow_run_name="monitor-{model_name}")
def monitor_flow(
    model_name: str,
    window_days: list[int] | None = None,
    home: str | None = None,
    as_of: str | None = None,
    promised: dict[str, float] | None = None,
    mase_factor: float = 1.5,
    coverage_band: float = 0.15,
    level_shift: float = 1.0,
    scale_ratio: float = 2.0,
    fail_on_alert: bool = True,
) -> dict:
    """Realised vs promised error of every logged version of ``model_name``; alert when it slips.

    ``as_of`` evaluates as on that date (actuals through it only); ``promised``
    overrides the promised MASE per version (default: registry tags).
    """
    settings = resolve_settings(home)
    config = monitor.MonitorSettings(windows_days=tuple(window_days or (7, 30)), mase_factor=mase_factor,
                                     coverage_band=coverage_band, level_shift=level_shift, scale_ratio=scale_ratio)
    end = None if as_of is None else as_of_timestamp(as_of)
    log = forecast_log.read(settings.home / "forecast_log", model_name, end=end)
    if log.empty:
        raise ForecastingError(f"no forecasts of model '{model_name}' in the forecast log; run `forecast predict` first")
    versions = sorted(log["model_version"].unique().tolist())
    context = version_context(model_name, versions)
    promises = {**context["promised"], **{str(k): float(v) for k, v in (promised or {}).items()}}
    actuals = read_actuals(str(settings.store_dir), context["dataset"], sorted(log["series_id"].unique()), end)
    now = end if end is not None else actuals["timestamp"].max()
    report = monitor.evaluate(log, actuals, season=context["season"], promised=promises, settings=config, now=now,
                              training_window=context["training_window"], freq=context["freq"])
    out_dir = settings.home / "monitoring" / model_name
    write_parquet_atomic(report.scored, out_dir / "scores.parquet")  # rerun over the same period: same file
    text = monitor.markdown(model_name, report)
    run_id = registry.log_monitoring(
        model_name=model_name, versions=report.versions, alerts=report.alerts, summary_markdown=text,
        params={"windows_days": ",".join(map(str, config.windows_days)), "mase_factor": mase_factor,
                "coverage_band": coverage_band, "level_shift": level_shift,
                "scale_ratio": scale_ratio, "as_of": as_of or ""},
        artifacts_dir=settings.artifacts_dir,
    )
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for version in versions:
        rows = report.versions[report.versions["model_version"] == version]
        reasons = "; ".join(a for a in rows["alert"] if a) if len(rows) else ""
        registry.tag_monitoring(model_name, version, alert=reasons[:4000], run_id=run_id, at=at)
    create_markdown_artifact(text, key=f"monitor-{model_name.lower().replace('_', '-').replace('.', '-')}")
    summary = {
        "name": model_name, "run_id": run_id, "alert": report.alert, "alerts": report.alerts,
        "logged": len(log), "scored": len(report.scored), "versions": report.versions.to_dict("records"),
        "drift": report.drift.to_dict("records"), "scores_path": str(out_dir / "scores.parquet"),
    }
    if report.alert:
        get_run_logger().warning("monitor alert for %s: %s", model_name, "; ".join(report.alerts))
        if fail_on_alert:
            raise MonitorAlert(f"model '{model_name}' alert: " + "; ".join(report.alerts))
    return summary
