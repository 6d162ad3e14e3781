"""MLflow records of a hyperparameter search: one parent run per study, one nested child run per trial.

The parent (experiment ``tuning``, tags ``kind=tuning`` and ``model_name``) holds the search
settings, then the best trial's parameters (``best.<param>``), the best value (``best_val_mase``),
counts of completed, pruned and failed trials, the best config YAML, a CSV of every trial and
Optuna's plots (``plots/*.png``). Each child (tag ``mlflow.parentRunId``, so the UI nests it)
holds one trial's parameters, its validation metrics, the pruning curve (``pruning_val_loss`` by
epoch) and its state (``optuna.state``: complete, pruned or fail; a failed trial's run is FAILED).

Runs are written through ``MlflowClient`` with explicit run ids, never the fluent "active run",
so trials finishing in other threads log under the right parent.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from forecasting.registry.models import ensure_experiment
from forecasting.tune import OBJECTIVE, PRUNING_MONITOR, TrialRecord

TUNING_EXPERIMENT = "tuning"
PARENT_TAG = "mlflow.parentRunId"


def _param(value: Any) -> str:
    return "" if value is None else str(value)[:6000]


def start_study_run(
    model_name: str,
    *,
    study_name: str,
    settings: dict[str, Any],
    experiment: str = TUNING_EXPERIMENT,
    artifacts_dir: Path | None = None,
) -> str:
    """Open the parent run of a study; returns its id. ``settings``: trials, timeout, search space ..."""
    client = MlflowClient()
    experiment_id = ensure_experiment(experiment, artifacts_dir)
    run = client.create_run(
        experiment_id,
        run_name=f"tune-{model_name}",
        tags={"kind": "tuning", "model_name": model_name, "optuna.study": study_name},
    )
    params = [Param(f"tune.{k}", _param(json.dumps(v) if isinstance(v, (dict, list)) else v)) for k, v in settings.items()]
    if params:
        client.log_batch(run.info.run_id, params=params)
    return run.info.run_id


def log_trial(parent_run_id: str, record: TrialRecord, *, model_name: str) -> str:
    """One trial as a child run of ``parent_run_id``; returns the child's id."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    start_ms = int((record.started or time.time() - record.seconds) * 1000)
    run = client.create_run(
        parent.info.experiment_id,
        start_time=start_ms,
        run_name=f"trial-{record.number}",
        tags={
            PARENT_TAG: parent_run_id, "kind": "tuning-trial", "model_name": model_name,
            "optuna.trial": str(record.number), "optuna.state": record.state,
        },
    )
    run_id = run.info.run_id
    params = [Param(k, _param(v)) for k, v in record.params.items()]
    params.append(Param("overrides", _param(json.dumps(record.overrides, sort_keys=True))))
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in record.metrics.items() if _finite(v)]
    metrics += [Metric(f"pruning_{PRUNING_MONITOR}", float(v), now, int(step)) for step, v in sorted(record.intermediate.items())
                if _finite(v)]
    metrics.append(Metric("trial_seconds", float(record.seconds), now, 0))
    if record.epochs is not None:
        metrics.append(Metric("epochs", float(record.epochs), now, 0))
    tags = [RunTag("optuna.error", record.error[:5000])] if record.error else []
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    status = "FAILED" if record.state == "fail" else "FINISHED"
    client.set_terminated(run_id, status=status, end_time=start_ms + int(record.seconds * 1000))
    return run_id


def finish_study_run(
    parent_run_id: str,
    *,
    best: TrialRecord | None,
    records: list[TrialRecord],
    best_config_yaml: str | None,
    trials_csv: str | None,
    plots: list[Path],
    failed: bool = False,
) -> None:
    """Close the parent run with the best trial's parameters and value, the counts and the artifacts."""
    client = MlflowClient()
    now = int(time.time() * 1000)
    counts = {state: sum(r.state == state for r in records) for state in ("complete", "pruned", "fail")}
    metrics = [Metric(f"trials_{state}", float(n), now, 0) for state, n in counts.items()]
    params: list[Param] = []
    tags: list[RunTag] = []
    if best is not None:
        metrics.append(Metric(f"best_{OBJECTIVE}", float(best.value), now, 0))
        metrics += [Metric(f"best.{k}", float(v), now, 0) for k, v in best.metrics.items() if _finite(v) and k != OBJECTIVE]
        params = [Param(f"best.{k}", _param(v)) for k, v in best.params.items()]
        tags.append(RunTag("best_trial", str(best.number)))
    client.log_batch(parent_run_id, metrics=metrics, params=params, tags=tags)
    if best_config_yaml:
        client.log_text(parent_run_id, best_config_yaml, "best_config.yaml")
    if trials_csv:
        client.log_text(parent_run_id, trials_csv, "trials.csv")
    for path in plots:
        client.log_artifact(parent_run_id, str(path), artifact_path="plots")
    client.set_terminated(parent_run_id, status="FAILED" if failed else "FINISHED")


def child_runs(parent_run_id: str) -> list[Any]:
    """The trial runs of a study's parent run, by trial number."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    runs = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                              max_results=10000)
    return sorted(runs, key=lambda r: int(r.data.tags.get("optuna.trial", "0")))


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False

