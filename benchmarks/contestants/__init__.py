"""The contestants of the benchmark, one module each, all with the same two entry points.

``train(data) -> dict`` trains on every stride-1 window before the hold-out
for the task's budget and returns ``windows``, ``steps``, ``train_seconds``
(the training steps only), ``setup_seconds`` (everything else the fit call
did) and ``forecasts``: ``(n_series, n_origins, horizon)`` for the hold-out,
in original units.

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
    "project-forked": "benchmarks.contestants.project_forked",
    "project-bf16": "benchmarks.contestants.project_bf16",
    "raw": "benchmarks.contestants.raw",
    "raw-ftz": "benchmarks.contestants.raw_ftz",
    "darts": "benchmarks.contestants.darts_peer",
    "neuralforecast": "benchmarks.contestants.neuralforecast_peer",
}
"""Name -> module. ``raw`` is the reference; ``darts`` and ``neuralforecast`` are the peers."""

PEERS: tuple[str, ...] = ("darts", "neuralforecast")
REFERENCE = "raw"
TRAINING_ONLY: tuple[str, ...] = ("raw-ftz", "project-forked")
"""Contestants whose inference is another's (same network, window by window): no predict jobs."""


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
    """
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self) -> None:
            self.started: float | None = None
            self.ended: float | None = None
            self.batches = 0

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if self.started is None:
                self.started = time.perf_counter()

        def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
            self.batches += 1
            self.ended = time.perf_counter()

        def __deepcopy__(self, memo: dict) -> EpochTimer:
            return self  # NeuralForecast deep-copies its models' trainer kwargs; keep one timer

        @property
        def seconds(self) -> float:
            if self.started is None or self.ended is None:
                raise RuntimeError("the timer saw no training batch")
            return self.ended - self.started

    return EpochTimer()
