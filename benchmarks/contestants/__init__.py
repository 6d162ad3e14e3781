"""The contestants of the benchmark, one module each, all with the same two entry points.

``train(data) -> dict`` trains on every stride-1 window before the hold-out
for the task's budget and returns ``windows``, ``steps``, ``train_seconds``
(the training steps only), ``setup_seconds`` (everything else the fit call
did) and ``forecasts``: ``(n_series, n_origins, horizon)`` for the hold-out,
in original units.

With early stopping (the task's ``patience``, the ``converge`` measure) the
same ``train`` stops on the task's validation part (``data.validation``
points at the end of each series' training part) and also returns
``epochs`` (epochs run) and ``fit_wall_seconds`` (the whole fit call: what a
user waits for). Only the contestants of ``CONVERGING`` take part.

``predict(data, repeats) -> dict`` times batch inference over the hold-out
windows (``inference_seconds``) and the contestant's no-refit backtest over
the same origins (``backtest_seconds``; None where it has none), ``repeats``
times each, alternating. Weights need not be trained: speed does not depend
on them.

Modules are imported by name in the worker process only, so nothing here
imports a peer library (and the test suite never does).
"""

from __future__ import annotations

import importlib
import time
from types import ModuleType
from typing import Any

CONTESTANTS: dict[str, str] = {
    "project": "benchmarks.contestants.project",
    "project-fp32": "benchmarks.contestants.project_fp32",
    "project-window": "benchmarks.contestants.project_window",
    "raw": "benchmarks.contestants.raw",
    "raw-ftz": "benchmarks.contestants.raw_ftz",
    "darts": "benchmarks.contestants.darts_peer",
    "neuralforecast": "benchmarks.contestants.neuralforecast_peer",
}
"""Name -> module. ``project`` is the default config (anchor, precisions 'auto'); ``project-fp32`` the same in
float32; ``project-window`` the window-by-window reference (anchor ``last``, forking off, float32). ``raw`` is
the reference loop; ``darts`` and ``neuralforecast`` are the peers."""

PEERS: tuple[str, ...] = ("darts", "neuralforecast")
REFERENCE = "raw"
DEFAULT = "project"
"""The contestant that is the project as a user gets it: the goals are stated for it."""
TRAINING_ONLY: tuple[str, ...] = ("raw-ftz", "project-window")
"""Contestants whose inference is another's (raw-ftz: raw's, no backward pass to flush; project-window: the
float32 network of project-fp32, inference being window by window whichever path trained it): no predict jobs."""
CONVERGING: tuple[str, ...] = ("project", "project-fp32", "project-window", "darts", "neuralforecast")
"""Contestants of the ``converge`` measure (early stopping on the shared validation part). The raw loops have
no early stopping: they are not libraries a user would stop with."""


VALIDATION_LOSS_NAMES: tuple[str, ...] = ("val_loss", "ptl/val_loss", "valid_loss")
"""What the project and Darts (``val_loss``) and NeuralForecast (``ptl/val_loss``) log their validation loss as."""


def validation_loss(val_losses: list[float], *, restores_best: bool) -> float | None:
    """The validation loss of the weights a contestant forecasts with: the best epoch's where ``fit`` restores it
    (the project), else the last validation run's (Darts and NeuralForecast keep the last weights)."""
    if not val_losses:
        return None
    return min(val_losses) if restores_best else val_losses[-1]


def module(name: str) -> ModuleType:
    """The contestant's module, imported now (peers are heavy: only the worker does this)."""
    if name not in CONTESTANTS:
        raise ValueError(f"unknown contestant {name!r}; known: {', '.join(CONTESTANTS)}")
    return importlib.import_module(CONTESTANTS[name])


def epoch_timer() -> Any:  # noqa: ANN401 - a pytorch_lightning.Callback, whose import is deferred
    """A Lightning callback timing the training steps, from the first train epoch start to the last batch end.

    The same interval for every Lightning-based contestant: it leaves out
    Trainer setup, the sanity check, validation after the last batch and
    checkpoint writing, and keeps the data loading, forward, backward and
    optimiser step of every batch (and any per-epoch work between batches).

    It also records the validation loss of every validation run after the
    sanity check (``val_losses``), under the name each library logs it:
    with a learning-rate grid (``converge``) a contestant's run is chosen by
    its own validation loss, never by the hold-out.
    """
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self) -> None:
            self.started: float | None = None
            self.ended: float | None = None
            self.batches = 0
            self.epochs = 0
            self.val_losses: list[float] = []

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.epochs += 1
            if self.started is None:
                self.started = time.perf_counter()

        def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
            self.batches += 1
            self.ended = time.perf_counter()

        def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if trainer.sanity_checking:
                return
            metrics = trainer.callback_metrics
            name = next((k for k in VALIDATION_LOSS_NAMES if k in metrics), None)
            if name is not None:
                self.val_losses.append(float(metrics[name]))

        def __deepcopy__(self, memo: dict) -> EpochTimer:
            return self  # NeuralForecast deep-copies its models' trainer kwargs; keep one timer

        @property
        def seconds(self) -> float:
            if self.started is None or self.ended is None:
                raise RuntimeError("the timer saw no training batch")
            return self.ended - self.started

    return EpochTimer()
