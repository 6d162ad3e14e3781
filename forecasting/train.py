"""fit(config, frame) -> TrainedForecaster: windows, scaling, Lightning training, evaluation."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from forecasting.prep import transforms
from forecasting.config.model import ForecasterConfig
from forecasting.data.schema import validate_observations
from forecasting.errors import ForecastingError
from forecasting.evaluation.validation import WindowForecasts, score_windows, window_forecasts
from forecasting.inference import ModelInputs
from forecasting.prep.features import InputLayout, model_values
from forecasting.model.forecaster import TrainedForecaster, build_network
from forecasting.hardware import cpu_has_native_bf16
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import (
    SeriesPanel,
    SplitBounds,
    WindowIndex,
    WindowSpec,
    _needed_length,
    _part_size,
    build_index,
    chronological_split,
    left_pad,
)


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
    wanted = [*data.covariates, *data.future_covariates]
    missing_cols = [c for c in wanted if c not in frame.columns]
    if missing_cols:
        covariate_cols = sorted(set(frame.columns) - {"series_id", "timestamp", "target"})
        problems.append(f"covariate column(s) {missing_cols} not found; available covariates: {covariate_cols}")
    if problems:
        raise ForecastingError(f"config '{config.name}' does not match {name}:\n" + "\n".join(f"  - {p}" for p in problems))
    if data.series:
        frame = frame[frame["series_id"].isin(data.series)]
    columns = ["series_id", "timestamp", "target", *wanted]
    return validate_observations(frame[columns], required=wanted, name=name)


def uses_cuda(config: ForecasterConfig) -> bool:
    """Whether Lightning will train on a CUDA device under this config."""
    return config.training.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def resolve_precision(config: ForecasterConfig) -> str:
    """'auto': bf16 mixed precision where the hardware computes bf16 natively (a CUDA device with bf16,
    a CPU with AVX512-BF16 or AMX), fp16 mixed on older CUDA devices, float32 elsewhere.

    Measured on a 2-core AMD EPYC with AVX512-BF16 (one epoch of the benchmark's standard task, two
    seeds): 1.74x the float32 training windows/s with the same hold-out MAE per seed to 4 digits;
    the master weights stay float32 either way (docs/forecaster.md, "Training speed").
    """
    precision = config.training.precision
    if precision != "auto":
        return precision
    if not uses_cuda(config):
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def resolve_forking(config: ForecasterConfig) -> tuple[int, str]:
    """Windows per forked training chunk (1: every window on its own) and why, for this config.

    Forking sequences train the very windows and optimizer steps the standard
    path does, from one encoder pass per chunk of consecutive windows: on the
    standard task (lookback 168, stride 1, 32 windows a chunk) about 8x the
    windows per second. It is used whenever it is exact for the network (see
    ``RecurrentForecaster.fork_blocker``) and the training windows do not need
    per-window masks (padding), on CPU and GPU alike; ``training.forking: off``
    turns it off. The only difference from the standard path: window ``j`` of
    a chunk was read after ``j * stride`` more steps than its lookback.
    ``model.anchor: delta`` keeps the level-free inputs of ``last`` and forks:
    its encoder reads changes, the same for every window holding a step.
    """
    t, m = config.training, config.model
    k = min(t.forking_windows, t.batch_size)
    if t.forking == "off":
        return 1, "training.forking is off"
    if config.anchor_last:
        return 1, "inputs are anchored on each window's last value (model.anchor resolves to 'last'; 'delta' forks)"
    if m.bidirectional:
        return 1, "a bidirectional encoder reads each window backwards from its own end"
    if m.head != "direct":
        return 1, "the autoregressive decoder starts from every layer's state at each origin"
    if config.padded and config.window.pad_fraction > 0:
        return 1, "padded training masks each window's prefix on its own (window.min_length < lookback)"
    if k < 2:
        return 1, "one window per chunk (training.forking_windows or batch_size is 1)"
    return k, f"{k} windows per chunk share one encoder pass"


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
    callbacks: Sequence[Any] = (),
) -> FitResult:
    """Train one forecaster on all configured series; evaluate it on validation and test windows.

    ``callbacks`` are extra ``pytorch_lightning.Callback`` objects for the Trainer, after fit's own
    (early stopping, checkpoint, loss history): progress reporting, timing, profiling.

    Scalers are fitted on each series' training part only, and validation and
    test windows have their targets strictly after the training part, so no
    number from the future reaches the weights, the scaler or early stopping.
    Windows spanning a gap the data left open (``data.calendar.gap_breaks``)
    are not used. With ``window.min_length`` below the lookback, series too
    short for the split are left-padded and every window keeps at least
    ``min_length`` observed points.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from forecasting.model.lightning import ChunkBatches, Forking, LitForecaster, LossHistory, Padding, WindowBatches, WindowDataModule

    _quiet_lightning()
    t = config.training
    torch.set_num_threads(t.num_threads or max(1, os.cpu_count() or 1))
    torch.set_flush_denormal(True)  # denormal gradients in the LSTM are slow on x86 (+25%)
    pl.seed_everything(t.seed, workers=True, verbose=False)

    frame = select_training_frame(config, frame)
    spec = config_spec(config)
    layout = InputLayout.from_config(config)
    panel = SeriesPanel.from_frame(frame, covariates=layout.data_features[1:])
    lengths = dict(zip(panel.series_ids, panel.lengths.tolist(), strict=True))
    panel = _pad_short_series(config, panel, spec)
    padded_rows = dict(zip(panel.series_ids, (panel.lengths - np.array(list(lengths.values()))).tolist(), strict=True))
    bounds = chronological_split(panel, spec, val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction)
    kind = config.data.target_transform
    transformed = transforms.apply(panel, kind)
    scaler = SeriesScaler.fit(transformed, bounds.train_end)
    values = model_values(panel, layout, scaler, transform=kind, transformed=transformed)  # (n_points, C) float32

    indexes = _window_indexes(config, panel, spec, bounds, lengths)
    train_index, val_index, test_index = indexes["train"], indexes["val"], indexes["test"]
    has_val = len(val_index) > 0
    monitor = "val_loss" if has_val else "train_loss"

    net = build_network(config, panel.n_series)
    padding = None
    if config.padded:
        padding = Padding(config.min_length, config.window.pad_fraction, tuple(layout.data_covariate_positions), not transforms.is_cumulative(kind))
    fork_windows, fork_reason = resolve_forking(config)
    forking = Forking(spec.lookback, spec.stride, fork_windows) if fork_windows > 1 else None
    if forking is not None and (blocker := net.fork_blocker()) is not None:
        raise AssertionError(f"resolve_forking chose forking for a network that forbids it: {blocker}")
    module = LitForecaster(net, learning_rate=t.learning_rate, weight_decay=t.weight_decay, padding=padding, forking=forking)
    tensor = torch.from_numpy(values)
    codes = np.arange(1, panel.n_series + 1, dtype=np.int64)  # embedding rows: the scaler's series order

    def batches(index: WindowIndex) -> WindowBatches:
        return WindowBatches(
            tensor, index, spec, past_columns=layout.past_columns, future_columns=layout.future_columns,
            codes=codes, cumulative=transforms.is_cumulative(kind),
        )

    train_batches: WindowBatches | ChunkBatches = batches(train_index)
    if forking is not None:
        train_batches = ChunkBatches(
            tensor, train_index, spec, windows=forking.windows, past_columns=layout.past_columns,
            future_columns=layout.future_columns, codes=codes, cumulative=transforms.is_cumulative(kind),
        )
    data = WindowDataModule(
        train_batches, batches(val_index) if has_val else None,
        batch_size=t.batch_size, seed=t.seed, pin_memory=uses_cuda(config),
    )
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
            callbacks=[EarlyStopping(monitor=monitor, patience=t.patience, mode="min"), checkpoint, history, *callbacks],
            logger=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=ckpt_dir,
        )
        started = time.perf_counter()
        trainer.fit(module, datamodule=data)
        seconds = time.perf_counter() - started
        if checkpoint.best_model_path:
            best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
            state = {k.removeprefix("net."): v for k, v in best["state_dict"].items() if k.startswith("net.")}
            net.load_state_dict(state)
    net = net.cpu().eval()
    best_score = checkpoint.best_model_score

    meta = {
        "train_seconds": round(seconds, 3),
        "epochs": trainer.current_epoch,
        "windows": {"train": len(train_index), "val": len(val_index), "test": len(test_index)},
        "padded_series": {s: {"points": lengths[s], "padding": p} for s, p in padded_rows.items() if p},
        "data": data_fingerprint(frame),
        "hardware": {
            "device": str(trainer.strategy.root_device), "strategy": type(trainer.strategy).__name__,
            "world_size": trainer.world_size, "precision": resolve_precision(config),
            "threads": torch.get_num_threads(), "machine": platform.machine(),
        },
        "torch": torch.__version__,
        "seed": t.seed,
        "training_path": {"forked_windows": fork_windows, "why": fork_reason},
    }
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    trained = TrainedForecaster(config=config, scaler=scaler, state_dict=state, metrics={}, history=history.epochs, meta=meta)

    inputs = ModelInputs(values, scaler)
    season = config.baseline.season_length
    validation = window_forecasts(trained, panel, val_index, season=season, inputs=inputs) if has_val else None
    test = window_forecasts(trained, panel, test_index, season=season, inputs=inputs) if len(test_index) else None
    metrics: dict[str, float] = {"best_" + monitor: float(best_score) if best_score is not None else float("nan")}
    if validation is not None:
        metrics |= score_windows(validation, prefix="val")
    if test is not None:
        metrics |= score_windows(test, prefix="test")
    trained.metrics = metrics
    return FitResult(trained, validation, test, panel.series_ids)


def _pad_short_series(config: ForecasterConfig, panel: SeriesPanel, spec: WindowSpec) -> SeriesPanel:
    """With padding on, left-pad series too short for the split so they still contribute windows."""
    if not config.padded:
        return panel
    from forecasting.data.calendar import offset_for

    split = config.split
    need = _needed_length(spec, split.val_fraction, split.test_fraction)
    padded, _ = left_pad(panel, need, offset_for(config.data.freq))
    return padded


def _window_indexes(
    config: ForecasterConfig, panel: SeriesPanel, spec: WindowSpec, bounds: SplitBounds, lengths: dict[str, int]
) -> dict[str, WindowIndex]:
    """Train (strided), validation and test (every origin) windows; none spans a gap in the grid.

    With padding, windows keep at least ``min_length`` observed lookback points
    and only observed targets; a series left with no training window is an error.
    """
    from forecasting.data.calendar import gap_breaks

    breaks = gap_breaks(panel, config.data.freq)
    out = {
        "train": build_index(panel, spec, bounds, "train", max_windows_per_series=config.window.max_windows_per_series, breaks=breaks),
        "val": build_index(panel, spec, bounds, "val", stride=1, breaks=breaks),
        "test": build_index(panel, spec, bounds, "test", stride=1, breaks=breaks),
    }
    if not len(out["train"]):
        raise ForecastingError(
            f"config '{config.name}': no training window fits between the gaps of the {config.data.freq!r} grid "
            f"({int(breaks.sum())} gaps in {panel.n_series} series); does data.freq match the data's spacing?"
        )
    if not config.padded:
        return out
    observed = np.r_[0, np.cumsum(~np.isnan(panel.values[:, 0]))]  # (n_points + 1,) observed before each row
    for part, index in out.items():
        s = index.starts
        seen = observed[s + spec.lookback] - observed[s]
        targets = observed[s + spec.length] - observed[s + spec.lookback]
        keep = (seen >= config.min_length) & (targets == spec.horizon)
        out[part] = WindowIndex(starts=s[keep], series=index.series[keep])
    trained_on = set(out["train"].series.tolist())
    orphans = [i for i in range(panel.n_series) if i not in trained_on]
    if orphans:
        split = config.split
        need = _needed_length(spec, split.val_fraction, split.test_fraction)
        parts = int(_part_size(np.array([need]), split.val_fraction, spec.horizon)[0])
        parts += int(_part_size(np.array([need]), split.test_fraction, spec.horizon)[0])
        least = min(need, config.min_length + spec.horizon + parts)
        lines = [
            f"  - series '{panel.series_ids[i]}' has {lengths[panel.series_ids[i]]} points; min_length "
            f"{config.min_length} + horizon {spec.horizon} + validation and test {parts} needs {least}"
            for i in orphans
        ]
        raise ForecastingError(f"{len(orphans)} series too short to train on, even left-padded:\n" + "\n".join(lines))
    return out


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

