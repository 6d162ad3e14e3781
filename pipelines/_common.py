"""What every flow shares: settings, the fan-out task runner, I/O retries, run names and artifact keys."""

from __future__ import annotations

import os
import re
from typing import Any

import pandas as pd

from forecasting.config.model import ForecasterConfig
from forecasting.errors import ForecastingError
from forecasting.settings import Settings

IO_RETRIES = 3
IO_RETRY_DELAYS = [2, 10, 30]
"""Seconds before each retry of an I/O task: a store on a network disk, an MLflow server restarting."""


def resolve_settings(home: str | None) -> Settings:
    """Settings for a flow run; the registry is configured here, not at import."""
    from forecasting.registry import models as registry

    settings = Settings.from_env(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    registry.configure(settings.mlflow_tracking_uri)
    return settings


def transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition of I/O tasks: a ``ForecastingError`` is the user's to fix, retrying it only wastes time.

    Anything else (``OSError``, an MLflow or HTTP connection error) may pass on its own.
    """
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - an unreadable result is no reason to stop retrying
        return True
    return not isinstance(error, ForecastingError)


def io_task_options() -> dict[str, Any]:
    """``@task`` options of the tasks that read the store, call MLflow or write forecasts (not compute, not fetches)."""
    return {"retries": IO_RETRIES, "retry_delay_seconds": IO_RETRY_DELAYS, "retry_condition_fn": transient}


def fanout_task_runner(settings: Settings | None = None) -> Any:
    """The task runner of the flows that fan out (per-series prediction, per-fold training), from settings.

    Chosen by configuration so that scale-out is not new code: ``FORECASTING_TASK_RUNNER=sequential``
    (default), ``thread`` (``FORECASTING_TASK_WORKERS`` threads) or ``dask`` (a local cluster of
    ``FORECASTING_TASK_WORKERS`` one-thread worker processes, or the cluster at ``FORECASTING_DASK_ADDRESS``).
    Dask's nanny starts worker processes with ``OMP_NUM_THREADS=1``, so torch runs one thread per
    worker and two workers never fight over the same cores.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    settings = settings or Settings.from_env()
    if settings.task_runner == "sequential":
        return ThreadPoolTaskRunner(max_workers=1)
    if settings.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=settings.task_workers)
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": settings.task_workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
    })


def fanout_threads(config: ForecasterConfig, settings: Settings) -> ForecasterConfig:
    """Trainings side by side (backtest folds, ensemble members) must share the cores: one torch thread per Dask worker (its nanny sets
    one OMP thread), the cores split among the threads of a thread pool; a config's own setting wins."""
    if settings.task_runner == "sequential" or config.training.num_threads is not None:
        return config
    threads = 1 if settings.task_runner == "dask" else max(1, (os.cpu_count() or 1) // settings.task_workers)
    return config.model_copy(update={"training": config.training.model_copy(update={"num_threads": threads})})


def name_run(name: str) -> str:
    """Rename the current flow run once what it works on is known (the origin comes from the data).

    The decorator's ``flow_run_name`` can only use parameters; this says which model and origin the
    run was about, so the Prefect UI's run list reads as a log. Outside a flow run it does nothing;
    if the API refuses, the run keeps its first name and says so in its log.
    """
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return name
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_name(context.flow_run.id, name)
    except Exception as exc:  # noqa: BLE001 - a name is a label: never fail the run over it
        from prefect import get_run_logger

        get_run_logger().warning("could not rename the flow run to %r: %s", name, exc)
        return name
    context.flow_run.name = name
    return name


def stamp(value: Any) -> str:
    """A time as it appears in run names: UTC to the minute, ``2015-12-31T23:00``."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower())).strip("-") or "artifact"
