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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from forecasting.config.model import ForecasterConfig
from forecasting.errors import ForecastingError
from forecasting.evaluation.validation import WindowForecasts, score_windows, statistical_comparison, window_forecasts
from forecasting.hardware import native_bf16
from forecasting.inference import ModelInputs
from forecasting.model.forecaster import TrainedForecaster, build_network
from forecasting.model.network import RecurrentForecaster
from forecasting.prep import transforms
from forecasting.prep.prepare import Prepared, data_fingerprint, prepare
from forecasting.prep.windows import WindowIndex

if TYPE_CHECKING:
    from forecasting.model.progress import EpochHook

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
    cuda = uses_cuda(config)
    if native_bf16(torch.device("cuda" if cuda else "cpu")):  # the one rule, shared with inference's 'auto'
        return "bf16-mixed"
    return "16-mixed" if cuda else "32-true"


def resolve_forking(config: ForecasterConfig, net: RecurrentForecaster | None = None) -> tuple[int, str]:
    """Windows per forked training chunk (1: every window on its own) and why, for this config.

    Forking sequences train the very windows and optimizer steps the standard
    path does, from one encoder pass per chunk of consecutive windows: on the
    standard task (lookback 168, stride 1, 32 windows a chunk) about 8x the
    windows per second. It is used whenever it is exact for the network (``net``,
    default the one the config builds: ``RecurrentForecaster.fork_blocker`` is
    the one home of that rule), on CPU and GPU alike; ``training.forking: off``
    turns it off. The only difference from the standard path: window ``j`` of
    a chunk was read after ``j * stride`` more steps than its lookback. Padded
    training (short series) masks a chunk's prefix, which its windows share
    (``lightning.mask_prefix``). ``model.anchor: delta`` (what 'auto' resolves
    to for levels) keeps the level-free inputs of ``last`` and forks: its
    encoder reads changes, the same for every window holding a step.
    """
    t = config.training
    k = t.fork_chunk
    if t.forking == "off":
        return 1, "training.forking is off"
    if (blocker := (net if net is not None else build_network(config)).fork_blocker()) is not None:
        return 1, blocker
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
    progress: bool | None = None,
    callbacks: Sequence[Any] = (),
    map_members: MemberMapper | None = None,
    on_epoch: EpochHook | None = None,
    fresh: bool = False,
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

    Progress: ``progress=None`` draws Lightning's bar when stderr is a terminal and otherwise logs one
    line per epoch (``forecasting.model.progress``); ``True``/``False`` force the bar on or off.
    ``on_epoch(metrics, epoch)`` gets every epoch's losses as it ends (the train flow logs them to MLflow).

    Resuming: with a ``checkpoint_dir`` the last epoch's checkpoint is kept in a folder named after the
    config and the data (``training_key``). A fit killed part-way (SIGKILL, a lost worker, a timeout)
    leaves it behind; the next fit of the same config on the same data resumes from it and logs from which
    epoch, unless ``fresh``. The folder is deleted when the fit ends, with success or an error.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from forecasting.model.lightning import ChunkBatches, Forking, LitForecaster, LossHistory, Padding, WindowBatches, WindowDataModule

    from forecasting.model.progress import EpochBar, EpochProgress, wants_bar

    if config.model.ensemble is not None:
        return _fit_ensemble(config, frame, checkpoint_dir=checkpoint_dir, map_members=map_members, fresh=fresh)
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
    key = training_key(config, frame)
    slot = _claim_checkpoints(checkpoint_dir, key, fresh=fresh)
    resumed_after = 0
    if slot.resume_from is not None:
        resumed_after = _resumable_epochs(slot.resume_from)
        if resumed_after:
            log.info("resuming training of '%s' after epoch %d of %d, from checkpoint %s (--fresh starts over)",
                     config.name, resumed_after, t.max_epochs, slot.resume_from)
        else:
            slot.resume_from = None
    import warnings

    # The resume folder holds owner.json (and, resuming, the checkpoints it resumes from): not a mistake.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    bar = wants_bar(progress)
    epochs = EpochProgress(name=config.name, lines=not bar, on_epoch=on_epoch)
    try:
        checkpoint = ModelCheckpoint(dirpath=slot.path, monitor=monitor, mode="min", save_top_k=1, filename="best",
                                     save_last=slot.keyed)
        trainer = pl.Trainer(
            max_epochs=t.max_epochs,
            accelerator=t.accelerator,
            devices=t.devices,
            strategy=t.strategy,
            precision=resolve_precision(config),
            gradient_clip_val=t.gradient_clip_val,
            deterministic=t.deterministic,
            callbacks=[EarlyStopping(monitor=monitor, patience=t.patience, mode="min"), checkpoint, history, epochs,
                       *([EpochBar()] if bar else []), *callbacks],
            logger=False,
            enable_progress_bar=bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=slot.path,
        )
        started = time.perf_counter()
        trainer.fit(module, datamodule=data, ckpt_path=slot.resume_from, weights_only=True)
        seconds = time.perf_counter() - started
        if checkpoint.best_model_path:
            best = load_checkpoint(checkpoint.best_model_path)
            state = {k.removeprefix("net."): v for k, v in best["state_dict"].items() if k.startswith("net.")}
            net.load_state_dict(state)
    except BaseException as exc:
        # Interrupted (Ctrl-C, SIGTERM, a timeout): a keyed folder stays for the rerun to resume. Any other
        # error is a failed fit, which would fail the same way resumed: its checkpoints go.
        if not slot.keyed or not isinstance(exc, (KeyboardInterrupt, SystemExit, TimeoutError)):
            slot.remove()
        raise
    else:
        slot.remove()  # finished: nothing left to resume
    finally:
        slot.release()
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
        "anchor": config.resolved_anchor,  # what model.anchor 'auto' meant when it was trained (see load)
        "resumed_after_epoch": resumed_after,
    }
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    trained = TrainedForecaster(config=config, scaler=scaler, state_dict=state, metrics={}, history=history.epochs, meta=meta)

    validation, test = _held_out(trained, prepared, inputs=ModelInputs(values, scaler))
    best = float(best_score) if best_score is not None else float("nan")
    trained.metrics = _held_out_metrics(trained, prepared, validation, test, best=best, monitor=monitor)
    return FitResult(trained, validation, test, panel.series_ids, split_summary=summary)


ABANDONED_AFTER_SECONDS = 7 * 24 * 3600.0
"""A resumable checkpoint of a dead fit that no rerun picked up is deleted after this long."""
RESUME_PREFIX = "resume-"


def training_key(config: ForecasterConfig, frame: pd.DataFrame) -> str:
    """What makes two fits the same training: the resolved config and the data's content (``data_fingerprint``)."""
    import hashlib

    from forecasting.config.model import config_to_yaml

    text = config_to_yaml(config) + "\n" + data_fingerprint(frame)["sha1"]
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class _CheckpointSlot:
    """Where one fit writes its checkpoints, and the checkpoint it resumes from (None: from scratch)."""

    path: Path
    keyed: bool
    """A ``resume-KEY`` folder (resumable); else a private temporary folder."""
    resume_from: Path | None = None

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)

    def release(self) -> None:
        with _IN_USE_LOCK:
            _IN_USE.discard(self.path)


_IN_USE: set[Path] = set()
"""Keyed folders a fit of this process is training into: the owner check cannot tell them apart by pid."""
_IN_USE_LOCK = __import__("threading").Lock()


def _claim_checkpoints(checkpoint_dir: str | Path | None, key: str, *, fresh: bool) -> _CheckpointSlot:
    """This fit's checkpoint folder: ``resume-KEY`` under ``checkpoint_dir``, taken over from a dead owner
    (resuming from its ``last.ckpt``) unless ``fresh``; a private folder when a live process holds that key."""
    if checkpoint_dir is None:
        return _CheckpointSlot(Path(tempfile.mkdtemp(prefix=_checkpoint_prefix())), keyed=False)
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    remove_orphaned_checkpoints(root, keep=RESUME_PREFIX + key)
    folder = root / (RESUME_PREFIX + key)
    with _IN_USE_LOCK:
        busy = folder in _IN_USE or (folder.is_dir() and not _owned_here(folder) and _owner_alive(folder))
        if not busy:
            _IN_USE.add(folder)
    if busy:
        log.info("checkpoint folder %s belongs to a running fit of the same training; this one will not be resumable",
                 folder)
        return _CheckpointSlot(Path(tempfile.mkdtemp(dir=root, prefix=_checkpoint_prefix())), keyed=False)
    if fresh and folder.exists():
        import shutil

        log.info("--fresh: deleting the checkpoints of the earlier, interrupted training in %s", folder)
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(exist_ok=True)
    _write_owner(folder)
    last = folder / "last.ckpt"
    return _CheckpointSlot(folder, keyed=True, resume_from=last if last.is_file() else None)


def _resumable_epochs(path: Path) -> int:
    """Epochs the checkpoint completed (0: unreadable, or nothing to resume); read ``weights_only``."""
    try:
        checkpoint = load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - torn or foreign file: start over, say why
        log.warning("checkpoint %s cannot be resumed from (%s); training starts over", path, exc)
        path.unlink(missing_ok=True)
        return 0
    return int(checkpoint.get("epoch", -1)) + 1


def _process_started(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot ("" when no such process; "alive" without /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        pass
    if Path("/proc/self/stat").exists():
        return ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ""
    except (PermissionError, OverflowError):
        pass
    return "alive"


def _write_owner(folder: Path) -> None:
    import json

    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": _process_started(os.getpid())}
    tmp = folder / "owner.json.tmp"
    tmp.write_text(json.dumps(owner))
    os.replace(tmp, folder / "owner.json")


def _owned_here(folder: Path) -> bool:
    """Whether this process wrote the folder's owner.json (an earlier, interrupted fit here: resumable)."""
    import json

    try:
        owner = json.loads((folder / "owner.json").read_text())
    except (OSError, ValueError):
        return False
    return owner.get("host") == socket.gethostname() and owner.get("pid") == os.getpid()


def _owner_alive(folder: Path, *, stale_after: float = 24 * 3600.0) -> bool:
    """Whether the process that owns a ``resume-KEY`` folder may still be training into it.

    On this host: its pid exists with the same start time (pids are reused). Another host's (a shared
    volume) counts as alive until nothing in the folder changed for ``stale_after`` seconds.
    """
    import json

    try:
        owner = json.loads((folder / "owner.json").read_text())
    except (OSError, ValueError):
        return False
    if owner.get("host") == socket.gethostname():
        started = _process_started(int(owner.get("pid", -1)))
        return bool(started) and started in ("alive", owner.get("started") or started)
    return time.time() - _newest_mtime(folder) < stale_after


def _newest_mtime(folder: Path) -> float:
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()]
    return max(times, default=folder.stat().st_mtime)


def _checkpoint_prefix(pid: int | None = None) -> str:
    """``fit-HOST-PID-``: whose checkpoints a folder holds, so a later fit on the same host can tell orphans."""
    return f"fit-{socket.gethostname()}-{os.getpid() if pid is None else pid}-"


def remove_orphaned_checkpoints(
    checkpoint_dir: str | Path, *, keep: str | None = None, abandoned_after: float = ABANDONED_AFTER_SECONDS
) -> list[Path]:
    """Delete the checkpoint folders that fits killed on this host left behind (their process is gone).

    Private ``fit-HOST-PID-`` folders of dead processes go at once (they cannot be resumed). A ``resume-KEY``
    folder of a dead fit is kept for a rerun of that training to resume, and deleted once nothing in it
    changed for ``abandoned_after`` seconds; ``keep`` names the folder the calling fit is about to resume.
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
    for path in Path(checkpoint_dir).glob(RESUME_PREFIX + "*"):
        if path.name == keep or not path.is_dir() or _owner_alive(path):
            continue
        if time.time() - _newest_mtime(path) >= abandoned_after:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
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
    fresh: bool = False


def fit_member(job: MemberJob) -> FitResult:
    """Train one ensemble member. Pure: safe on another process or machine.

    Each member is its own training (its seed and lookback), so an interrupted ensemble resumes per member:
    the member that was cut off resumes from its checkpoint; members that had finished train again.
    """
    return fit(job.config, job.frame, checkpoint_dir=job.checkpoint_dir, fresh=job.fresh)


MemberMapper = Callable[[list[MemberJob]], list[FitResult]]
"""Runs ``fit_member`` over the jobs, results in job order: a loop by default, a Prefect task per member
(on a Dask cluster, say) in the train flow."""


def fit_members_in_turn(jobs: list[MemberJob]) -> list[FitResult]:
    return [fit_member(job) for job in jobs]


def _fit_ensemble(
    config: ForecasterConfig, frame: pd.DataFrame, *, checkpoint_dir: str | Path | None, map_members: MemberMapper | None,
    fresh: bool = False,
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
    jobs = [MemberJob(i, c, frame, ckpt, fresh) for i, c in enumerate(member_configs)]
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
             "train_seconds": m.meta.get("train_seconds"), "val_mae": m.metrics.get("val_mae"),
             "forked_windows": m.meta.get("training_path", {}).get("forked_windows")}
            for m in members
        ],
        "anchor": members[0].meta.get("anchor"),
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
