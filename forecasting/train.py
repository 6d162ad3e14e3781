"""fit(config, frame) -> TrainedForecaster: windows, scaling, Lightning training, evaluation."""

from __future__ import annotations

import logging
import os
import pickle
import platform
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from forecasting.config.model import ForecasterConfig
from forecasting.errors import ForecastingError
from forecasting.evaluation.validation import WindowForecasts, score_windows, statistical_comparison, window_forecasts
from forecasting.hardware import cpu_has_native_bf16
from forecasting.inference import ModelInputs
from forecasting.model.forecaster import TrainedForecaster, build_network
from forecasting.model.network import RecurrentForecaster
from forecasting.prep import transforms
from forecasting.prep.prepare import Prepared, data_fingerprint, prepare
from forecasting.prep.windows import WindowIndex

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """The trained forecaster plus the held-out forecasts the report and plots are made from."""

    forecaster: TrainedForecaster
    validation: WindowForecasts | None
    test: WindowForecasts | None
    series_ids: tuple[str, ...]
    split_summary: str = ""
    """How the series were used, in one line (also ``forecaster.meta['split_summary']``), e.g.
    ``617 series: 480 train+val+test, 100 train+val, 37 train only (12 left-padded)``."""


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


def resolve_forking(config: ForecasterConfig, net: RecurrentForecaster | None = None) -> tuple[int, str]:
    """Windows per forked training chunk (1: every window on its own) and why, for this config.

    Forking sequences train the very windows and optimizer steps the standard
    path does, from one encoder pass per chunk of consecutive windows: on the
    standard task (lookback 168, stride 1, 32 windows a chunk) about 8x the
    windows per second. It is used whenever it is exact for the network (``net``,
    default the one the config builds: ``RecurrentForecaster.fork_blocker`` is
    the one home of that rule) and the training windows do not need
    per-window masks (padding), on CPU and GPU alike; ``training.forking: off``
    turns it off. The only difference from the standard path: window ``j`` of
    a chunk was read after ``j * stride`` more steps than its lookback.
    ``model.anchor: delta`` keeps the level-free inputs of ``last`` and forks:
    its encoder reads changes, the same for every window holding a step.
    """
    t = config.training
    k = min(t.forking_windows, t.batch_size)
    if t.forking == "off":
        return 1, "training.forking is off"
    if (blocker := (net if net is not None else build_network(config)).fork_blocker()) is not None:
        return 1, blocker
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
    map_members: MemberMapper | None = None,
) -> FitResult:
    """Train one forecaster on all configured series; evaluate it on validation and test windows.

    With ``model.ensemble`` every member is trained (through ``map_members``: one after another by
    default, as Prefect tasks in the train flow) and their combination is scored like one model.

    ``callbacks`` are extra ``pytorch_lightning.Callback`` objects for the Trainer, after fit's own
    (early stopping, checkpoint, loss history): progress reporting, timing, profiling.

    Scalers are fitted on each series' training part only, and validation and
    test windows have their targets strictly after the training part, so no
    number from the future reaches the weights, the scaler or early stopping.
    Windows spanning a gap the data left open (``data.calendar.gap_breaks``)
    are not used. A series too short for its validation and test parts drops
    test, then validation, and still trains (``windows.plan_split``); one line
    saying how many series were used how is logged at INFO and kept in
    ``meta['split_summary']``. With ``window.min_length`` below the lookback,
    series too short for one training window are left-padded and every window
    keeps at least ``min_length`` observed points.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from forecasting.model.lightning import ChunkBatches, Forking, LitForecaster, LossHistory, Padding, WindowBatches, WindowDataModule

    if config.model.ensemble is not None:
        return _fit_ensemble(config, frame, checkpoint_dir=checkpoint_dir, map_members=map_members)
    _quiet_lightning()
    t = config.training
    torch.set_num_threads(t.num_threads or max(1, os.cpu_count() or 1))
    torch.set_flush_denormal(True)  # denormal gradients in the LSTM are slow on x86 (+25%)
    pl.seed_everything(t.seed, workers=True, verbose=False)

    prepared = prepare(config, frame)
    frame, spec, layout, panel = prepared.frame, prepared.spec, prepared.layout, prepared.panel
    lengths, padded_rows, summary, values, scaler = prepared.lengths, prepared.padded_rows, prepared.summary, prepared.values, prepared.scaler
    kind = config.data.target_transform
    train_index, val_index, test_index = prepared.indexes["train"], prepared.indexes["val"], prepared.indexes["test"]
    has_val = len(val_index) > 0
    monitor = "val_loss" if has_val else "train_loss"

    net = build_network(config, panel.n_series)
    padding = None
    if config.padded:
        padding = Padding(config.min_length, config.window.pad_fraction, tuple(layout.data_covariate_positions), not transforms.is_cumulative(kind))
    fork_windows, fork_reason = resolve_forking(config, net)
    forking = Forking(spec.lookback, spec.stride, fork_windows) if fork_windows > 1 else None
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
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        remove_orphaned_checkpoints(checkpoint_dir)
    with tempfile.TemporaryDirectory(dir=checkpoint_dir, prefix=_checkpoint_prefix()) as ckpt_dir:
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
            best = load_checkpoint(checkpoint.best_model_path)
            state = {k.removeprefix("net."): v for k, v in best["state_dict"].items() if k.startswith("net.")}
            net.load_state_dict(state)
    net = net.cpu().eval()
    best_score = checkpoint.best_model_score

    meta = {
        "train_seconds": round(seconds, 3),
        "epochs": trainer.current_epoch,
        "windows": {"train": len(train_index), "val": len(val_index), "test": len(test_index)},
        "padded_series": {s: {"points": lengths[s], "padding": p} for s, p in padded_rows.items() if p},
        "split_summary": summary,
        "split_usage": prepared.usage,
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

    validation, test = _held_out(trained, prepared, inputs=ModelInputs(values, scaler))
    best = float(best_score) if best_score is not None else float("nan")
    trained.metrics = _held_out_metrics(trained, prepared, validation, test, best=best, monitor=monitor)
    return FitResult(trained, validation, test, panel.series_ids, split_summary=summary)


def _checkpoint_prefix(pid: int | None = None) -> str:
    """``fit-HOST-PID-``: whose checkpoints a folder holds, so a later fit on the same host can tell orphans."""
    return f"fit-{socket.gethostname()}-{os.getpid() if pid is None else pid}-"


def remove_orphaned_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Delete the checkpoint folders that fits killed on this host left behind (their process is gone).

    Folders of other hosts (a shared volume) and of live processes are left alone.
    """
    import re
    import shutil

    pattern = re.compile(rf"^fit-{re.escape(socket.gethostname())}-(\d+)-")
    removed = []
    for path in Path(checkpoint_dir).glob("fit-*"):
        match = pattern.match(path.name)
        if match is None or not path.is_dir():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except (PermissionError, OverflowError):
            pass
    return removed


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint read with ``weights_only=True``: tensors and plain types only, never objects.

    Everything resuming needs (weights, optimizer and loop state, epoch, callback scores) is tensors,
    numbers, strings and containers of them, so nothing in a checkpoint file can run code when read. A
    file holding anything else (a swapped or foreign checkpoint) is one clear error naming it.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ForecastingError(
            f"checkpoint {path} holds more than tensors and plain values and is not loaded: {str(exc).splitlines()[0]}"
        ) from None


def _held_out(
    trained: TrainedForecaster, prepared: Prepared, *, inputs: ModelInputs | None = None
) -> tuple[WindowForecasts | None, WindowForecasts | None]:
    """Forecasts of the validation and test windows (None for an empty part)."""
    season = trained.config.baseline.season_length
    out = []
    for part in ("val", "test"):
        index = prepared.indexes[part]
        out.append(window_forecasts(trained, prepared.panel, index, season=season, inputs=inputs) if len(index) else None)
    return out[0], out[1]


def _held_out_metrics(
    trained: TrainedForecaster,
    prepared: Prepared,
    validation: WindowForecasts | None,
    test: WindowForecasts | None,
    *,
    best: float,
    monitor: str,
) -> dict[str, float]:
    metrics: dict[str, float] = {"best_" + monitor: best}
    if validation is not None:
        metrics |= score_windows(validation, prefix="val")
        metrics |= statistical_comparison(trained, prepared.panel, prepared.indexes["val"], validation, prefix="val")
    if test is not None:
        metrics |= score_windows(test, prefix="test")
    return metrics


@dataclass(frozen=True)
class MemberJob:
    """One ensemble member's training, planned: everything ``fit_member`` needs (it may run elsewhere)."""

    index: int
    config: ForecasterConfig
    frame: pd.DataFrame
    checkpoint_dir: str | None = None


def fit_member(job: MemberJob) -> FitResult:
    """Train one ensemble member. Pure: safe on another process or machine."""
    return fit(job.config, job.frame, checkpoint_dir=job.checkpoint_dir)


MemberMapper = Callable[[list[MemberJob]], list[FitResult]]
"""Runs ``fit_member`` over the jobs, results in job order: a loop by default, a Prefect task per member
(on a Dask cluster, say) in the train flow."""


def fit_members_in_turn(jobs: list[MemberJob]) -> list[FitResult]:
    return [fit_member(job) for job in jobs]


def _fit_ensemble(
    config: ForecasterConfig, frame: pd.DataFrame, *, checkpoint_dir: str | Path | None, map_members: MemberMapper | None
) -> FitResult:
    """Train every member (seed + i, its lookback), then score their combination like a single model.

    The ensemble reads ``window.lookback`` points; a member with a shorter lookback reads the last part of
    them. Its validation and test windows are the ensemble's own (``prepare`` with the ensemble's config),
    so its scores compare with a single model's on the same split.
    """
    started = time.perf_counter()
    ckpt = None if checkpoint_dir is None else str(checkpoint_dir)
    # Members skip the statistical comparison: the ensemble's own validation runs it once, on its combination.
    quiet = config.baseline.model_copy(update={"statistical": []})
    member_configs = [c.model_copy(update={"baseline": quiet}) for c in config.member_configs()]
    jobs = [MemberJob(i, c, frame, ckpt) for i, c in enumerate(member_configs)]
    results = (map_members or fit_members_in_turn)(jobs)
    if len(results) != len(jobs):
        raise AssertionError(f"map_members returned {len(results)} members for {len(jobs)} jobs")
    members = [r.forecaster for r in results]
    prepared = prepare(config, frame)
    meta = {
        "train_seconds": round(sum(m.meta.get("train_seconds", 0.0) for m in members), 3),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "ensemble": [
            {"seed": m.config.training.seed, "lookback": m.config.window.lookback, "epochs": m.meta.get("epochs"),
             "train_seconds": m.meta.get("train_seconds"), "val_mae": m.metrics.get("val_mae")}
            for m in members
        ],
        "data": data_fingerprint(prepared.frame),
        "hardware": members[0].meta.get("hardware", {}),
        "torch": torch.__version__,
        "seed": config.training.seed,
    }
    trained = TrainedForecaster(config=config, scaler=members[0].scaler, state_dict={}, metrics={}, history=[],
                                meta=meta, members=members)
    validation, test = _held_out(trained, prepared)
    trained.metrics = _held_out_metrics(trained, prepared, validation, test, best=float("nan"), monitor="val_loss")
    for i, m in enumerate(members):
        if "val_mae" in m.metrics:
            trained.metrics[f"member_{i}_val_mae"] = m.metrics["val_mae"]
    return FitResult(trained, validation, test, prepared.panel.series_ids, split_summary=prepared.summary)
