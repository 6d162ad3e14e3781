"""What the registry knows about each model, read in one pass for `forecast status`.

For every registered model: the champion, when, by whom and why it got the alias (the promotion
record on the version, or the rollback that gave it back); the backtest its promotion was decided
on, as MASE of the model and of each baseline; and the last monitoring verdict with its alerts.
Read only: nothing here writes to MLflow, and nothing imports Prefect.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecasting.errors import ForecastingError

# The names ``forecasting.registry.models`` gives these; not imported from there, because that module
# brings torch (seconds) and a status screen needs none of it (a test checks that they agree).
CHAMPION, CHALLENGER = "champion", "challenger"
BACKTEST_EXPERIMENT, MONITORING_EXPERIMENT = "backtests", "monitoring"
REPORT_SUMMARY = "backtest/summary.csv"
"""The promotion backtest's per-forecaster scores, attached to the run a version came from."""
MODEL_ROW = "model"


def configure(tracking_uri: str) -> None:
    """Point the client at a tracking store (the registry shares it); refuse pickled models from then on.

    The one home of this set-up: ``models.configure`` calls it, and it imports no torch, so ``forecast
    status`` starts fast. Versions are logged as code with plain-file weights, so no model of ours needs
    unpickling; with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` off, a ``python_model.pkl`` swapped into the
    artifact store is refused by ``mlflow.pyfunc.load_model`` instead of run (set it to ``true`` to load
    older, pickled versions that way; ``models.load`` reads them from their data files regardless).
    """
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def model_names() -> list[str]:
    """Every registered model, sorted; an unreadable registry is one ``ForecastingError`` naming it."""
    try:
        return sorted(m.name for m in MlflowClient().search_registered_models())
    except MlflowException as exc:
        raise ForecastingError(f"cannot read the model registry at {mlflow.get_tracking_uri()}: {exc}") from None


def overview(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One entry per model (all registered models by default): see ``model_overview``.

    A registry that cannot be read (a tracking server down) is one ``ForecastingError`` naming it.
    """
    try:
        return [model_overview(name) for name in (names if names is not None else model_names())]
    except MlflowException as exc:
        raise ForecastingError(f"cannot read the model registry at {mlflow.get_tracking_uri()}: {exc}") from None


def model_overview(name: str) -> dict[str, Any]:
    """The champion, its backtest against the baselines, and the last monitoring verdict of ``name``.

    Keys: ``name``, ``versions`` (count), ``latest_version``, ``challenger``, ``dataset``, ``freq``,
    ``champion`` (None, or version, since, by, decision, reason, previous_champion), ``backtest``
    (None, or source, metric, origins, model, baselines, beats, loses_to) and ``monitoring`` (None, or
    at, run_id, alert, alerts, serving_version).
    """
    client = MlflowClient()
    registered = client.get_registered_model(name)
    aliases = {alias: str(version) for alias, version in dict(registered.aliases or {}).items()}  # versions come as ints
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{_quoted(name)}'")}
    latest = max(versions, key=int) if versions else None
    champion_version = aliases.get(CHAMPION)
    about = versions.get(champion_version or "") or (versions.get(latest) if latest else None)
    tags = dict(about.tags) if about is not None else {}
    champion = None
    backtest = None
    if champion_version is not None and champion_version in versions:
        champion = _champion(champion_version, versions)
        backtest = _backtest(name, versions[champion_version])
    return {
        "name": name,
        "versions": len(versions),
        "latest_version": latest,
        "challenger": aliases.get(CHALLENGER),
        "dataset": tags.get("dataset"),
        "freq": tags.get("freq"),
        "champion": champion,
        "backtest": backtest,
        "monitoring": last_monitoring(name),
    }


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _champion(version: str, versions: dict[str, Any]) -> dict[str, Any]:
    """Since when, by whom and why ``version`` is champion: its promotion record, or the later rollback to it."""
    tags = dict(versions[version].tags)
    since, by = tags.get("promotion.at"), tags.get("promotion.by")
    decision, reason = tags.get("promotion.decision"), tags.get("promotion.reason")
    restored = tags.get("rollback.restored_at")
    if restored and (since is None or restored > since):
        rolled = [dict(v.tags) for v in versions.values() if dict(v.tags).get("rollback.to") == version]
        last = max(rolled, key=lambda t: t.get("rollback.at", ""), default={})
        since, by, decision = restored, tags.get("rollback.restored_by"), "rolled back"
        reason = last.get("rollback.reason") or reason
    return {
        "version": version,
        "run_id": versions[version].run_id,
        "since": since,
        "by": by,
        "decision": decision,
        "reason": reason,
        "previous_champion": tags.get("promotion.previous_champion") or None,
    }


def _backtest(name: str, version: Any) -> dict[str, Any] | None:
    """MASE of the champion and of every baseline on the promotion backtest's origins.

    Read from the report the promotion attached to the version's run; a version promoted without one
    (by hand, or first of its name and not backtestable) falls back to the latest ``forecast backtest``
    of that version, then to the promotion tags when its metric was MASE.
    """
    tags = dict(version.tags)
    scores = _report_scores(version.run_id)
    source = "promotion backtest"
    if scores is None:
        scores, source = _backtest_run_scores(name, str(version.version)), "forecast backtest"
    if scores is None and tags.get("promotion.metric") == "mase":
        scores = _tag_scores(tags)
        source = "promotion tags"
    if not scores or MODEL_ROW not in scores:
        return None
    model = scores.pop(MODEL_ROW)
    return {
        "source": source,
        "metric": "mase",
        "origins": int(tags["promotion.origins"]) if tags.get("promotion.origins", "").isdigit() else None,
        "model": model,
        "baselines": scores,
        "beats": sorted(b for b, s in scores.items() if model < s),
        "loses_to": sorted(b for b, s in scores.items() if model >= s),
    }


def _report_scores(run_id: str | None) -> dict[str, float] | None:
    if not run_id:
        return None
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{REPORT_SUMMARY}")
    except (MlflowException, OSError):
        return None
    table = pd.read_csv(io.StringIO(text))
    if "forecaster" not in table or "mase" not in table:
        return None
    return _finite(dict(zip(table["forecaster"].astype(str), table["mase"], strict=True)))


def _backtest_run_scores(name: str, version: str) -> dict[str, float] | None:
    experiment = MlflowClient().get_experiment_by_name(BACKTEST_EXPERIMENT)
    if experiment is None:
        return None
    runs = MlflowClient().search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.model_name = '{_quoted(name)}' and tags.model_version = '{version}'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )
    if not runs:
        return None
    metrics = runs[0].data.metrics
    return _finite({k.removesuffix("_mase"): v for k, v in metrics.items() if k.endswith("_mase")})


def _tag_scores(tags: dict[str, str]) -> dict[str, float]:
    scores = {k.removeprefix("promotion.baseline."): v for k, v in tags.items() if k.startswith("promotion.baseline.")}
    scores[MODEL_ROW] = tags.get("promotion.challenger_score", "")
    return _finite(scores)


def _finite(scores: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in scores.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out


def last_monitoring(name: str) -> dict[str, Any] | None:
    """The latest monitoring run of ``name``: when, its verdict and its alerts (None if never monitored)."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.model_name = '{_quoted(name)}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    run = runs[0]
    alert = run.data.tags.get("alert") == "true"
    alerts: list[str] = []
    if alert:
        try:
            alerts = [line for line in mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/monitoring/alerts.txt").splitlines() if line]
        except (MlflowException, OSError):
            alerts = ["(alerts not recorded)"]
    return {
        "at": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC").isoformat(timespec="seconds"),
        "run_id": run.info.run_id,
        "alert": alert,
        "alerts": alerts,
        "serving_version": run.data.params.get("serving_version") or None,
        "period_end": run.data.params.get("period_end") or None,
    }
