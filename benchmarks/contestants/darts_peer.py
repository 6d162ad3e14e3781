"""Darts ``BlockRNNModel("LSTM")`` (Unit8), used as its documentation shows.

Settings for the standard task: ``BlockRNNModel(model="LSTM",
input_chunk_length=168, output_chunk_length=24, hidden_dim=64,
n_rnn_layers=2, dropout=0, batch_size=256, n_epochs=1,
optimizer_kwargs={"lr": 1e-3}, random_state=0)`` with its default loss
(MSE) and head (the last 24 LSTM outputs through one linear layer), trained
by ``fit(list_of_series)``: one epoch over every stride-1 window of the
training part, like the project. Each series is a float32 ``TimeSeries`` of
the per-series standardised values (Darts does not scale by itself;
forecasts are inverted afterwards).

Inference is ``predict(n=24, series=[one lookback series per window],
batch_size=4096)``; the no-refit backtest is
``historical_forecasts(retrain=False, last_points_only=False, stride=1,
forecast_horizon=24)`` from the first hold-out point, with the same
``batch_size`` in ``predict_kwargs``.

Time to accuracy (``converge``), as Darts' documentation shows early
stopping: ``fit(train_series, val_series=...)`` with ``n_epochs=max_epochs``
and a Lightning ``EarlyStopping(monitor="val_loss", patience=...)`` in
``pl_trainer_kwargs["callbacks"]``. The training series end where the
validation part starts; each validation series is that part with the
lookback before it, so Darts validates on exactly the windows whose targets
lie in the shared validation part. Darts keeps the last epoch's weights
(the project restores its best epoch's).

Ragged series (M1): Darts cannot forecast, train or validate from fewer than
``input_chunk_length`` points, so, as the documented workaround, each
series' standardised values are left-padded with its first observed value
(unlike the project and NeuralForecast, nothing marks the padding). A
training series whose fit part is shorter than one window but holds at
least ``min_length + horizon`` observed points is padded to exactly one
window (as the project pads); a shorter one is **dropped from training**
(only validated on and forecast): padding its targets would train on
invented values. ``data.train_windows`` counts exactly these windows, but
Darts' training set has ``trained series x most windows of one series``
samples per epoch (it re-samples a shorter series' windows so that every
series weighs the same), so an epoch sees that many windows on ragged data.
Validation and hold-out series are padded back to a full lookback before
their first target.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings

import numpy as np

from benchmarks.contestants import epoch_timer, validation_loss
from benchmarks.task import TaskData

INFERENCE_BATCH = 4096


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _filled(data: TaskData, scaled: np.ndarray) -> np.ndarray:
    """``scaled`` with each series' NaN left padding replaced by its first observed value (Darts has no mask)."""
    first = scaled[np.arange(data.n_series), data.first]  # (n_series,)
    return np.where(np.isnan(scaled), first[:, None], scaled).astype(np.float32)


def _series(data: TaskData, scaled: np.ndarray, points: int | None = None, least: int = 0, keep: np.ndarray | None = None) -> list:
    """One ``TimeSeries`` per series (those of ``keep``) of its first ``points`` columns, starting at its first
    observed point or earlier, on the padding, so that it holds at least ``least`` points."""
    from darts import TimeSeries

    n = data.n_points if points is None else points
    stamps = data.timestamps.tz_localize(None)
    filled = _filled(data, scaled)
    begin = np.maximum(np.minimum(data.first, n - least), 0)  # (n_series,)
    rows = range(data.n_series) if keep is None else np.flatnonzero(keep)
    return [TimeSeries.from_times_and_values(stamps[begin[i]:n], filled[i, begin[i]:n, None]) for i in rows]


def _model(data: TaskData, work_dir: str, callbacks: list) -> object:
    from darts.models import BlockRNNModel

    task = data.task
    if task.early_stopping:
        from pytorch_lightning.callbacks import EarlyStopping

        callbacks = [*callbacks, EarlyStopping(monitor="val_loss", patience=task.patience, mode="min")]
    return BlockRNNModel(
        model="LSTM", input_chunk_length=task.lookback, output_chunk_length=task.horizon,
        hidden_dim=task.hidden, n_rnn_layers=task.layers, dropout=0.0, batch_size=task.batch_size,
        n_epochs=task.epoch_cap, optimizer_kwargs={"lr": task.learning_rate}, random_state=task.seed,
        work_dir=work_dir, save_checkpoints=False,
        pl_trainer_kwargs={
            "accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
            "enable_model_summary": False, "callbacks": callbacks,
        },
    )


def _holdout(data: TaskData, model: object, full: list) -> np.ndarray:
    """``(n_series, n_origins, horizon)`` scaled forecasts of the no-refit historical forecasts."""
    first = data.timestamps.tz_localize(None)[data.train_points]
    forecasts = model.historical_forecasts(
        full, forecast_horizon=data.task.horizon, start=first, stride=1,
        retrain=False, last_points_only=False, overlap_end=False, verbose=False,
        predict_kwargs={"batch_size": INFERENCE_BATCH},
    )
    if forecasts[0][0].start_time() != first:
        raise RuntimeError(f"first historical forecast starts at {forecasts[0][0].start_time()}, not {first}")
    return np.stack([np.stack([f.values()[:, 0] for f in per_series]) for per_series in forecasts])


def train(data: TaskData) -> dict:
    """``BlockRNNModel.fit`` on the points before the hold-out: one epoch, or early-stopped on the validation part."""
    _quiet()
    task = data.task
    scaled, mean, std = data.standardized()
    timer = epoch_timer()
    with tempfile.TemporaryDirectory() as work_dir:
        t0 = time.perf_counter()
        model = _model(data, work_dir, [timer])
        kwargs = {}
        if task.early_stopping:
            span = data.validation + task.lookback  # the validation part with the lookback before it
            kwargs["val_series"] = [s[-span:] for s in _series(data, scaled, data.train_points, least=span)]
        trainable = data.train_windows_by_series > 0
        per_epoch = int(trainable.sum() * data.train_windows_by_series.max())  # Darts' samples per epoch
        model.fit(_series(data, scaled, data.fit_points, least=task.length, keep=trainable), verbose=False, **kwargs)
        wall = time.perf_counter() - t0
        pred = _holdout(data, model, _series(data, scaled, least=data.holdout + task.lookback))
    pred = pred * std[:, None, None] + mean[:, None, None]
    return {
        "windows": per_epoch * timer.epochs, "steps": timer.batches, "epochs": timer.epochs,
        "train_seconds": timer.seconds, "setup_seconds": wall - timer.seconds, "fit_wall_seconds": wall,
        "val_loss": validation_loss(timer.val_losses, restores_best=False), "forecasts": pred,
    }


def predict(data: TaskData, repeats: int) -> dict:
    """``predict`` on one series per hold-out window against ``historical_forecasts(retrain=False)``."""
    _quiet()
    task = data.task
    scaled, _, _ = data.standardized()
    with tempfile.TemporaryDirectory() as work_dir:
        model = _model(data, work_dir, [])
        # A short fit builds the network; speed does not depend on the weights.
        model.fit(_series(data, scaled, task.length + 8), verbose=False)
        full = _series(data, scaled)
        windows = [s[o - task.lookback + 1 : o + 1] for s in full for o in data.origins]
        cases = {
            "inference_seconds": lambda: model.predict(
                n=task.horizon, series=windows, batch_size=INFERENCE_BATCH, verbose=False
            ),
            "backtest_seconds": lambda: _holdout(data, model, full),
        }
        out = cases["backtest_seconds"]()  # warm-up, and a check of the window count
        if out.shape != (data.n_series, len(data.origins), task.horizon):
            raise RuntimeError(f"historical_forecasts gave {out.shape}; the hold-out is {data.actual.shape}")
        timings: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(repeats):
            for name, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                timings[name].append(time.perf_counter() - t0)
    return {"windows": data.holdout_windows, **timings}
