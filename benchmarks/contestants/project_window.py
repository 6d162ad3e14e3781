"""The window-by-window reference: the project's default before forking (``model.anchor: last``,
``training.forking: off``, float32).

Each window's inputs are anchored on its own last value, so no two windows
share encoder inputs and every window runs the encoder over its whole
lookback: the path the raw loop and the peers take, and the one the FLOP
count of the ceiling rows describes. Kept to show what forking and bf16 buy
and at what accuracy. Training only: inference is window by window whatever
path trained the weights, so ``project-fp32``'s prediction figures hold for it.
The contestant fails loudly if ``fit`` forked.
"""

from __future__ import annotations

from dataclasses import replace

from benchmarks.contestants import project
from benchmarks.task import TaskData

SETTINGS = replace(project.FLOAT32, anchor="last", forking="off")


def train(data: TaskData) -> dict:
    """``project.train`` window by window in float32; checks that ``fit`` did not fork."""
    result = project.train(data, SETTINGS)
    path = result.get("training_path") or {}
    if path.get("forked_windows", 1) > 1:
        raise RuntimeError(f"fit trained forked ({path}); this contestant is the window-by-window path")
    return result


def predict(data: TaskData, repeats: int) -> dict:
    """``project.predict`` in float32 (the harness schedules none: see ``TRAINING_ONLY``)."""
    return project.predict(data, repeats, SETTINGS)
