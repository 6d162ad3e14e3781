"""Baseline forecasts over lookback windows.

A trained model is only worth serving if it beats these. Each takes the
lookback windows ``x`` as ``(B, lookback)`` in raw units and returns
``(B, horizon)``, so a backtest scores baselines on exactly the windows the
model saw, in one vectorised call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from forecasting.errors import ForecastingError


def naive(x: ArrayLike, horizon: int) -> np.ndarray:
    """Repeat the last observed value."""
    x = _windows(x, horizon)
    return np.repeat(x[:, -1:], horizon, axis=1)  # (B, horizon)


def seasonal_naive(x: ArrayLike, horizon: int, *, season: int) -> np.ndarray:
    """Repeat the last full season: step h (1-based) takes ``x[:, L - season + (h - 1) % season]``."""
    x = _windows(x, horizon)
    lookback = x.shape[1]
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ValueError(f"season must be an integer >= 1, got {season!r}")
    if season > lookback:
        raise ValueError(f"season {season} is longer than lookback {lookback}; a season needs a full cycle of history")
    columns = lookback - season + np.arange(horizon) % season  # (horizon,)
    return x[:, columns]  # (B, horizon)


def drift(x: ArrayLike, horizon: int) -> np.ndarray:
    """Extend the line through the first and last point (naive with the average change)."""
    x = _windows(x, horizon)
    lookback = x.shape[1]
    # One point has no trend; fall back to naive instead of dividing by zero.
    slope = (x[:, -1] - x[:, 0]) / (lookback - 1) if lookback > 1 else np.zeros(x.shape[0])  # (B,)
    steps = np.arange(1, horizon + 1)  # (horizon,)
    return x[:, -1:] + slope[:, None] * steps  # (B, horizon)


def mean(x: ArrayLike, horizon: int) -> np.ndarray:
    """Repeat the lookback mean."""
    x = _windows(x, horizon)
    return np.repeat(x.mean(axis=1, keepdims=True), horizon, axis=1)  # (B, horizon)


BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "naive": naive,
    "seasonal_naive": seasonal_naive,
    "drift": drift,
    "mean": mean,
}


def backfill(x: np.ndarray) -> np.ndarray:
    """``(B, L)`` windows whose padded (NaN) steps take the first observed value, so baselines stay defined."""
    if not np.isnan(x).any():
        return x
    first = np.argmax(~np.isnan(x), axis=1)  # (B,)
    return np.where(np.isnan(x), x[np.arange(x.shape[0]), first][:, None], x)


def baseline_forecast(name: str, x: ArrayLike, horizon: int, *, season: int = 1) -> np.ndarray:
    """Run the baseline called ``name``; ``season`` is used only by ``seasonal_naive``."""
    if name not in BASELINES:
        raise ForecastingError(f"unknown baseline '{name}'; choose one of {sorted(BASELINES)}")
    if name == "seasonal_naive":
        return seasonal_naive(x, horizon, season=season)
    return BASELINES[name](x, horizon)


def _windows(x: ArrayLike, horizon: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"x must be (batch, lookback) with lookback >= 1, got shape {x.shape}")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    return x  # (B, lookback)
