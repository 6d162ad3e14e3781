"""The reference loop with denormal floats flushed to zero (``torch.set_flush_denormal(True)``).

Kept apart from ``raw`` because the flag alone moved the loop by ~25% on
these CPUs (STACK.md): denormals in the LSTM's gradients are slow on x86.
The project's ``fit`` sets it; the peers, as shipped, do not.
"""

from __future__ import annotations

from benchmarks.contestants import raw
from benchmarks.task import TaskData


def train(data: TaskData) -> dict:
    """``raw.train`` with denormals flushed."""
    return raw.train(data, flush_denormal=True)


def predict(data: TaskData, repeats: int) -> dict:
    """``raw.predict`` with denormals flushed."""
    return raw.predict(data, repeats, flush_denormal=True)
