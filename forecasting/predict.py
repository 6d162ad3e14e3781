"""forecast(trained, history) -> forecast frame: one batched pass over every series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from forecasting.data.schema import validate_observations
from forecasting.errors import ForecastingError
from forecasting.evaluate import predict_starts
from forecasting.forecaster import TrainedForecaster
from forecasting.windows import SeriesPanel

FORECAST_COLUMNS = ["series_id", "origin", "timestamp", "step", "mean"]
LINEAGE_COLUMNS = ["model_name", "model_version", "run_id"]


def forecast(trained: TrainedForecaster, history: pd.DataFrame, *, horizon: int | None = None) -> pd.DataFrame:
    """Forecast ``horizon`` steps after the last observation of every series in ``history``.

    ``history`` is a canonical observation frame (series_id, timestamp, target,
    and the covariates the model was trained with). Only each series' last
    ``lookback`` points are used. Series the model never saw are scaled on
    their own history. Returns one row per (series, step), in original units.
    """
    config = trained.config
    spec = trained.spec
    horizon = spec.horizon if horizon is None else int(horizon)
    if not 1 <= horizon <= spec.horizon:
        raise ForecastingError(f"horizon {horizon} is outside 1..{spec.horizon}, the horizon model '{config.name}' was trained for")
    covariates = config.data.covariates
    missing = [c for c in ["series_id", "timestamp", "target", *covariates] if c not in history.columns]
    if missing:
        raise ForecastingError(
            f"history for model '{config.name}' lacks column(s) {missing}; it has {list(history.columns)}"
        )
    frame = validate_observations(history[["series_id", "timestamp", "target", *covariates]], required=covariates, name="history")
    panel = SeriesPanel.from_frame(frame, covariates=covariates)
    short = [
        f"series '{sid}' has {n} points; lookback {spec.lookback} needs {spec.lookback}"
        for sid, n in zip(panel.series_ids, panel.lengths, strict=True)
        if n < spec.lookback
    ]
    if short:
        raise ForecastingError("history too short to forecast:\n" + "\n".join(f"  - {s}" for s in short))

    starts = panel.offsets[1:] - spec.lookback  # (series,): the last lookback window of each series
    values = predict_starts(trained, panel, starts)["mean"][:, :horizon]  # (series, horizon)
    return _to_frame(panel, values, config.data.freq)


def _to_frame(panel: SeriesPanel, values: np.ndarray, freq: str) -> pd.DataFrame:
    n_series, horizon = values.shape
    last = pd.to_datetime(panel.timestamps[panel.offsets[1:] - 1]).tz_localize("UTC")  # (series,)
    offset = pd.tseries.frequencies.to_offset(freq)
    timestamps = np.stack([(last + offset * (h + 1)).to_numpy() for h in range(horizon)], axis=1)  # (series, horizon)
    out = pd.DataFrame(
        {
            "series_id": np.repeat(np.asarray(panel.series_ids, dtype=object), horizon),
            "origin": np.repeat(last.to_numpy(), horizon),
            "timestamp": timestamps.reshape(-1),
            "step": np.tile(np.arange(1, horizon + 1), n_series),
            "mean": values.reshape(-1),
        }
    )
    for col in ("origin", "timestamp"):
        out[col] = pd.to_datetime(out[col], utc=True)
    out["series_id"] = out["series_id"].astype(str)
    return out


def forecast_path(forecasts_dir: str | Path, model_name: str, forecasts: pd.DataFrame) -> Path:
    """One file per model and batch origin (the latest origin in the batch): a rerun replaces it."""
    origin = pd.Timestamp(forecasts["origin"].max())
    return Path(forecasts_dir) / model_name / f"origin={origin.strftime('%Y%m%dT%H%M%SZ')}.parquet"


def latest_history(frame: pd.DataFrame, lookback: int) -> pd.DataFrame:
    """Each series' last ``lookback`` rows: all a direct-head forecast needs to read."""
    frame = frame.sort_values(["series_id", "timestamp"])
    return frame.groupby("series_id", sort=False, group_keys=False).tail(lookback).reset_index(drop=True)


def write_forecasts(forecasts: pd.DataFrame, forecasts_dir: str | Path, model_name: str) -> Path:
    """Write atomically to the file of this model and origin; rerunning the same origin replaces it."""
    from forecasting.data.store import write_parquet_atomic

    problems = []
    if forecasts.empty:
        problems.append("no rows")
    if not np.isfinite(forecasts["mean"].to_numpy(dtype=float)).all():
        bad = sorted(forecasts.loc[~np.isfinite(forecasts["mean"].to_numpy(dtype=float)), "series_id"].unique())
        problems.append(f"non-finite forecasts for series {bad}")
    if forecasts.duplicated(["series_id", "origin", "step"]).any():
        problems.append("duplicate (series_id, origin, step) rows")
    if problems:
        raise ForecastingError(f"refusing to write forecasts of model '{model_name}': " + "; ".join(problems))
    path = forecast_path(forecasts_dir, model_name, forecasts)
    write_parquet_atomic(forecasts, path)
    return path
