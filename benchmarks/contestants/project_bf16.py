"""This project's inference in bfloat16: ``inference.precision: bf16`` (docs/forecaster.md, "Inference").

The same network, windows and entry points as ``project`` (``predict_starts``
and ``backtest``), with the one model setting that runs the network under
bfloat16 autocast; the weights stay float32. An inference contestant only:
the setting changes no training, so ``project``'s training figures hold for it.
Its forecasts differ from float32 by ~1e-4 of their level; the accuracy check
is ``tests/test_predict.py`` and benchmarks/findings.md.
"""

from __future__ import annotations

from benchmarks.contestants import project
from benchmarks.task import TaskData


def train(data: TaskData) -> dict:
    """Not a training contestant (the harness schedules no training job for it)."""
    raise RuntimeError("project-bf16 is an inference contestant: inference.precision changes no training")


def predict(data: TaskData, repeats: int) -> dict:
    """``project.predict`` with ``inference.precision: bf16``."""
    return project.predict(data, repeats, precision="bf16")
