"""Forecast accuracy metrics as pure functions.

Every metric takes ``(actual, pred)`` in that order, array-likes of equal
shape, with options keyword-only, and returns a float averaged over all
elements. No hidden state, so a backtest, a promotion check and a test can
call them and agree. NaN in the inputs propagates to a NaN result rather
than being skipped: a missing forecast should be noticed, not averaged away.

Each metric is the mean of elementwise terms (``*_terms``, ``scaled_errors``,
``interval_hits``; RMSE is the root of the mean squared error), so a backtest
can average the same terms per series and horizon step
(``series_step_mean``) and then aggregate them as the forecasting
competitions do (``competition_mean``) without a Python loop per series.
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
    return float(np.mean(smape_terms(actual, pred)))


def smape_terms(actual: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """The elementwise terms sMAPE averages: ``200 * |y - f| / (|y| + |f|)``, 0 where ``y = f = 0``."""
    y, f = _pair(actual, pred)
    denominator = np.abs(y) + np.abs(f)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, 200.0 * np.abs(y - f) / safe)


def mase(
    actual: ArrayLike,
    pred: ArrayLike,
    *,
    insample: ArrayLike | None = None,
    season: int = 1,
    scale: ArrayLike | None = None,
) -> float:
    """Mean absolute scaled error: MAE divided by the in-sample MAE of the seasonal-naive forecast.

    The scale is ``mean(|insample[t] - insample[t - season]|)``; below 1 means
    better than repeating the value one season earlier. ``insample`` is one
    history ``(T,)`` shared by every forecast, or one history per row ``(B, T)``
    for forecasts ``(B, ...)``, in which case each row is scaled by its own
    history and the result is the mean over rows. An in-sample history that
    is constant at lag ``season`` has scale 0 and raises ``ForecastingError``
    rather than returning inf/NaN.

    ``scale`` instead of ``insample``: the denominators already computed
    (e.g. by ``seasonal_naive_scale`` over rolling histories), ``()`` or ``(B,)``.
    """
    y, f = _pair(actual, pred)
    if (insample is None) == (scale is None):
        raise ValueError("mase needs exactly one of insample= or scale=")
    if scale is not None:
        return float(np.mean(scaled_errors(y, f, scale=scale)))
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


def scaled_errors(actual: ArrayLike, pred: ArrayLike, *, scale: ArrayLike) -> np.ndarray:
    """The elementwise terms MASE averages: ``|y - f| / scale``.

    ``scale`` is one denominator ``()`` or one per row ``(B,)`` of ``(B, ...)``
    forecasts. A zero scale raises ``ForecastingError`` naming the rows: the
    seasonal-naive forecast was perfect in-sample, so the ratio is undefined.
    """
    y, f = _pair(actual, pred)
    s = np.asarray(scale, dtype=np.float64)
    if s.ndim > 1 or (s.ndim == 1 and (y.ndim == 0 or s.shape[0] != y.shape[0])):
        raise ValueError(f"scale must be () or (B,) with B = {y.shape[:1]}, got shape {s.shape}")
    zero = np.flatnonzero(np.atleast_1d(s == 0))
    if zero.size:
        where = "the scale is" if s.ndim == 0 else f"scale rows {zero[:10].tolist()} are"
        raise ForecastingError(f"MASE is undefined: {where} 0 (constant in-sample history, seasonal-naive error 0)")
    return np.abs(y - f) / s.reshape(-1, *(1,) * (y.ndim - 1)) if s.ndim else np.abs(y - f) / s


def seasonal_naive_scale(values: ArrayLike, starts: ArrayLike, ends: ArrayLike, *, season: int) -> np.ndarray:
    """MASE denominators of many histories at once: ``(B,)`` in-sample seasonal-naive MAEs.

    History ``b`` is ``values[starts[b]:ends[b]]`` of one 1-d array (e.g. every
    series' target concatenated); its scale is
    ``mean(|v[t] - v[t - season]|)`` over ``starts[b] + season <= t < ends[b]``,
    exactly what ``mase(..., insample=values[starts[b]:ends[b]])`` uses. One
    cumulative sum serves every row, so rolling origins cost O(points), not
    O(origins x history). A history with at most ``season`` points raises
    ``ForecastingError``. Constant histories give 0: ``scaled_errors`` refuses
    those, so the caller decides how to report them.
    """
    v = np.asarray(values, dtype=np.float64)
    a = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ValueError(f"season must be an integer >= 1, got {season!r}")
    if v.ndim != 1 or a.shape != e.shape or a.ndim != 1:
        raise ValueError(f"values must be 1-d and starts/ends equal 1-d shapes, got {v.shape}, {a.shape}, {e.shape}")
    if a.size and (a.min() < 0 or e.max() > v.shape[0]):
        raise ValueError(f"histories must lie within the {v.shape[0]} values")
    short = np.flatnonzero(e - a <= season)
    if short.size:
        b = short[0]
        raise ForecastingError(
            f"MASE needs more than season {season} in-sample points; history {b} has {e[b] - a[b]} "
            f"({short.size} histories are that short)"
        )
    lagged = np.zeros_like(v)
    lagged[season:] = np.abs(v[season:] - v[:-season])  # lagged[t] = |v[t] - v[t - season]|
    # A NaN (left padding of a short series) must not poison every later sum: its terms are left out.
    counted = ~np.isnan(lagged)
    counted[:season] = False
    cumulative = np.concatenate([[0.0], np.cumsum(np.where(counted, lagged, 0.0))])  # sum(lagged[:k]) over counted
    count = np.concatenate([[0], np.cumsum(counted)])
    first = a + season
    n = count[e] - count[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (cumulative[e] - cumulative[first]) / np.maximum(n, 1), np.nan)


def pinball(actual: ArrayLike, pred: ArrayLike, *, quantile: float) -> float:
    """Pinball (quantile) loss: ``mean(max(q * (y - f), (q - 1) * (y - f)))`` for quantile level ``q``.

    In the units of the series; 0.5 x MAE for the median. Lower is better.
    """
    return float(np.mean(pinball_terms(actual, pred, quantile=quantile)))


def pinball_terms(actual: ArrayLike, pred: ArrayLike, *, quantile: float) -> np.ndarray:
    """The elementwise terms pinball averages."""
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float, np.floating)) or not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be a number in (0, 1), got {quantile!r}")
    y, f = _pair(actual, pred)
    diff = y - f
    return np.maximum(quantile * diff, (quantile - 1.0) * diff)


def interval_coverage(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of actuals inside the closed interval ``[lower, upper]``, in [0, 1].

    Compare with the interval's nominal level (0.8 for the 0.1-0.9 quantiles).
    """
    return float(np.mean(interval_hits(actual, lower, upper)))


def interval_hits(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> np.ndarray:
    """Elementwise 1.0 where ``lower <= y <= upper``, else 0.0; NaN where any input is NaN.

    Crossed bounds (``lower > upper``) raise ``ValueError``: they are a broken
    forecast, and counting them as misses would hide that.
    """
    y, lo = _pair(actual, lower)
    _, hi = _pair(actual, upper)
    crossed = lo > hi
    if crossed.any():
        first = np.argwhere(crossed)[0].tolist()
        raise ValueError(f"interval bounds cross at {int(crossed.sum())} point(s), first at index {first}")
    hits = ((lo <= y) & (y <= hi)).astype(np.float64)
    return np.where(np.isnan(y) | np.isnan(lo) | np.isnan(hi), np.nan, hits)


def series_step_mean(terms: ArrayLike, series: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Average per-window terms ``(N, H)`` per series and horizon step -> ``(labels (S,), (S, H))``.

    ``series[n]`` labels window ``n``; labels come back sorted, one row each.
    One ``bincount`` per step, so thousands of series cost no Python loop over
    them. Apply ``np.sqrt`` to the squared-error means to get RMSE per series
    and step.
    """
    t = np.asarray(terms, dtype=np.float64)
    labels, group = np.unique(np.asarray(series), return_inverse=True)
    if t.ndim != 2 or group.shape[0] != t.shape[0]:
        raise ValueError(f"terms must be (N, H) with one series label per row, got {t.shape} and {group.shape}")
    if t.shape[0] == 0:
        raise ValueError("no windows to average")
    counts = np.bincount(group, minlength=labels.size).astype(np.float64)  # (S,)
    sums = np.stack([np.bincount(group, weights=t[:, h], minlength=labels.size) for h in range(t.shape[1])], axis=1)
    return labels, sums / counts[:, None]  # (S,), (S, H)


def competition_mean(per_series_step: ArrayLike) -> tuple[np.ndarray, float]:
    """Aggregate a metric as the M competitions do: mean over series for each step, then over steps.

    ``(S, H)`` -> ``(per-step (H,), overall float)``. Every series weighs the
    same whatever its number of origins, so a long series cannot drown the
    short ones. NaN propagates, as in every metric here.
    """
    m = np.asarray(per_series_step, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"expected a non-empty (series, horizon) array, got shape {m.shape}")
    per_step = m.mean(axis=0)  # (H,)
    return per_step, float(per_step.mean())


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
