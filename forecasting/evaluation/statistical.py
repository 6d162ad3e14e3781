"""The statistical forecasters a user would otherwise run: AutoETS, AutoTheta and AutoARIMA (statsforecast).

A served LSTM has to beat these, not only the naive family: on monthly business data exponential
smoothing and Theta are what people run first, and they are hard to beat. Each is refitted per
origin on the series' history up to that origin, as a statistical model is used in practice, so a
backtest compares like with like: the same origins, no look-ahead.

statsforecast is imported inside ``statistical_forecasts`` only: it compiles with numba on first use
(seconds), and most commands never need it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from forecasting.errors import ForecastingError
from forecasting.progress import Progress

STATISTICAL: tuple[str, ...] = ("ets", "theta", "arima")
"""Names as configs and reports spell them: AutoETS, AutoTheta, AutoARIMA."""


@dataclass
class StatisticalForecasts:
    """``forecasts[name]`` is ``(windows, horizon)``; ``fallbacks[name]`` counts windows where the fit failed
    (or gave a non-finite forecast) and seasonal naive stood in."""

    forecasts: dict[str, np.ndarray]
    fallbacks: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def default_history(season: int, lookback: int) -> int:
    """Points each fit reads unless configured: ten seasons or five lookbacks, whichever is longer."""
    return max(10 * season, 5 * lookback, 50)


def forecast_at_origins(
    values: np.ndarray,
    first_rows: np.ndarray,
    origin_rows: np.ndarray,
    horizon: int,
    *,
    season: int,
    lookback: int,
    models: Sequence[str],
    max_history: int | None,
) -> tuple[StatisticalForecasts, int]:
    """``statistical_forecasts`` refitted at every origin on its series' history up to it.

    ``values`` is one panel's target column; window ``i``'s series starts at row ``first_rows[i]`` and its
    origin is row ``origin_rows[i]``. Each fit reads the last ``max_history`` points (default
    ``default_history``). Returns the forecasts and the history length used. The one rule that backtests,
    the validation comparison and the comb ensemble share.
    """
    keep = max_history or default_history(season, lookback)
    histories = [values[max(a, o + 1 - keep) : o + 1] for a, o in zip(first_rows, origin_rows, strict=True)]
    return statistical_forecasts(histories, horizon, season=season, models=models, max_history=keep), keep


def statistical_forecasts(
    histories: Sequence[np.ndarray],
    horizon: int,
    *,
    season: int,
    models: Sequence[str],
    max_history: int | None = None,
) -> StatisticalForecasts:
    """Fit every model on every history (its own fit each: refit per origin) and forecast ``horizon`` steps.

    ``histories`` are 1-d raw-unit targets ending at each origin; NaN (left padding) is dropped. Only the
    last ``max_history`` points are read. A season is used only where the history holds two full
    seasons; a fit that fails, or forecasts a non-finite value, falls back to seasonal naive (naive on
    histories shorter than a season) and is counted.
    """
    unknown = [m for m in models if m not in STATISTICAL]
    if unknown:
        raise ForecastingError(f"unknown statistical model(s) {unknown}; choose from {list(STATISTICAL)}")
    if horizon < 1 or season < 1:
        raise ValueError(f"horizon {horizon} and season {season} must be >= 1")
    result = StatisticalForecasts({})
    if not models:
        return result
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    factories = {"ets": AutoETS, "theta": AutoTheta, "arima": AutoARIMA}
    cleaned = [_clean(h, max_history) for h in histories]
    progress = Progress("statistical baselines", len(models) * len(cleaned), "fits")
    for name in models:
        started = time.perf_counter()
        out = np.empty((len(cleaned), horizon))  # (windows, horizon)
        failed = 0
        for i, y in enumerate(cleaned):
            m = season if y.size >= 2 * season else 1
            try:
                pred = np.asarray(factories[name](season_length=m).forecast(y=y, h=horizon)["mean"], dtype=np.float64)
            except Exception:  # noqa: BLE001 - any fitting failure of a baseline means: use the fallback
                pred = np.full(horizon, np.nan)
            if pred.shape != (horizon,) or not np.isfinite(pred).all():
                failed += 1
                pred = _seasonal_naive(y, horizon, season)
            out[i] = pred
            progress.advance()
        result.forecasts[name] = out
        result.fallbacks[name] = failed
        result.seconds[name] = time.perf_counter() - started
    progress.finish()
    return result


def _clean(history: np.ndarray, max_history: int | None) -> np.ndarray:
    y = np.asarray(history, dtype=np.float64)
    y = y[~np.isnan(y)]
    if max_history is not None:
        y = y[-max_history:]
    if y.size == 0:
        raise ForecastingError("a statistical baseline got an empty history (every point missing)")
    return y


def _seasonal_naive(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    if y.size < season:
        return np.full(horizon, y[-1])
    return y[y.size - season + np.arange(horizon) % season]
