"""fit(config, frame) -> TrainedForecaster: windows, scaling, Lightning training, evaluation."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from forecasting.config import ForecasterConfig
from forecasting.data.schema import validate_observations
from forecasting.errors import ForecastingError
from forecasting.evaluate import WindowForecasts, score, window_forecasts
from forecasting.forecaster import TrainedForecaster, build_network
from forecasting.scaling import SeriesScaler
from forecasting.windows import SeriesPanel, WindowSpec, build_index, chronological_split


@dataclass
class FitResult:
    """The trained forecaster plus the held-out forecasts the report and plots are made from."""

    forecaster: TrainedForecaster
    validation: WindowForecasts | None
    test: WindowForecasts | None
    series_ids: tuple[str, ...]


def select_training_frame(config: ForecasterConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """The configured series and columns, validated: every problem reported at once."""
    data = config.data
    name = f"dataset '{data.dataset}'"
    problems = []
    if "series_id" in frame.columns and data.series:
        available = set(frame["series_id"].unique())
        missing = [s for s in data.series if s not in available]
        if missing:
            problems.append(f"series {missing} not found; available: {sorted(available)}")
    missing_cols = [c for c in data.covariates if c not in frame.columns]
    if missing_cols:
        covariate_cols = sorted(set(frame.columns) - {"series_id", "timestamp", "target"})
        problems.append(f"covariate column(s) {missing_cols} not found; available covariates: {covariate_cols}")
    if problems:
        raise ForecastingError(f"config '{config.name}' does not match {name}:\n" + "\n".join(f"  - {p}" for p in problems))
    if data.series:
        frame = frame[frame["series_id"].isin(data.series)]
    columns = ["series_id", "timestamp", "target", *data.covariates]
    return validate_observations(frame[columns], required=data.covariates, name=name)


def resolve_precision(config: ForecasterConfig) -> str:
    """'auto' means bf16 mixed precision on CUDA and full float32 elsewhere."""
    precision = config.training.precision
    if precision != "auto":
        return precision
    wants_gpu = config.training.accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if wants_gpu and torch.cuda.is_available() else "32-true"


def _quiet_lightning() -> None:
    # Lightning attaches its own handler; under Prefect every line would print twice.
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.handlers.clear()
        logger.propagate = True


def fit(
    config: ForecasterConfig,
    frame: pd.DataFrame,
    *,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
) -> FitResult:
    """Train one forecaster on all configured series; evaluate it on validation and test windows.

    Scalers are fitted on each series' training part only, and validation and
    test windows have their targets strictly after the training part, so no
    number from the future reaches the weights, the scaler or early stopping.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from forecasting.lit import LitForecaster, LossHistory, WindowDataModule

    _quiet_lightning()
    t = config.training
    torch.set_num_threads(t.num_threads or max(1, os.cpu_count() or 1))
    torch.set_flush_denormal(True)  # denormal gradients in the LSTM are slow on x86 (+25%)
    pl.seed_everything(t.seed, workers=True, verbose=False)

    frame = select_training_frame(config, frame)
    spec = config_spec(config)
    panel = SeriesPanel.from_frame(frame, covariates=config.data.covariates)
    bounds = chronological_split(panel, spec, val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction)
    scaler = SeriesScaler.fit(panel, bounds.train_end)
    scaled = torch.from_numpy(scaler.transform(panel))  # (n_points, features) float32

    train_index = build_index(panel, spec, bounds, "train", max_windows_per_series=config.window.max_windows_per_series)
    val_index = build_index(panel, spec, bounds, "val", stride=1)
    test_index = build_index(panel, spec, bounds, "test", stride=1)
    has_val = len(val_index) > 0
    monitor = "val_loss" if has_val else "train_loss"

    net = build_network(config)
    module = LitForecaster(net, learning_rate=t.learning_rate, weight_decay=t.weight_decay)
    data = WindowDataModule(scaled, spec, train_index, val_index if has_val else None, batch_size=t.batch_size, seed=t.seed)
    history = LossHistory()
    with tempfile.TemporaryDirectory(dir=checkpoint_dir) as ckpt_dir:
        checkpoint = ModelCheckpoint(dirpath=ckpt_dir, monitor=monitor, mode="min", save_top_k=1, filename="best")
        trainer = pl.Trainer(
            max_epochs=t.max_epochs,
            accelerator=t.accelerator,
            devices=t.devices,
            strategy=t.strategy,
            precision=resolve_precision(config),
            gradient_clip_val=t.gradient_clip_val,
            deterministic=t.deterministic,
            callbacks=[EarlyStopping(monitor=monitor, patience=t.patience, mode="min"), checkpoint, history],
            logger=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=ckpt_dir,
        )
        started = time.perf_counter()
        trainer.fit(module, datamodule=data)
        seconds = time.perf_counter() - started
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
    state = {k.removeprefix("net."): v for k, v in best["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    net = net.cpu().eval()

    season = config.baseline.season_length
    validation = window_forecasts(net, panel, scaled, val_index, spec, scaler, season=season) if has_val else None
    test = window_forecasts(net, panel, scaled, test_index, spec, scaler, season=season) if len(test_index) else None
    metrics: dict[str, float] = {"best_" + monitor: float(checkpoint.best_model_score)}
    if validation is not None:
        metrics |= score(validation, prefix="val")
    if test is not None:
        metrics |= score(test, prefix="test")

    meta = {
        "train_seconds": round(seconds, 3),
        "epochs": trainer.current_epoch,
        "windows": {"train": len(train_index), "val": len(val_index), "test": len(test_index)},
        "data": data_fingerprint(frame),
        "hardware": {"device": str(trainer.strategy.root_device), "threads": torch.get_num_threads(), "machine": platform.machine()},
        "torch": torch.__version__,
        "seed": t.seed,
    }
    trained = TrainedForecaster(config=config, scaler=scaler, state_dict=net.state_dict(), metrics=metrics, history=history.epochs, meta=meta)
    return FitResult(trained, validation, test, panel.series_ids)


def config_spec(config: ForecasterConfig) -> WindowSpec:
    """The window shape a config asks for."""
    w = config.window
    return WindowSpec(lookback=w.lookback, horizon=w.horizon, stride=w.stride)


def data_fingerprint(frame: pd.DataFrame) -> dict:
    """What the model saw: series, time range, rows and a content hash (for lineage)."""
    digest = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return {
        "series": sorted(frame["series_id"].unique().tolist()),
        "start": str(frame["timestamp"].min()),
        "end": str(frame["timestamp"].max()),
        "rows": int(len(frame)),
        "sha1": hashlib.sha1(digest.tobytes()).hexdigest(),
    }

