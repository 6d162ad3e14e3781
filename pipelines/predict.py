"""Predict flow: load `models:/NAME@ALIAS`, forecast every series of its dataset, write Parquet."""

from __future__ import annotations

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from forecasting import forecast_log, registry
from forecasting.data.store import ObservationStore
from forecasting.predict import as_of_timestamp, latest_history, write_forecasts
from pipelines._common import resolve_settings


@task(cache_policy=NO_CACHE)
def load_model(name: str, alias: str) -> registry.LoadedForecaster:
    return registry.load(name, alias)


@task(cache_policy=NO_CACHE)
def read_history(store_root: str, dataset: str, lookback: int, as_of: str | None = None) -> pd.DataFrame:
    end = None if as_of is None else as_of_timestamp(as_of)
    return latest_history(ObservationStore(store_root).read(dataset, end=end), lookback)


@task(cache_policy=NO_CACHE)
def append_to_log(forecasts: pd.DataFrame, log_dir: str) -> int:
    """Keep the batch in the append-only forecast log (a rerun of the same origin leaves one copy)."""
    return len(forecast_log.append(log_dir, forecasts))


@task(cache_policy=NO_CACHE)
def predict_and_write(model: registry.LoadedForecaster, history: pd.DataFrame, forecasts_dir: str) -> tuple[pd.DataFrame, str]:
    forecasts = model.predict(history)
    return forecasts, str(write_forecasts(forecasts, forecasts_dir, model.ref.name))


@flow(name="predict", flow_run_name="predict-{model_name}@{alias}")
def predict_flow(model_name: str, alias: str = registry.CHAMPION, home: str | None = None, as_of: str | None = None) -> dict:
    """Batch forecasts for every series of the model's dataset, one atomic file per origin.

    ``as_of``: forecast as on that date, seeing only observations through it (replays).
    Every batch is also appended to the forecast log (``<home>/forecast_log``).
    """
    settings = resolve_settings(home)
    model = load_model(model_name, alias)
    config = model.pyfunc.unwrap_python_model().trained.config
    history = read_history(str(settings.store_dir), config.data.dataset, config.window.lookback, as_of)
    frame, path = predict_and_write(model, history, str(settings.forecasts_dir))
    append_to_log(frame, str(settings.home / "forecast_log"))
    summary = {"name": model.ref.name, "version": model.ref.version, "path": path,
               "rows": len(frame), "series": int(frame["series_id"].nunique()), "horizon": int(frame["step"].max())}
    create_markdown_artifact(
        f"Forecasts of **{model_name}** v{model.ref.version}: {summary['series']} series x "
        f"{summary['horizon']} steps, written to `{path}`",
        key=f"predict-{model_name.lower().replace('_', '-').replace('.', '-')}",
    )
    get_run_logger().info("wrote %s rows to %s", len(frame), path)
    return summary
