"""Score a network on held-out windows against the seasonal-naive baseline, in original units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from forecasting import metrics
from forecasting.baselines import seasonal_naive
from forecasting.forecaster import TrainedForecaster
from forecasting.scaling import SeriesScaler
from forecasting.windows import SeriesPanel, WindowIndex, WindowSpec, gather


@dataclass(frozen=True)
class WindowForecasts:
    """Model and baseline forecasts for a set of windows, all in original units."""

    series: np.ndarray  # (windows,) series index into the panel
    lookback: np.ndarray  # (windows, lookback) observed target
    actual: np.ndarray  # (windows, horizon)
    predicted: np.ndarray  # (windows, horizon)
    baseline: np.ndarray  # (windows, horizon)


@torch.no_grad()
def predict_scaled(net: nn.Module, values: torch.Tensor, starts: np.ndarray, lookback: int, *, batch_size: int = 4096) -> np.ndarray:
    """Run the network over windows starting at ``starts`` in one batched pass per chunk."""
    net.eval()
    device = next(net.parameters()).device
    out = []
    for chunk in np.array_split(starts, max(1, int(np.ceil(len(starts) / batch_size)))):
        if len(chunk) == 0:
            continue
        x = gather(values, torch.as_tensor(chunk, dtype=torch.long), lookback)  # (batch, lookback, features)
        out.append(net(x.to(device)).float().cpu().numpy())  # (batch, horizon)
    if not out:
        return np.empty((0, 0))
    return np.concatenate(out).astype(np.float64)


def predict_starts(
    trained: TrainedForecaster,
    panel: SeriesPanel,
    starts: np.ndarray,
    *,
    scaler: SeriesScaler | None = None,
) -> dict[str, np.ndarray]:
    """Forecasts in original units for the windows whose lookback begins at rows ``starts``.

    The one entry point for batched inference (batch prediction, evaluation,
    backtests): every window goes through the network in large chunks, never
    one Python call per window or origin. Returns ``{"mean": (windows, horizon)}``;
    models with more outputs add keys (e.g. quantiles) of the same shape.
    ``scaler`` defaults to the trained one extended to series it never saw.
    """
    scaler = scaler or trained.scaler.extended(panel)
    scaled = torch.from_numpy(scaler.transform(panel))  # (n_points, features)
    pred = predict_scaled(trained.network(), scaled, np.asarray(starts, dtype=np.int64), trained.spec.lookback)
    row_series = np.searchsorted(panel.offsets, starts, side="right") - 1  # (windows,)
    ids = [panel.series_ids[i] for i in row_series]
    mean = scaler.inverse_target(pred, ids) if len(ids) else pred
    return {"mean": mean}


def window_forecasts(
    net: nn.Module,
    panel: SeriesPanel,
    scaled: torch.Tensor,
    index: WindowIndex,
    spec: WindowSpec,
    scaler: SeriesScaler,
    *,
    season: int,
) -> WindowForecasts:
    """Forecast every window of ``index`` with the network and the seasonal-naive baseline."""
    positions = index.starts[:, None] + np.arange(spec.length)  # (windows, length)
    target = panel.values[positions, 0]  # (windows, length), raw units
    lookback, actual = target[:, : spec.lookback], target[:, spec.lookback :]
    scaled_pred = predict_scaled(net, scaled, index.starts, spec.lookback)  # (windows, horizon)
    ids = [panel.series_ids[i] for i in index.series]
    predicted = scaler.inverse_target(scaled_pred, ids) if len(ids) else scaled_pred
    baseline = seasonal_naive(lookback, spec.horizon, season=season)
    return WindowForecasts(index.series, lookback, actual, predicted, baseline)


def score(wf: WindowForecasts, *, prefix: str) -> dict[str, float]:
    """MAE and RMSE of model and baseline over all windows and steps, plus the skill against the baseline."""
    if wf.actual.size == 0:
        return {}
    out = {
        f"{prefix}_mae": metrics.mae(wf.actual, wf.predicted),
        f"{prefix}_rmse": metrics.rmse(wf.actual, wf.predicted),
        f"{prefix}_baseline_mae": metrics.mae(wf.actual, wf.baseline),
        f"{prefix}_baseline_rmse": metrics.rmse(wf.actual, wf.baseline),
    }
    base = out[f"{prefix}_baseline_mae"]
    # Skill > 0 means the model beats the baseline; undefined when the baseline is perfect.
    out[f"{prefix}_mae_skill"] = 1.0 - out[f"{prefix}_mae"] / base if base > 0 else float("nan")
    return out
