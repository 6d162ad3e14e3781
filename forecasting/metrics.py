"""Forecast accuracy metrics as pure functions.

Every metric takes ``(actual, pred)`` in that order, array-likes of equal
shape, with options keyword-only, and returns a float averaged over all
elements. No hidden state, so a backtest, a promotion check and a test can
call them and agree. NaN in the inputs propagates to a NaN result rather
than being skipped: a missing forecast should be noticed, not averaged away.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from forecasting.errors import ForecastingError


def mae(actual: ArrayLike, pred: ArrayLike) -> float:
    """Mean absolute error: ``mean(|y - f|)``, in the units of the series."""
    y, f = _pair(actual, pred)
    return float(np.mean(np.abs(y - f)))


def rmse(actual: ArrayLike, pred: ArrayLike) -> float:
    """Root mean squared error: ``sqrt(mean((y - f)^2))``; punishes large misses more than MAE."""
    y, f = _pair(actual, pred)
    return float(np.sqrt(np.mean((y - f) ** 2)))


def smape(actual: ArrayLike, pred: ArrayLike) -> float:
    """Symmetric MAPE in percent, the M3/M4 definition: ``mean(200 * |y - f| / (|y| + |f|))``.

    Ranges over [0, 200]. A term with ``y = f = 0`` is a perfect forecast of
    zero and counts as 0 instead of 0/0, so series that sit at zero (e.g. no
    rain) do not turn the whole score into NaN.
    """
    y, f = _pair(actual, pred)
    denominator = np.abs(y) + np.abs(f)
    safe = np.where(denominator == 0, 1.0, denominator)
    return float(np.mean(np.where(denominator == 0, 0.0, 200.0 * np.abs(y - f) / safe)))


def mase(actual: ArrayLike, pred: ArrayLike, *, insample: ArrayLike, season: int = 1) -> float:
    """Mean absolute scaled error: MAE divided by the in-sample MAE of the seasonal-naive forecast.

    The scale is ``mean(|insample[t] - insample[t - season]|)``; below 1 means
    better than repeating the value one season earlier. ``insample`` is one
    history ``(T,)`` shared by every forecast, or one history per row ``(B, T)``
    for forecasts ``(B, ...)``, in which case each row is scaled by its own
    history and the result is the mean over rows. An in-sample history that
    is constant at lag ``season`` has scale 0 and raises ``ForecastingError``
    rather than returning inf/NaN.
    """
    y, f = _pair(actual, pred)
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ValueError(f"season must be an integer >= 1, got {season!r}")
    history = np.asarray(insample, dtype=np.float64)
    if history.ndim not in (1, 2) or (history.ndim == 2 and (y.ndim == 0 or history.shape[0] != y.shape[0])):
        raise ValueError(f"insample must be (T,) or (B, T) with B = {y.shape[:1]}, got shape {history.shape}")
    if history.shape[-1] <= season:
        raise ForecastingError(f"MASE needs more than season {season} in-sample points, got {history.shape[-1]}")

    scale = np.mean(np.abs(history[..., season:] - history[..., :-season]), axis=-1)  # () or (B,)
    constant = np.flatnonzero(np.atleast_1d(scale == 0))
    if constant.size:
        where = "the in-sample series is" if history.ndim == 1 else f"in-sample rows {constant.tolist()} are"
        raise ForecastingError(f"MASE is undefined: {where} constant at lag {season} (seasonal-naive error 0)")
    errors = np.abs(y - f)
    if history.ndim == 2:
        errors = errors / scale.reshape(-1, *(1,) * (y.ndim - 1))
        return float(np.mean(errors))
    return float(np.mean(errors) / scale)


def by_step(metric: Callable[..., float], actual: ArrayLike, pred: ArrayLike, **options: object) -> np.ndarray:
    """``metric`` per horizon step of ``(B, H)`` arrays -> ``(H,)``; ``options`` go to the metric."""
    y, f = _pair(actual, pred)
    if y.ndim != 2:
        raise ValueError(f"by_step needs (batch, horizon) arrays, got shape {y.shape}")
    return np.array([metric(y[:, h], f[:, h], **options) for h in range(y.shape[1])], dtype=np.float64)


def _pair(actual: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(actual, dtype=np.float64)
    f = np.asarray(pred, dtype=np.float64)
    if y.shape != f.shape:
        raise ValueError(f"actual has shape {y.shape} but pred has shape {f.shape}")
    if y.size == 0:
        raise ValueError("actual and pred are empty")
    return y, f
