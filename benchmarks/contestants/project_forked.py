"""This project on its fast training path: forking sequences (docs/forecaster.md, "Training speed").

The same ``fit`` as ``project`` and the same task, with the one setting that
lets ``fit`` select the forked path by itself: ``model.anchor: delta``
(``FAST_ANCHOR``; the encoder reads step-to-step changes, the forecast is
relative to the last value), translation-invariant like the default
``last`` but with encoder inputs every window shares, whereas anchoring each
window's inputs on its own last value gives every window different ones. ``fit`` then runs the encoder once per chunk
of ``training.forking_windows`` consecutive windows and applies the head at
each window's end: the same windows, the same optimiser steps, far fewer
recurrent steps. The contestant fails loudly if ``fit`` did not fork, so the
figure can never silently be the window-by-window path.

Inference is window by window whichever path trained the weights: the
``project`` contestant's prediction figures hold for this one too.
"""

from __future__ import annotations

from benchmarks.contestants import project
from benchmarks.task import TaskData

FAST_ANCHOR = "delta"


def train(data: TaskData) -> dict:
    """``project.train`` with the shared anchor; checks that ``fit`` chose the forked path."""
    result = project.train(data, anchor=FAST_ANCHOR)
    path = result.get("training_path") or {}
    if not path.get("forked_windows", 0) > 1:
        raise RuntimeError(f"fit did not train forked: {path.get('why')}")
    return result
