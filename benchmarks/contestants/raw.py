"""The reference: a lean raw PyTorch loop, the least any library has to do.

All series live in one float32 tensor; a window is a start row into it and a
batch is one vectorised gather (no per-window Python, no copies of the data
up front). The network is ``nn.LSTM`` plus a linear head on the last hidden
state; the loop is plain forward, MSE, backward, Adam step. No Lightning.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from benchmarks.task import TaskData

class LSTMForecaster(nn.Module):
    """Lookback ``(B, lookback, 1)`` -> ``(B, horizon)``: stacked LSTM, linear head on the top layer's last state."""

    def __init__(self, hidden: int, layers: int, horizon: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)  # h_n: (layers, B, hidden)
        return self.head(h_n[-1])  # (B, horizon)


def _setup(data: TaskData, flush_denormal: bool) -> tuple[torch.Tensor, np.ndarray, np.ndarray, LSTMForecaster]:
    task = data.task
    torch.set_flush_denormal(flush_denormal)
    torch.manual_seed(task.seed)
    if data.ragged:
        raise ValueError(f"the raw loop needs equal-length series; {data.task.dataset} is ragged (a converge-only dataset)")
    scaled, mean, std = data.standardized()
    values = torch.from_numpy(scaled.ravel())  # (n_series * n_points,) float32
    return values, mean, std, LSTMForecaster(task.hidden, task.layers, task.horizon)


def _gather(values: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """``(n_points,)``, ``(B,)`` -> ``(B, length)`` by one advanced-indexing gather."""
    return values[starts[:, None] + torch.arange(length)]


def _holdout_starts(data: TaskData) -> torch.Tensor:
    """``(n_series * n_origins,)`` global start rows of the hold-out windows, series-major."""
    local = data.origins - data.task.lookback + 1  # (n_origins,)
    return torch.from_numpy((np.arange(data.n_series)[:, None] * data.n_points + local).ravel())


@torch.no_grad()
def _forecast(net: LSTMForecaster, values: torch.Tensor, starts: torch.Tensor, lookback: int) -> torch.Tensor:
    net.eval()
    return torch.cat([net(_gather(values, chunk, lookback)[..., None]) for chunk in torch.split(starts, 4096)])


def train(data: TaskData, *, flush_denormal: bool = False) -> dict:
    """One epoch over every stride-1 training window, shuffled, batch ``task.batch_size``."""
    task = data.task
    started = time.perf_counter()
    values, mean, std, net = _setup(data, flush_denormal)
    per_series = data.train_windows_per_series
    starts = torch.from_numpy((np.arange(data.n_series)[:, None] * data.n_points + np.arange(per_series)).ravel())
    optimiser = torch.optim.Adam(net.parameters(), lr=task.learning_rate)
    generator = torch.Generator().manual_seed(task.seed)
    loss_fn = nn.MSELoss()
    setup = time.perf_counter() - started

    steps = 0
    t0 = time.perf_counter()
    net.train()
    for _ in range(task.epochs):
        for batch in torch.split(starts[torch.randperm(len(starts), generator=generator)], task.batch_size):
            window = _gather(values, batch, task.length)  # (B, lookback + horizon)
            x, y = window[:, : task.lookback, None], window[:, task.lookback :]  # (B, lookback, 1), (B, horizon)
            loss = loss_fn(net(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps += 1
    seconds = time.perf_counter() - t0

    pred = _forecast(net, values, _holdout_starts(data), task.lookback).numpy().astype(np.float64)
    pred = pred.reshape(data.n_series, len(data.origins), task.horizon) * std[:, None, None] + mean[:, None, None]
    return {
        "windows": len(starts) * task.epochs, "steps": steps, "train_seconds": seconds,
        "setup_seconds": setup, "forecasts": pred,
    }


def predict(data: TaskData, repeats: int, *, flush_denormal: bool = False) -> dict:
    """Batch inference over the hold-out windows: gather, network, inverse scaling (chunks of 4,096)."""
    task = data.task
    values, mean, std, net = _setup(data, flush_denormal)
    starts = _holdout_starts(data)
    rows = np.repeat(np.arange(data.n_series), len(data.origins))

    def run() -> np.ndarray:
        pred = _forecast(net, values, starts, task.lookback).numpy().astype(np.float64)
        return pred * std[rows, None] + mean[rows, None]

    run()  # warm-up: first-call allocations
    timings = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        timings.append(time.perf_counter() - t0)
    return {"windows": len(starts), "inference_seconds": timings, "backtest_seconds": None}
