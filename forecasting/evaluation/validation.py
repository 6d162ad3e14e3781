"""Held-out windows scored against the seasonal-naive baseline: the validation and test tables of a fit.

Backtests (``evaluation.backtest``) score rolling origins; this module scores the fixed validation
and test windows of one training run, in original units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forecasting.evaluation import metrics
from forecasting.evaluation.baselines import backfill, seasonal_naive
from forecasting.evaluation.metrics import seasonal_naive_scale
from forecasting.evaluation.statistical import forecast_at_origins
from forecasting.inference import ModelInputs, predict_starts
from forecasting.model.forecaster import TrainedForecaster
from forecasting.prep.windows import SeriesPanel, WindowIndex


@dataclass(frozen=True)
class WindowForecasts:
    """Model and baseline forecasts for a set of windows, all in original units."""

    series: np.ndarray  # (windows,) series index into the panel
    lookback: np.ndarray  # (windows, lookback) observed target
    actual: np.ndarray  # (windows, horizon)
    predicted: np.ndarray  # (windows, horizon) the point forecast
    baseline: np.ndarray  # (windows, horizon)
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)  # "q0.1" -> (windows, horizon)
    scale: np.ndarray | None = None  # (windows,) MASE denominators: in-sample seasonal-naive MAE up to each origin



def window_forecasts(
    trained: TrainedForecaster,
    panel: SeriesPanel,
    index: WindowIndex,
    *,
    season: int,
    inputs: ModelInputs | None = None,
) -> WindowForecasts:
    """Forecast every window of ``index`` with the model and the seasonal-naive baseline."""
    spec = trained.spec
    positions = index.starts[:, None] + np.arange(spec.length)  # (windows, length)
    target = panel.values[positions, 0]  # (windows, length), raw units; NaN where padded
    lookback, actual = target[:, : spec.lookback], target[:, spec.lookback :]
    pred = predict_starts(trained, panel, index.starts, inputs=inputs)
    baseline = seasonal_naive(backfill(lookback), spec.horizon, season=season)
    quantiles = {k: v for k, v in pred.items() if k != "mean"}
    scale = _scales(panel, index, spec.lookback, season)
    return WindowForecasts(index.series, lookback, actual, pred["mean"], baseline, quantiles, scale)


def _scales(panel: SeriesPanel, index: WindowIndex, lookback: int, season: int) -> np.ndarray:
    """``(windows,)`` MASE denominators from each series' history up to the origin; NaN where it is too short."""
    out = np.full(len(index), np.nan)
    first = panel.offsets[index.series]  # (windows,) first row of each window's series (padding included: NaN-safe)
    end = index.starts + lookback  # (windows,) one past each origin
    ok = end - first > season
    if ok.any():
        out[ok] = seasonal_naive_scale(panel.values[:, 0], first[ok], end[ok], season=season)
    return out


def _mase(wf: WindowForecasts, pred: np.ndarray) -> float:
    """Mean over series of each series' mean scaled error (every series weighs the same); NaN without scales."""
    if wf.scale is None:
        return float("nan")
    valid = np.isfinite(wf.scale) & (wf.scale > 0)
    if not valid.any():
        return float("nan")
    per_window = np.nanmean(np.abs(wf.actual[valid] - pred[valid]), axis=1) / wf.scale[valid]  # (W,)
    series = wf.series[valid]
    sums = np.bincount(series, weights=per_window)
    counts = np.bincount(series)
    return float(np.mean(sums[counts > 0] / counts[counts > 0]))


def score_windows(wf: WindowForecasts, *, prefix: str) -> dict[str, float]:
    """Accuracy of model and baseline over all windows and steps, in original units.

    MAE and RMSE of both, MASE of both (each series' mean scaled error, then the mean over series, so
    every series weighs the same), the MAE skill against the baseline (> 0 beats it)
    and, for quantile models, the mean pinball loss and the coverage of every
    central interval next to its nominal level: ``val_coverage_80`` is the
    share of actuals inside [q0.1, q0.9], ``val_coverage_80_nominal`` 0.8.
    """
    if wf.actual.size == 0:
        return {}
    out = {
        f"{prefix}_mae": metrics.mae(wf.actual, wf.predicted),
        f"{prefix}_rmse": metrics.rmse(wf.actual, wf.predicted),
        f"{prefix}_baseline_mae": metrics.mae(wf.actual, wf.baseline),
        f"{prefix}_baseline_rmse": metrics.rmse(wf.actual, wf.baseline),
        f"{prefix}_windows": float(wf.actual.shape[0]),
    }
    mase, base_mase = _mase(wf, wf.predicted), _mase(wf, wf.baseline)
    if np.isfinite(mase):
        out[f"{prefix}_mase"], out[f"{prefix}_baseline_mase"] = mase, base_mase
    base = out[f"{prefix}_baseline_mae"]
    # Skill > 0 means the model beats the baseline; undefined when the baseline is perfect.
    out[f"{prefix}_mae_skill"] = 1.0 - out[f"{prefix}_mae"] / base if base > 0 else float("nan")
    if wf.quantiles:
        levels = {float(name[1:]): q for name, q in wf.quantiles.items()}
        out[f"{prefix}_pinball"] = float(
            np.mean([metrics.pinball(wf.actual, q, quantile=level) for level, q in levels.items()])
        )
        for lo, hi, nominal in central_intervals(tuple(levels)):
            pct = round(100 * nominal)
            out[f"{prefix}_coverage_{pct}"] = metrics.interval_coverage(wf.actual, levels[lo], levels[hi])
            out[f"{prefix}_coverage_{pct}_nominal"] = nominal
    return out


def central_intervals(levels: tuple[float, ...]) -> list[tuple[float, float, float]]:
    """``(lower, upper, nominal)`` for every pair of levels symmetric about 0.5, e.g. (0.1, 0.9, 0.8)."""
    pairs = []
    for lo in sorted(q for q in levels if q < 0.5):
        hi = next((q for q in levels if abs(q - (1.0 - lo)) < 1e-9), None)
        if hi is not None:
            pairs.append((lo, hi, round(hi - lo, 9)))
    return pairs


STATISTICAL_ORIGINS_PER_SERIES = 4
"""Held-out origins per series the statistical baselines are refitted at after training: the most recent
ones, a horizon apart. Fitting ETS at every validation origin of an hourly series would take minutes."""
STATISTICAL_FITS = 400
"""About how many windows the comparison fits in all (each AutoETS fit takes ~0.1 s on monthly data): with
many series, fewer origins per series, never fewer than one."""


def statistical_comparison(
    trained: TrainedForecaster,
    panel: SeriesPanel,
    index: WindowIndex,
    forecasts: WindowForecasts,
    *,
    prefix: str,
    per_series: int | None = None,
) -> dict[str, float]:
    """The model against the statistical baselines (``baseline.statistical``) on the same held-out windows.

    Up to ``per_series`` most recent non-overlapping windows per series (default 4, fewer when there are
    so many series that the fits would pass ``STATISTICAL_FITS``); each baseline is refitted per
    window on the series' history up to its origin. Returns ``{prefix}_stat_windows``, the model's MAE and
    RMSE on those windows (``{prefix}_stat_model_mae``) and each baseline's (``{prefix}_ets_mae``, ...).
    """
    config = trained.config
    models = config.baseline.statistical
    if not models or not len(index):
        return {}
    spec = trained.spec
    if per_series is None:
        series = max(1, int(np.unique(index.series).size))
        per_series = max(1, min(STATISTICAL_ORIGINS_PER_SERIES, STATISTICAL_FITS // series))
    pick = recent_windows(index, spacing=spec.horizon, per_series=per_series)  # positions into index
    season = config.baseline.season_length
    origin = index.starts[pick] + spec.lookback - 1  # (W,) global row of each origin
    fitted, _ = forecast_at_origins(
        panel.values[:, 0], panel.offsets[index.series[pick]], origin, spec.horizon, season=season,
        lookback=spec.lookback, models=models, max_history=config.baseline.statistical_history,
    )
    actual = forecasts.actual[pick]
    out = {
        f"{prefix}_stat_windows": float(len(pick)),
        f"{prefix}_stat_model_mae": metrics.mae(actual, forecasts.predicted[pick]),
        f"{prefix}_stat_model_rmse": metrics.rmse(actual, forecasts.predicted[pick]),
    }
    for name, pred in fitted.forecasts.items():
        out[f"{prefix}_{name}_mae"] = metrics.mae(actual, pred)
        out[f"{prefix}_{name}_rmse"] = metrics.rmse(actual, pred)
    return out


def recent_windows(index: WindowIndex, *, spacing: int, per_series: int) -> np.ndarray:
    """Positions of each series' latest window and every ``spacing``-th one before it, up to ``per_series``.

    ``index`` is ordered by series, then time (as ``build_index`` makes it); vectorised, so it costs
    O(windows) however many series there are.
    """
    n = len(index)
    if n == 0:
        return np.empty(0, np.int64)
    series = index.series
    last = np.r_[series[1:] != series[:-1], True]  # (n,) True at each series' latest window
    end = np.flatnonzero(last)  # (S,) position of each series' latest window
    rank = end[np.searchsorted(end, np.arange(n))] - np.arange(n)  # (n,) 0 = latest, 1 = the one before ...
    keep = (rank % spacing == 0) & (rank // spacing < per_series)
    return np.flatnonzero(keep).astype(np.int64)
