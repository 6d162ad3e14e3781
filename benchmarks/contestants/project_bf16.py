"""This project in bfloat16: ``training.precision: bf16-mixed`` and ``inference.precision: bf16``.

What ``training.precision: auto`` selects on a CPU that computes bf16 natively
(AVX512-BF16 or AMX) and on CUDA devices with bf16: the same ``fit``,
``predict_starts`` and ``backtest`` as ``project``, window by window, with
Lightning's bf16 mixed precision for training (float32 master weights and
loss) and bfloat16 autocast around the network for inference. On a CPU
without native bf16 (AVX2 only) oneDNN has no bf16 LSTM: the training job
fails there (its log says why) and prediction falls back to float32. The
contestant fails loudly if ``fit`` did not train in bf16.
"""

from __future__ import annotations

from benchmarks.contestants import project
from benchmarks.task import TaskData


def train(data: TaskData) -> dict:
    """``project.train`` in bf16-mixed; checks that ``fit`` used it."""
    result = project.train(data, precision="bf16")
    if result.get("precision") != "bf16-mixed":
        raise RuntimeError(f"fit trained in {result.get('precision')!r}, not bf16-mixed")
    return result


def predict(data: TaskData, repeats: int) -> dict:
    """``project.predict`` with ``inference.precision: bf16``."""
    return project.predict(data, repeats, precision="bf16")
