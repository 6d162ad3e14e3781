"""forecast(trained, history) -> forecast frame: one batched pass over every series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from forecasting.data.schema import validate_observations
from forecasting.errors import ForecastingError
from forecasting.inference import predict_starts
from forecasting.prep.features import horizon_timestamps
from forecasting.model.forecaster import TrainedForecaster
from forecasting.prep.windows import SeriesPanel, left_pad

FORECAST_COLUMNS = ["series_id", "origin", "timestamp", "step", "mean"]
LINEAGE_COLUMNS = ["model_name", "model_version", "run_id"]


def forecast(
    trained: TrainedForecaster,
    history: pd.DataFrame,
    *,
    horizon: int | None = None,
    future: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecast ``horizon`` steps after the last observation of every series in ``history``.

    ``history`` is a canonical observation frame (series_id, timestamp, target,
    and the covariates the model was trained with). Only each series' last
    ``lookback`` points are used; a series with fewer, but at least the
    model's ``min_length`` (``window.min_length``), is left-padded with a mask.
    Series the model never saw are scaled on their own history.

    Calendar features of the horizon are computed from the ``freq`` grid. A
    model with ``data.future_covariates`` needs their values for every horizon
    step in ``future`` (series_id, timestamp, columns); anything missing is one
    error naming each series and timestamp.

    Returns one row per (series, step) in original units: ``mean`` is the
    point forecast (the 0.5 quantile for median models), plus ``q0.1``, ...
    columns for quantile models.

    ``timestamp`` and ``origin`` are UTC instants, as stored. A model whose
    grid lives in a zone (``data.calendar_timezone``, e.g. Asia/Kolkata)
    steps on that zone's calendar, and the frame gains the reader's view:
    ``date`` (the local day, for daily or coarser grids) or
    ``local_timestamp`` (sub-daily grids), so the Kolkata day 2024-03-11
    reads 2024-03-11 rather than 2024-03-10T18:30Z. UTC models keep the
    frame unchanged.
    """
    config = trained.config
    spec = trained.spec
    horizon = spec.horizon if horizon is None else int(horizon)
    if not 1 <= horizon <= spec.horizon:
        raise ForecastingError(f"horizon {horizon} is outside 1..{spec.horizon}, the horizon model '{config.name}' was trained for")
    columns = list(trained.layout.data_features[1:])
    missing = [c for c in ["series_id", "timestamp", "target", *columns] if c not in history.columns]
    if missing:
        raise ForecastingError(
            f"history for model '{config.name}' lacks column(s) {missing}; it has {list(history.columns)}"
        )
    frame = validate_observations(history[["series_id", "timestamp", "target", *columns]], required=columns, name="history")
    panel = SeriesPanel.from_frame(frame, covariates=columns)
    least = config.min_length
    if config.padded:
        why = f"window.min_length; series shorter than lookback {spec.lookback} are left-padded"
    else:
        why = "its lookback; a model trained with window.min_length pads shorter series"
    short = [
        f"series '{sid}' has {n} points; model '{config.name}' needs at least {least} ({why})"
        for sid, n in zip(panel.series_ids, panel.lengths, strict=True)
        if n < least
    ]
    if short:
        raise ForecastingError("history too short to forecast:\n" + "\n".join(f"  - {s}" for s in short))
    last = panel.timestamps[panel.offsets[1:] - 1]  # (series,) origins, before any padding
    _check_origins_on_grid(panel.series_ids, last, config.data.freq, config.data.calendar_timezone, config.name)
    if config.padded:
        from forecasting.data.calendar import offset_for

        panel, _ = left_pad(panel, spec.lookback, offset_for(config.data.freq))

    starts = panel.offsets[1:] - spec.lookback  # (series,): the last lookback window of each series
    predicted = predict_starts(trained, panel, starts, future=future, horizon=horizon)  # name -> (series, horizon)
    return _to_frame(panel.series_ids, last, predicted, config.data.freq, timezone=config.data.calendar_timezone)


def _check_origins_on_grid(series_ids: tuple[str, ...], last: np.ndarray, freq: str, timezone: str, name: str) -> None:
    """Calendar grids (days, sessions, months) date the horizon from the origin: an origin off the grid
    (local midnights read on the UTC calendar) would date it wrongly across DST, so it is an error naming the fix."""
    from forecasting.data.calendar import Grid

    grid = Grid(freq, timezone)
    if grid.is_fixed or not len(last):
        return
    off = ~grid.on_grid(pd.DatetimeIndex(last).tz_localize("UTC"))
    if not off.any():
        return
    k = int(np.flatnonzero(off)[0])
    stamp = pd.Timestamp(last[k], tz="UTC")
    hint = ""
    if grid.is_utc and stamp != stamp.normalize():
        hint = (
            "; if the data was recorded in a time zone (its days start at local midnight), set it in the model config, e.g.\n"
            "  data:\n    calendar_timezone: America/New_York"
        )
    raise ForecastingError(
        f"model '{name}': the last timestamp of {int(off.sum())} series (e.g. '{series_ids[k]}' at {stamp}) is not on "
        f"its {grid.describe()}{hint}"
    )


def _to_frame(
    series_ids: tuple[str, ...], last: np.ndarray, values: dict[str, np.ndarray], freq: str, *, timezone: str = "UTC"
) -> pd.DataFrame:
    from forecasting.data.calendar import Grid

    n_series, horizon = values["mean"].shape
    timestamps = horizon_timestamps(last, freq, horizon, timezone=timezone)  # (series, horizon)
    out = pd.DataFrame(
        {
            "series_id": np.repeat(np.asarray(series_ids, dtype=object), horizon),
            "origin": np.repeat(last, horizon),
            "timestamp": timestamps.reshape(-1),
            "step": np.tile(np.arange(1, horizon + 1), n_series),
            **{name: v.reshape(-1) for name, v in values.items()},
        }
    )
    for col in ("origin", "timestamp"):
        out[col] = pd.to_datetime(out[col]).dt.tz_localize("UTC")
    out["series_id"] = out["series_id"].astype(str)
    grid = Grid(freq, timezone)
    if not grid.is_utc:
        local = out["timestamp"].dt.tz_convert(timezone)
        if grid.is_fixed:
            out["local_timestamp"] = local
        else:
            out["date"] = local.dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
    return out


def forecast_path(forecasts_dir: str | Path, model_name: str, forecasts: pd.DataFrame) -> Path:
    """One file per model and batch origin (the latest origin in the batch): a rerun replaces it."""
    origin = pd.Timestamp(forecasts["origin"].max())
    return Path(forecasts_dir) / model_name / f"origin={origin.strftime('%Y%m%dT%H%M%SZ')}.parquet"


def latest_history(frame: pd.DataFrame, lookback: int) -> pd.DataFrame:
    """Each series' last ``lookback`` rows: all a forecast needs to read."""
    frame = frame.sort_values(["series_id", "timestamp"])
    return frame.groupby("series_id", sort=False, group_keys=False).tail(lookback).reset_index(drop=True)


def write_forecasts(forecasts: pd.DataFrame, forecasts_dir: str | Path, model_name: str) -> Path:
    """Write atomically to the file of this model and origin; rerunning the same origin replaces it."""
    from forecasting.data.store import write_parquet_atomic

    problems = []
    if forecasts.empty:
        problems.append("no rows")
    value_columns = [c for c in forecasts.columns if c == "mean" or (c.startswith("q") and c[1:2].isdigit())]
    finite = np.isfinite(forecasts[value_columns].to_numpy(dtype=float)).all(axis=1)
    if not finite.all():
        bad = sorted(forecasts.loc[~finite, "series_id"].unique())
        problems.append(f"non-finite forecasts for series {bad}")
    if forecasts.duplicated(["series_id", "origin", "step"]).any():
        problems.append("duplicate (series_id, origin, step) rows")
    if problems:
        raise ForecastingError(f"refusing to write forecasts of model '{model_name}': " + "; ".join(problems))
    path = forecast_path(forecasts_dir, model_name, forecasts)
    write_parquet_atomic(forecasts, path)
    return path


# A replay's as_of may run a little ahead of this clock (a zone's "today", a skewed clock), not more.
FUTURE_SLACK = pd.Timedelta(days=1)


def as_of_timestamp(as_of: str) -> pd.Timestamp:
    """``--as-of DATE``: the instant (UTC unless given) through which data is visible, inclusive.

    One clear error for one that is not a date, or lies in the future: a future ``as_of``
    (``--as-of 2999``) would silently forecast (or monitor) from today's data while claiming a replay.
    """
    try:
        stamp = pd.Timestamp(as_of)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ForecastingError(f"as_of={as_of!r} is not a date or timestamp: {exc}") from None
    end = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    now = pd.Timestamp.now(tz="UTC")
    if end > now + FUTURE_SLACK:
        raise ForecastingError(
            f"as_of={as_of!r} ({end:%Y-%m-%d %H:%M} UTC) is in the future; a replay must be on or before today "
            f"({now:%Y-%m-%d}); leave --as-of out to use the latest data"
        )
    return end
