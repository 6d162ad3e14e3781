"""Predict flow: load `models:/NAME@ALIAS`, forecast every series of its dataset, write Parquet."""

from __future__ import annotations

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from forecasting import registry
from forecasting.data.store import ObservationStore
from forecasting.predict import latest_history, write_forecasts
from pipelines._common import resolve_settings


@task(cache_policy=NO_CACHE)
def load_model(name: str, alias: str) -> registry.LoadedForecaster:
    return registry.load(name, alias)


@task(cache_policy=NO_CACHE)
def read_history(store_root: str, dataset: str, lookback: int) -> pd.DataFrame:
    return latest_history(ObservationStore(store_root).read(dataset), lookback)


@task(cache_policy=NO_CACHE)
def predict_and_write(model: registry.LoadedForecaster, history: pd.DataFrame, forecasts_dir: str) -> str:
    forecasts = model.predict(history)
    return str(write_forecasts(forecasts, forecasts_dir, model.ref.name))


@flow(name="predict", flow_run_name="predict-{model_name}@{alias}")
def predict_flow(model_name: str, alias: str = registry.CHAMPION, home: str | None = None) -> dict:
    """Batch forecasts for every series of the model's dataset, one atomic file per origin."""
    settings = resolve_settings(home)
    model = load_model(model_name, alias)
    config = model.pyfunc.unwrap_python_model().trained.config
    history = read_history(str(settings.store_dir), config.data.dataset, config.window.lookback)
    path = predict_and_write(model, history, str(settings.forecasts_dir))
    frame = pd.read_parquet(path)
    summary = {"name": model.ref.name, "version": model.ref.version, "path": path,
               "rows": len(frame), "series": int(frame["series_id"].nunique()), "horizon": int(frame["step"].max())}
    create_markdown_artifact(
        f"Forecasts of **{model_name}** v{model.ref.version}: {summary['series']} series x "
        f"{summary['horizon']} steps, written to `{path}`",
        key=f"predict-{model_name.lower().replace('_', '-').replace('.', '-')}",
    )
    get_run_logger().info("wrote %s rows to %s", len(frame), path)
    return summary
