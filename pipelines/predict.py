"""Predict flow: load `models:/NAME@ALIAS`, forecast every series of its dataset, write Parquet.

The series are split into chunks of ``FORECASTING_SERIES_PER_TASK`` and each chunk is one task on the
configured task runner (``pipelines._common.fanout_task_runner``: sequential by default, a thread pool,
or Dask). The chunks' forecasts are put back together in series order and written once, atomically, so
every runner writes the same file. Reading the store, loading the model and writing are I/O tasks with
retries; the prediction itself is not retried (a bug does not go away by running it again).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from forecasting.ops import forecast_log
from forecasting.registry import models as registry
from forecasting.data.store import ObservationStore
from forecasting.predict import as_of_timestamp, latest_history, write_forecasts
from forecasting.progress import track
from forecasting.registry.promotion import require_champion
from pipelines._common import artifact_key, fanout_task_runner, io_task_options, name_run, resolve_settings, stamp


@task(cache_policy=NO_CACHE, **io_task_options())
def load_model(name: str, alias: str) -> registry.LoadedForecaster:
    if alias == registry.CHAMPION:
        require_champion(name)  # a name whose versions all failed the promotion gate: one line saying so
    return registry.load(name, alias)




@task(cache_policy=NO_CACHE, **io_task_options())
def read_history(store_root: str, dataset: str, lookback: int, as_of: str | None = None) -> pd.DataFrame:
    end = None if as_of is None else as_of_timestamp(as_of)
    return latest_history(ObservationStore(store_root).read(dataset, end=end), lookback)


@task(cache_policy=NO_CACHE, task_run_name="predict {label}")
def predict_chunk(model: registry.LoadedForecaster, history: pd.DataFrame, label: str) -> pd.DataFrame:
    """Forecast one chunk of series: compute, so no retries."""
    return model.predict(history)


@task(cache_policy=NO_CACHE, **io_task_options())
def write(forecasts: pd.DataFrame, forecasts_dir: str, model_name: str) -> str:
    return str(write_forecasts(forecasts, forecasts_dir, model_name))


@task(cache_policy=NO_CACHE, **io_task_options())
def append_to_log(forecasts: pd.DataFrame, log_dir: str) -> int:
    """Keep the batch in the append-only forecast log (a rerun of the same origin leaves one copy)."""
    return len(forecast_log.append(log_dir, forecasts))


def series_chunks(history: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """``history`` (sorted by series, as ``latest_history`` returns it) cut into runs of ``size`` whole series."""
    codes, _ = pd.factorize(history["series_id"], sort=True)
    if codes.size == 0:
        return [history]
    bounds = np.flatnonzero(np.diff(codes // size)) + 1  # rows where the next chunk starts
    return [history.iloc[a:b] for a, b in zip(np.r_[0, bounds], np.r_[bounds, codes.size], strict=True)]


@flow(name="predict", flow_run_name="predict-{model_name}@{alias}", task_runner=fanout_task_runner())
def predict_flow(model_name: str, alias: str = registry.CHAMPION, home: str | None = None, as_of: str | None = None) -> dict:
    """Batch forecasts for every series of the model's dataset, one atomic file per origin.

    ``as_of``: forecast as on that date, seeing only observations through it (replays).
    Every batch is also appended to the forecast log (``<home>/forecast_log``). Once the data is read
    the run is renamed ``predict-NAME@ORIGIN`` (``predict-NAME[ALIAS]@ORIGIN`` for another alias).
    """
    settings = resolve_settings(home)
    if as_of is not None:
        as_of_timestamp(as_of)  # before the model loads: a typo costs nothing
    model = load_model(model_name, alias)
    config = model.pyfunc.unwrap_python_model().trained.config
    history = read_history(str(settings.store_dir), config.data.dataset, config.window.lookback, as_of)
    origin = stamp(history["timestamp"].max()) if len(history) else "no-data"
    tag = "" if alias == registry.CHAMPION else f"[{alias}]"
    run_name = name_run(f"predict-{model_name}{tag}@{origin}")

    chunks = series_chunks(history, settings.series_per_task)
    futures = [
        predict_chunk.submit(model, chunk, f"{i + 1}/{len(chunks)} ({chunk['series_id'].nunique()} series)")
        for i, chunk in enumerate(chunks)
    ]
    done = track(futures, f"predict {model_name}", len(futures), "chunks")
    frame = pd.concat([f.result() for f in done], ignore_index=True)  # submission order: series order
    path = write(frame, str(settings.forecasts_dir), model.ref.name)
    append_to_log(frame, str(settings.home / "forecast_log"))
    summary = {"name": model.ref.name, "version": model.ref.version, "path": path,
               "rows": len(frame), "series": int(frame["series_id"].nunique()), "horizon": int(frame["step"].max()),
               "origin": origin, "tasks": len(chunks), "task_runner": settings.task_runner, "run_name": run_name}
    create_markdown_artifact(
        f"## {run_name}\n\nForecasts of **{model_name}** v{model.ref.version} (`{alias}`): "
        f"{summary['series']} series x {summary['horizon']} steps from origin {origin} UTC, "
        f"{len(chunks)} prediction task(s) on the {settings.task_runner} runner, written to `{path}`",
        key=artifact_key("predict", model_name),
        description="What the predict run wrote",
    )
    get_run_logger().info("wrote %s rows to %s", len(frame), path)
    return summary
