"""NeuralForecast ``LSTM`` (Nixtla), used as its documentation shows.

Settings for the standard task: ``LSTM(h=24, input_size=168,
inference_input_size=168, encoder_hidden_size=64, encoder_n_layers=2,
loss=MSE(), learning_rate=1e-3, batch_size=n_series, windows_batch_size=256,
max_steps=ceil(train windows / 256), scaler_type='robust' (its default),
recurrent=False (its default: direct, an MLP decoder of 2 x 128 on the last
24 LSTM outputs))``, ``NeuralForecast(freq='h')``.

Semantics that differ from an epoch: NeuralForecast trains for
``max_steps`` steps, each sampling ``batch_size`` series and then
``windows_batch_size`` windows among all of theirs (rebuilt by ``unfold``
at every step), so "one epoch" here is as many windows seen, not every
window once. Its inputs are the same per-series standardised values the
raw loop and Darts get (inverted afterwards), on which its own per-window
robust scaler runs as usual.

Inference is ``NeuralForecast.predict(df)`` on one 168-point frame per
window (its batch prediction API forecasts after each series' end); the
no-refit backtest is ``cross_validation(n_windows=..., step_size=1,
refit=False, use_fitted=True)`` on the full series: the fitted model,
without retraining.

Time to accuracy (``converge``), with NeuralForecast's own early stopping:
``fit(df=training part, val_size=validation points)``, ``max_steps`` =
``max_epochs`` epochs' worth of steps, ``val_check_steps`` = one epoch's
steps and ``early_stop_patience_steps`` = the task's patience (counted in
validation checks, so in epochs). NeuralForecast then trains on windows
whose targets end before the last ``val_size`` points and validates on every
stride-1 window whose targets lie in them: the shared validation part. It
keeps the last weights (the project restores its best epoch's).

Ragged series (M1): the long frames drop the NaN padding, ``freq`` is the
task's ("MS"), and ``start_padding_enabled=True`` (NeuralForecast's option
for series shorter than ``input_size``) left-pads every series with
``input_size - 1`` masked zeros, so short series train and forecast. Its
training windows are then every stride-1 window with at least one observed
lookback point and one observed target (targets past the fit part's end are
masked out of the loss), more than ``data.train_windows`` counts; "an epoch"
stays ``data.train_windows`` windows' worth of steps. The hold-out is
``cross_validation`` with one window (the one origin).
"""

from __future__ import annotations

import logging
import math
import time
import warnings

import numpy as np
import pandas as pd

from benchmarks.contestants import epoch_timer, validation_loss
from benchmarks.task import TaskData

SETTINGS: dict[str, object] = {
    "encoder_dropout": 0.0,
    "scaler_type": "robust",
    "recurrent": False,
    "inference_windows_batch_size": 4096,
    "random_seed": 0,
}


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "neuralforecast"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _epoch_steps(data: TaskData) -> int:
    """Optimiser steps of one epoch's worth of windows (every stride-1 training window once)."""
    return math.ceil(data.train_windows / data.task.batch_size)


def _model(data: TaskData, max_steps: int, callbacks: list) -> object:
    from neuralforecast.losses.pytorch import MSE
    from neuralforecast.models import LSTM

    task = data.task
    stopping = {}
    if task.early_stopping:
        stopping = {"val_check_steps": _epoch_steps(data), "early_stop_patience_steps": task.patience}
    return LSTM(
        h=task.horizon, input_size=task.lookback, inference_input_size=task.lookback,
        encoder_hidden_size=task.hidden, encoder_n_layers=task.layers, loss=MSE(),
        learning_rate=task.learning_rate, max_steps=max_steps,
        batch_size=data.n_series, windows_batch_size=task.batch_size, valid_batch_size=data.n_series,
        accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False, logger=False,
        callbacks=callbacks, start_padding_enabled=data.ragged, **stopping, **SETTINGS,
    )


def _long(data: TaskData, scaled: np.ndarray, points: int | None = None) -> pd.DataFrame:
    """The long frame of the first ``points`` columns, without the NaN padding rows of ragged series."""
    n = data.n_points if points is None else points
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(data.n_series), n),
            "ds": np.tile(data.timestamps.tz_localize(None)[:n], data.n_series),
            "y": scaled[:, :n].ravel(),
        }
    )
    return frame[frame["y"].notna()].reset_index(drop=True) if data.ragged else frame


def _holdout(data: TaskData, nf: object, full: pd.DataFrame) -> np.ndarray:
    """``(n_series, n_origins, horizon)`` scaled forecasts of the no-refit cross-validation."""
    cv = nf.cross_validation(df=full, n_windows=len(data.origins), step_size=1, refit=False, use_fitted=True)
    first = data.timestamps.tz_localize(None)[data.train_points - 1]
    if cv["cutoff"].min() != first:
        raise RuntimeError(f"first cross-validation cutoff is {cv['cutoff'].min()}, not {first}")
    cv = cv.sort_values(["unique_id", "cutoff", "ds"])
    return cv["LSTM"].to_numpy().reshape(data.n_series, len(data.origins), data.task.horizon)


def train(data: TaskData) -> dict:
    """``NeuralForecast.fit`` on the points before the hold-out: as many windows as one epoch, or up to
    ``max_epochs`` epochs' worth, early-stopped on the validation part."""
    from neuralforecast import NeuralForecast

    _quiet()
    task = data.task
    per_epoch = _epoch_steps(data)
    steps = per_epoch * task.epoch_cap if task.early_stopping else math.ceil(data.train_windows * task.epochs / task.batch_size)
    timer = epoch_timer()
    scaled, mean, std = data.standardized()
    t0 = time.perf_counter()
    nf = NeuralForecast(models=[_model(data, steps, [timer])], freq=data.freq)
    nf.fit(df=_long(data, scaled, data.train_points), val_size=data.validation)
    wall = time.perf_counter() - t0
    pred = _holdout(data, nf, _long(data, scaled))
    pred = pred * std[:, None, None] + mean[:, None, None]
    return {
        "windows": timer.batches * task.batch_size, "steps": timer.batches, "epochs": timer.batches / per_epoch,
        "train_seconds": timer.seconds, "setup_seconds": wall - timer.seconds, "fit_wall_seconds": wall,
        "val_loss": validation_loss(timer.val_losses, restores_best=False), "forecasts": pred,
    }


def predict(data: TaskData, repeats: int) -> dict:
    """``predict`` on one frame per hold-out window against ``cross_validation(refit=False, use_fitted=True)``."""
    from neuralforecast import NeuralForecast

    _quiet()
    task = data.task
    scaled, _, _ = data.standardized()
    nf = NeuralForecast(models=[_model(data, 1, [])], freq=data.freq)
    nf.fit(df=_long(data, scaled, data.train_points), val_size=0)  # one step: speed does not depend on weights
    full = _long(data, scaled)

    stamps = data.timestamps.tz_localize(None).to_numpy()
    steps = data.origins[:, None] - task.lookback + 1 + np.arange(task.lookback)  # (n_origins, lookback)
    windows = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(data.holdout_windows), task.lookback),
            "ds": np.tile(stamps[steps].ravel(), data.n_series),
            "y": scaled[:, steps].ravel(),
        }
    )
    cases = {
        "inference_seconds": lambda: nf.predict(df=windows),
        "backtest_seconds": lambda: _holdout(data, nf, full),
    }
    out = cases["inference_seconds"]()  # warm-up, and a check of the window count
    if len(out) != data.holdout_windows * task.horizon:
        raise RuntimeError(f"predict returned {len(out)} rows; expected {data.holdout_windows} x {task.horizon}")
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
    return {"windows": data.holdout_windows, **timings}
