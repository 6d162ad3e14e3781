"""Monitor flow: score the logged forecasts of a model against the actuals that arrived since.

On alert, after everything is recorded (the summary artifact, the MLflow
monitoring run, the ``monitor.alert`` tag on each version and
``<home>/monitoring/<model>/scores.parquet``), the flow

1. starts the model's retrain deployment when ``retrain_on_alert`` is set
   (``configs/monitor/settings.yaml`` or the flow parameter): fire-and-forget
   (``run_deployment(timeout=0)``), once per alert (:func:`forecasting.monitor.alert_key`:
   model, version in service, period end): a rerun over the same period finds
   the ``monitor.retrain_key`` tag on the version (and Prefect's idempotency
   key on the flow run) and starts nothing;
2. emits the Prefect event ``forecasting.monitor.alert`` about resource
   ``forecasting.model.<name>.v<version>``, for automations and notifications;
3. ends **Failed** (``MonitorAlert``), so an automation on failed ``monitor``
   runs works too. ``fail_on_alert=False`` returns the summary instead (the
   CLI prints the table, then exits 1).

Tasks that read or write stores (forecast log, observation store, MLflow)
retry; scoring is pure and starting a retrain is guarded by the alert key,
so neither is retried blindly.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_run

from forecasting.config.model import read_yaml
from forecasting.config.monitor import MonitorSettings, load_settings
from forecasting.data.store import ObservationStore, write_parquet_atomic
from forecasting.errors import ForecastingError
from forecasting.ops import forecast_log, monitor
from forecasting.predict import as_of_timestamp
from forecasting.registry import models as registry
from pipelines._common import resolve_settings
from pipelines.deployments import DEFAULT_SCHEDULES, load_schedules

ALERT_EVENT = "forecasting.monitor.alert"
IO_RETRIES = {"retries": 2, "retry_delay_seconds": 2}


class MonitorAlert(ForecastingError):
    """A monitored model misses its promise or its inputs drifted."""


def _version_order(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if str(version).isdigit() else (1, str(version))


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def read_log(root: str, model_name: str, end: pd.Timestamp | None) -> pd.DataFrame:
    """The logged forecasts of ``model_name`` issued through ``end``."""
    return forecast_log.read(root, model_name, end=end)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def version_context(model_name: str, versions: list[str]) -> dict[str, dict[str, Any]]:
    """Per version, its own settings: season, dataset, freq, training window, promised MASE, retrain tags.

    Every version is held to what it was trained and backtested with, not to
    the newest version's settings.
    """
    out = {}
    for version in versions:
        trained = registry.load_trained(model_name, version)
        data = trained.meta.get("data") or {}
        tags = registry.version_tags(model_name, version)
        out[version] = {
            "season": int(trained.config.baseline.season_length),
            "dataset": trained.config.data.dataset,
            "freq": trained.config.data.freq,
            "timezone": trained.config.data.calendar_timezone,
            "quantiles": list(getattr(trained.config.model, "quantiles", None) or []),
            "training_window": (pd.Timestamp(data["start"]), pd.Timestamp(data["end"])) if data.get("start") else None,
            "promised": monitor.promised_mase(tags),
            "retrain_key": tags.get("monitor.retrain_key", ""),
            "retrain_flow_run": tags.get("monitor.retrain_flow_run", ""),
        }
    return out


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def read_actuals(store_root: str, dataset: str, series: list[str], end: pd.Timestamp | None) -> pd.DataFrame:
    store = ObservationStore(store_root)
    return store.read(dataset, [s for s in series if store.has_series(dataset, s)], end=end)


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def write_scores(scored: pd.DataFrame, path: str) -> None:
    write_parquet_atomic(scored, Path(path))  # rerun over the same period: same file


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def log_run(model_name: str, report: monitor.MonitorReport, text: str, params: dict[str, Any], artifacts_dir: str) -> str:
    return registry.log_monitoring(model_name=model_name, versions=report.versions, alerts=report.alerts,
                                   summary_markdown=text, params=params, artifacts_dir=Path(artifacts_dir))


@task(cache_policy=NO_CACHE, **IO_RETRIES)
def tag_versions(model_name: str, tags: dict[str, dict[str, Any]]) -> None:
    for version, values in tags.items():
        registry.tag_version(model_name, version, values)


def default_retrain_deployment(model_name: str, schedules: str | Path | None = None) -> tuple[str | None, str]:
    """The ``train/<name>`` deployment of the schedules file whose config trains ``model_name``, and how it was found.

    Deployments are declared in ``configs/schedules.yaml`` (pipelines.deployments);
    a train deployment's ``config_path`` names the model through the config's
    ``name``. None (with the reason) when no deployment, or more than one, trains it.
    """
    path = schedules or DEFAULT_SCHEDULES
    try:
        config = load_schedules(path)
    except ForecastingError as exc:
        return None, f"could not read the schedules ({exc})"
    found = []
    for name, spec in config.deployments.items():
        config_path = spec.parameters.get("config_path")
        if spec.flow != "train" or not config_path:
            continue
        try:
            if read_yaml(config_path).get("name") == model_name:
                found.append(f"train/{name}")
        except ForecastingError:
            continue
    if len(found) == 1:
        return found[0], f"the train deployment of {Path(path).name} that trains {model_name}"
    if not found:
        return None, f"no train deployment in {path} trains {model_name}; set retrain_deployment"
    return None, f"several train deployments in {path} train {model_name} ({', '.join(found)}); set retrain_deployment"


@task(cache_policy=NO_CACHE)
def start_retrain(deployment: str, key: str, model_name: str) -> dict[str, Any]:
    """Create a flow run of ``deployment`` and return at once (fire-and-forget), keyed by the alert.

    Prefect's ``idempotency_key`` makes the API hand back the run it already
    created for this key instead of a second one, so even a lost version tag
    cannot start two retrains for one alert. A missing deployment (a plain
    local run without ``forecast serve``) or an unreachable API is reported,
    never raised: monitoring must record its verdict either way.
    """
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    asked = datetime.now(timezone.utc)
    try:
        run = run_deployment(deployment, timeout=0, idempotency_key=key, as_subflow=False,
                             flow_run_name=f"retrain-{model_name}-on-alert", tags=["monitor-alert", f"model:{model_name}"])
    except ObjectNotFound:
        return {"status": "missing-deployment", "deployment": deployment,
                "message": f"Retrain NOT started: deployment `{deployment}` does not exist on this Prefect API "
                           "(a plain local run has none: run `forecast serve`, or register the deployments on a work pool)."}
    except Exception as exc:  # noqa: BLE001 - any API failure is reported in the summary, not raised
        return {"status": "failed", "deployment": deployment,
                "message": f"Retrain NOT started: running deployment `{deployment}` failed: {type(exc).__name__}: {exc}"}
    created = run.created or asked
    if created < asked - timedelta(seconds=1):
        return {"status": "already-started", "deployment": deployment, "flow_run_id": str(run.id), "flow_run_name": run.name,
                "message": f"Retrain already started for this alert: flow run `{run.name}` ({run.id}) of `{deployment}`; "
                           "not started again."}
    return {"status": "started", "deployment": deployment, "flow_run_id": str(run.id), "flow_run_name": run.name,
            "message": f"Retrain started: flow run `{run.name}` ({run.id}) of deployment `{deployment}`, "
                       f"state {run.state.name if run.state else 'Scheduled'}."}


def _retrain(
    model_name: str, report: monitor.MonitorReport, config: MonitorSettings, serving: str, context: dict[str, Any]
) -> dict[str, Any]:
    """Decide and (when configured, once per alert) start the retrain; always say what happened."""
    key = monitor.alert_key(model_name, serving, report.period_end)
    base = {"key": key, "deployment": config.retrain_deployment or "", "flow_run_id": "", "flow_run_name": ""}
    decision = monitor.retrain_decision(report, key=key, retrain_on_alert=config.retrain_on_alert,
                                        started_key=context["retrain_key"], started_run=context["retrain_flow_run"])
    if not decision.start:
        run = context["retrain_flow_run"] if decision.status == "already-started" else ""
        return {**base, "status": decision.status, "flow_run_id": run, "message": decision.message}
    deployment, how = config.retrain_deployment, "monitor settings"
    if deployment is None:
        deployment, how = default_retrain_deployment(model_name)
        if deployment is None:
            return {**base, "status": "no-deployment", "message": f"Retrain NOT started: {how}."}
    result = start_retrain(deployment, key, model_name)
    return {**base, "flow_run_id": "", "flow_run_name": "", **result, "deployment_from": how}


def _emit_alert_event(model_name: str, serving: str, report: monitor.MonitorReport, retrain: dict[str, Any],
                      run_id: str) -> str | None:
    """Tell Prefect automations: ``forecasting.monitor.alert`` about ``forecasting.model.<name>.v<version>``."""
    from prefect.events import emit_event

    related = []
    if retrain.get("flow_run_id"):
        related.append({"prefect.resource.id": f"prefect.flow-run.{retrain['flow_run_id']}",
                        "prefect.resource.role": "retrain"})
    event = emit_event(
        event=ALERT_EVENT,
        resource={"prefect.resource.id": f"forecasting.model.{model_name}.v{serving}",
                  "prefect.resource.name": f"{model_name} v{serving}",
                  "forecasting.model.name": model_name, "forecasting.model.version": str(serving)},
        related=related or None,
        payload={"alerts": report.alerts, "alert_key": retrain["key"], "mlflow_run_id": run_id,
                 "period_end": None if report.period_end is None else report.period_end.isoformat(),
                 "retrain": retrain["status"], "retrain_flow_run_id": retrain.get("flow_run_id", "")},
    )
    return None if event is None else str(event.id)


def _run_name() -> str:
    """``monitor <model>: last 7/30 days to <as_of or today>``: what the run scored, readable in the Prefect UI."""
    params = current_run.parameters
    windows = params.get("window_days")
    when = params.get("as_of") or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    span = f"last {'/'.join(map(str, windows))} days" if windows else "rolling windows"
    return f"monitor {params.get('model_name')}: {span} to {when}"


@flow(name="monitor", flow_run_name=_run_name)
def monitor_flow(
    model_name: str,
    window_days: list[int] | None = None,
    home: str | None = None,
    as_of: str | None = None,
    promised: dict[str, float] | None = None,
    mase_factor: float | None = None,
    coverage_band: float | None = None,
    level_shift: float | None = None,
    scale_ratio: float | None = None,
    retrain_on_alert: bool | None = None,
    retrain_deployment: str | None = None,
    settings_path: str | None = None,
    fail_on_alert: bool = True,
) -> dict:
    """Realised vs promised error of every logged version of ``model_name``; alert when it slips.

    Settings come from ``configs/monitor/settings.yaml`` (``settings_path``
    to use another file); a parameter given here overrides the file for this
    run. ``as_of`` evaluates as on that date (actuals through it only);
    ``promised`` overrides the promised MASE per version (default: registry tags).
    """
    settings = resolve_settings(home)
    config = load_settings(model_name, settings_path, {
        "windows_days": tuple(window_days) if window_days else None, "mase_factor": mase_factor,
        "coverage_band": coverage_band, "level_shift": level_shift, "scale_ratio": scale_ratio,
        "retrain_on_alert": retrain_on_alert, "retrain_deployment": retrain_deployment,
    })
    end = None if as_of is None else as_of_timestamp(as_of)
    log = read_log(str(settings.home / "forecast_log"), model_name, end)
    if log.empty:
        raise ForecastingError(f"no forecasts of model '{model_name}' in the forecast log; run `forecast predict` first")
    versions = sorted(log["model_version"].unique().tolist(), key=_version_order)
    # The version in service issued the latest forecast; drift and the retrain are about it.
    latest = log[log["origin"] == log["origin"].max()]
    serving = max(latest["model_version"].unique().tolist(), key=_version_order)
    context = version_context(model_name, versions)
    promises = {**{v: c["promised"] for v, c in context.items()}, **{str(k): float(v) for k, v in (promised or {}).items()}}
    series = sorted(log["series_id"].unique())
    datasets = sorted({c["dataset"] for c in context.values()})
    frames = [read_actuals(str(settings.store_dir), d, series, end) for d in datasets]
    actuals = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True).drop_duplicates(["series_id", "timestamp"])
    now = end if end is not None else actuals["timestamp"].max()
    report = monitor.evaluate(log, actuals, season={v: c["season"] for v, c in context.items()}, promised=promises,
                              settings=config, now=now, training_window=context[serving]["training_window"],
                              freq=context[serving]["freq"], timezone=context[serving]["timezone"])
    out_dir = settings.home / "monitoring" / model_name
    write_scores(report.scored, str(out_dir / "scores.parquet"))

    retrain = _retrain(model_name, report, config, serving, context[serving])
    text = monitor.markdown(model_name, report, notes=[retrain["message"]])
    run_id = log_run(model_name, report, text, {
        "windows_days": ",".join(map(str, config.windows_days)), "mase_factor": config.mase_factor,
        "coverage_band": config.coverage_band, "level_shift": config.level_shift, "scale_ratio": config.scale_ratio,
        "drift_reference": config.drift_reference, "as_of": as_of or "",
        "period_end": "" if report.period_end is None else report.period_end.isoformat(),
        "seasons": ",".join(f"v{v}={c['season']}" for v, c in context.items()), "serving_version": serving,
        "retrain_on_alert": config.retrain_on_alert, "retrain_deployment": retrain.get("deployment") or "",
        "retrain": retrain["status"], "retrain_flow_run": retrain.get("flow_run_id") or "",
    }, str(settings.artifacts_dir))
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tags: dict[str, dict[str, Any]] = {}
    for version in versions:
        rows = report.versions[report.versions["model_version"] == version]
        reasons = "; ".join(a for a in rows["alert"] if a) if len(rows) else ""
        tags[version] = {"monitor.alert": reasons[:4000] or "none", "monitor.run_id": run_id, "monitor.at": at}
    if retrain["status"] in ("started", "already-started") and retrain.get("flow_run_id"):
        tags[serving].update({"monitor.retrain_key": retrain["key"], "monitor.retrain_flow_run": retrain["flow_run_id"],
                              "monitor.retrain_deployment": retrain.get("deployment", "")})
    tag_versions(model_name, tags)
    event_id = _emit_alert_event(model_name, serving, report, retrain, run_id) if report.alert else None
    create_markdown_artifact(text, key=f"monitor-{model_name.lower().replace('_', '-').replace('.', '-')}",
                             description=f"Monitoring of {model_name}")
    summary = {
        "name": model_name, "run_id": run_id, "alert": report.alert, "alerts": report.alerts,
        "logged": len(log), "scored": len(report.scored), "versions": report.versions.to_dict("records"),
        "drift": report.drift.to_dict("records"), "scores_path": str(out_dir / "scores.parquet"),
        "period_end": None if report.period_end is None else report.period_end.isoformat(),
        "serving_version": serving, "retrain": retrain, "event_id": event_id, "settings": config.model_dump(mode="json"),
        "flow_run_name": current_run.name,
    }
    if report.alert:
        get_run_logger().warning("monitor alert for %s: %s (%s)", model_name, "; ".join(report.alerts), retrain["message"])
        if fail_on_alert:
            raise MonitorAlert(f"model '{model_name}' alert: " + "; ".join(report.alerts) + f". {retrain['message']}")
    return summary
