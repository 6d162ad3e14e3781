"""Training progress: a bar on a terminal, one log line per epoch anywhere else.

A training of ten minutes must not be silent. On a terminal Lightning's TQDM bar shows the epoch,
batches, losses and the time left; where output goes to a file, a pipe or the Prefect UI (the
``forecasting`` logger reaches the flow run's log through ``PREFECT_LOGGING_EXTRA_LOGGERS``) a bar is
noise, so ``EpochProgress`` writes one line per epoch with the same figures instead. It also hands each
epoch's metrics to an ``on_epoch`` hook: the train flow logs them to the open MLflow run, live, without
this layer importing mlflow.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

from forecasting.progress import clock

log = logging.getLogger(__name__)

EpochHook = Callable[[dict[str, float], int], None]
"""``on_epoch(metrics, epoch)``: called after every epoch (validation included) with its losses; epoch is 1-based."""


def wants_bar(progress: bool | None) -> bool:
    """The caller's choice, else a bar exactly when stderr (where the bar draws) is a terminal."""
    if progress is not None:
        return progress
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class EpochBar(TQDMProgressBar):
    """Lightning's TQDM bar, its description saying ``Epoch k/N`` (1-based) rather than ``Epoch k-1``;
    each epoch's bar stays on screen with its final losses."""

    def __init__(self) -> None:
        super().__init__(leave=True)

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{total}")


def _format(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


class EpochProgress(pl.Callback):
    """One line per epoch (``epoch k/N: train_loss .., val_loss .., elapsed m:ss, ETA m:ss``) and the ``on_epoch`` hook.

    The ETA assumes every remaining epoch runs (early stopping may end sooner). Lines are logged at INFO when
    no bar is drawn, at DEBUG when one is (the bar already shows the same figures). ``name`` prefixes each line
    (the model's name), so interleaved trainings stay readable.
    """

    def __init__(self, *, name: str = "", lines: bool = True, on_epoch: EpochHook | None = None) -> None:
        self.name = name
        self.level = logging.INFO if lines else logging.DEBUG
        self.on_epoch = on_epoch
        self._started = 0.0
        self._first_epoch = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.monotonic()
        self._first_epoch = trainer.current_epoch  # > 0 when resumed from a checkpoint

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning 2 runs the epoch's validation before this hook, so val_loss is the epoch's own.
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("_loss")}
        epoch = trainer.current_epoch + 1
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        elapsed = time.monotonic() - self._started
        done = max(1, epoch - self._first_epoch)
        parts = [f"{k} {_format(v)}" for k, v in sorted(metrics.items(), key=lambda kv: kv[0] != "train_loss")]
        parts.append(f"elapsed {clock(elapsed)}")
        if total is not None:
            parts.append(f"ETA {clock(elapsed / done * max(0, total - epoch))}")
        prefix = f"{self.name}: " if self.name else ""
        log.log(self.level, "%sepoch %d/%s: %s", prefix, epoch, total or "?", ", ".join(parts))
        if self.on_epoch is not None:
            try:
                self.on_epoch(metrics, epoch)
            except Exception as exc:  # a tracking server down must not cost the training
                log.warning("%sepoch %d: the on_epoch hook failed (%s); training goes on", prefix, epoch, exc)
