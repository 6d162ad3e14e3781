"""The default config in float32: ``training.precision: 32-true`` and ``inference.precision: 32``.

Everything else as ``project`` (``model.anchor: auto``, so ``fit`` trains
forked): what a user gets on a CPU without native bf16, and the float32
figure to hold against the peers, which all compute in float32. The
contestant fails loudly if ``fit`` did not train forked in float32, so the
figure can never silently be another path.
"""

from __future__ import annotations

from benchmarks.contestants import project
from benchmarks.task import TaskData


def train(data: TaskData) -> dict:
    """``project.train`` in float32; checks that ``fit`` forked and used 32-true."""
    result = project.train(data, project.FLOAT32)
    path = result.get("training_path") or {}
    if not path.get("forked_windows", 0) > 1:
        raise RuntimeError(f"fit did not train forked: {path.get('why')}")
    if result.get("precision") != "32-true":
        raise RuntimeError(f"fit trained in {result.get('precision')!r}, not 32-true")
    return result


def predict(data: TaskData, repeats: int) -> dict:
    """``project.predict`` with ``inference.precision: 32``."""
    return project.predict(data, repeats, project.FLOAT32)
