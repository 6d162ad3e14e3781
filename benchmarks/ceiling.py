"""The hardware ceiling: fp32 GEMM GFLOP/s through torch at the task's thread count.

    .venv/bin/python -m benchmarks.ceiling            # prints the table

An LSTM is GEMMs plus elementwise gate work, so the fastest a training loop
can go is about (GEMM FLOP/s) / (GEMM FLOPs per window); the fraction of that
a contestant reaches says how much is left on the table. Shapes measured:

- ``square``: 2048 x 2048 @ 2048 x 2048, what the CPU's GEMM kernels reach at
  best: the ceiling;
- ``lstm step``: one step's gates of a batch, (256 x 64) @ (64 x 256), the
  shape the recurrence is made of;
- ``lstm input``: one layer's input projection over a whole lookback at once,
  (256 * 168 x 64) @ (64 x 256), the shape an implementation can batch out
  of the recurrence.
"""

from __future__ import annotations

import time

import torch

from benchmarks.task import Task


def gemm_gflops(m: int, k: int, n: int, *, seconds: float = 1.0) -> float:
    """Median GFLOP/s of ``(m, k) @ (k, n)`` in float32, over batches of calls lasting ``seconds`` in all."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)  # warm-up: kernel selection, page faults
    t0 = time.perf_counter()
    torch.mm(a, b, out=out)
    per_call = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, int(0.1 / per_call))  # about 0.1 s per sample
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 3:
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        rates.append(2.0 * m * k * n * calls / (time.perf_counter() - t0) / 1e9)
    rates.sort()
    return rates[len(rates) // 2]


def shapes(task: Task) -> dict[str, tuple[int, int, int]]:
    """Name -> (m, k, n) of the GEMMs measured."""
    h, b = task.hidden, task.batch_size
    return {
        "square": (2048, 2048, 2048),
        "lstm step": (b, h, 4 * h),
        "lstm input": (b * task.lookback, h, 4 * h),
    }


def run(task: Task, seconds: float = 1.0) -> dict:
    """GFLOP/s per shape; ``ceiling_gflops`` is the best of them."""
    rates = {name: gemm_gflops(*mkn, seconds=seconds) for name, mkn in shapes(task).items()}
    return {"gflops": rates, "ceiling_gflops": max(rates.values()), "shapes": {k: list(v) for k, v in shapes(task).items()}}


if __name__ == "__main__":
    torch.set_num_threads(Task().threads)
    result = run(Task())
    for name, rate in result["gflops"].items():
        print(f"{name:<12} {result['shapes'][name]}  {rate:8.1f} GFLOP/s")
