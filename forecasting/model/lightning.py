"""Lightning wiring: the training step, the optimiser and the window loaders.

The network itself lives in ``forecasting.model``; this module only says how
to train it, so the same network serves inference without Lightning.

Two training paths give the same model: ``WindowBatches`` serves every window
on its own; ``ChunkBatches`` serves chunks of consecutive windows that share
one encoder pass (forking sequences, ``RecurrentForecaster.forward_forked``),
several times faster where the network allows it (``RecurrentForecaster.fork_blocker``;
``train.resolve_forking`` decides per config).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from forecasting.model.network import ForecastLoss, RecurrentForecaster
from forecasting.prep.transforms import zero_first_change
from forecasting.prep.windows import WindowIndex, WindowSpec, gather

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
ForkedBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Padding:
    """How training windows are masked as if their series were short (left padding)."""

    min_length: int
    """Observed lookback points always kept."""
    fraction: float
    """Share of windows masked."""
    covariates: tuple[int, ...]
    """Past-block positions of data covariates (zeroed where padded)."""
    fill_first: bool
    """Padded target repeats the first kept value (levels); else 0 (differencing: 'no change')."""


@dataclass(frozen=True)
class Forking:
    """Shape of forked training chunks: ``windows`` consecutive windows ``stride`` apart share one encoder pass."""

    lookback: int
    stride: int
    windows: int


class LitForecaster(pl.LightningModule):
    """Trains a forecasting network on scaled windows: MSE on the mean, pinball on quantiles.

    Training batches are either windows (``Batch``) or forked chunks
    (``ForkedBatch`` from ``ChunkBatches``; needs ``forking``). Validation
    always runs window by window, exactly as inference does, so early
    stopping and checkpoints judge the model as it will be used.
    """

    def __init__(
        self,
        net: RecurrentForecaster,
        *,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        padding: Padding | None = None,
        embedding_dropout: float = 0.1,
        forking: Forking | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.forking = forking
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.padding = padding
        self.embedding_dropout = embedding_dropout
        self.loss_fn = ForecastLoss(net.outputs, net.quantiles)

    def forward(self, past: torch.Tensor, future: torch.Tensor, series: torch.Tensor) -> torch.Tensor:
        return self.net(past, future, series)

    def _step(self, batch: Batch, stage: str) -> torch.Tensor:
        past, future, y, series = batch  # (B, lookback, F_past), (B, horizon, F_future), (B, horizon), (B,)
        loss = self.loss_fn(self.net(past, future, series), y)
        self.log(
            f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=past.shape[0], sync_dist=stage == "val",
            prog_bar=True,
        )
        return loss

    def training_step(self, batch: Batch | ForkedBatch, batch_idx: int) -> torch.Tensor:  # noqa: D102 - Lightning hook
        if len(batch) == 5:
            return self._forked_step(batch)
        past, future, y, series = batch
        if self.padding is not None and self.padding.fraction > 0:
            past = mask_prefix(past, self.padding)
        if self.net.embedding is not None and self.embedding_dropout > 0:
            # Some windows forget their series, so row 0 learns to stand for series never seen in training.
            forget = torch.rand(series.shape, device=series.device) < self.embedding_dropout
            series = torch.where(forget, torch.zeros_like(series), series)
        return self._step((past, future, y, series), "train")

    def _forked_step(self, batch: ForkedBatch) -> torch.Tensor:
        """One encoder pass per chunk; the loss is the mean over the chunk's real windows (``weight`` 1)."""
        if self.forking is None:
            raise ValueError("a forked batch needs LitForecaster(forking=...)")
        past, future, y, series, weight = batch  # (C, L, F), (C, k, H, F_future), (C, k, H), (C,), (C, k)
        if self.net.embedding is not None and self.embedding_dropout > 0:
            # Per chunk: the embedding is read at every encoder step, which the chunk's windows share.
            forget = torch.rand(series.shape, device=series.device) < self.embedding_dropout
            series = torch.where(forget, torch.zeros_like(series), series)
        f = self.forking
        if self.padding is not None and self.padding.fraction > 0:
            past = mask_prefix(past, self.padding, lookback=f.lookback)
        pred = self.net.forward_forked(past, future, series, lookback=f.lookback, stride=f.stride)  # (C, k, H, n_out)
        loss = self.loss_fn(pred, y, weight)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=weight.numel(), prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:  # noqa: D102 - Lightning hook
        return self._step(batch, "val")

    def configure_optimizers(self):  # noqa: D102, ANN201 - Lightning hook
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


def mask_prefix(past: torch.Tensor, padding: Padding, *, lookback: int | None = None) -> torch.Tensor:
    """Mask the oldest steps of a random ``padding.fraction`` of windows (or forked chunks), as ``left_pad`` would.

    past: (B, steps, F_past) with the observed mask in the last column; ``lookback``
    (default ``steps``) is the window length the padding is drawn for. A chosen
    row keeps the last ``k`` steps of its first window, ``k`` uniform in
    ``[min_length, lookback - 1]``; the steps before become padding: mask 0, data
    covariates 0, target the first kept value (or 0 for differencing).

    On a forked chunk (``steps = lookback + (windows - 1) * stride``) the padded
    prefix is the chunk's, which every window of the chunk shares: window ``j``
    sees ``j * stride`` fewer padded steps in its lookback, as a short series
    that grows by ``stride`` points per window would, and reads exactly what
    ``forward`` reads on the masked chunk's first ``lookback + j * stride`` steps.
    """
    batch, steps, _ = past.shape
    lookback = steps if lookback is None else lookback
    if padding.min_length >= lookback:
        return past
    chosen = torch.rand(batch, device=past.device) < padding.fraction  # (B,)
    keep = torch.randint(padding.min_length, lookback, (batch,), device=past.device)  # (B,)
    first_kept = lookback - keep  # (B,) first observed position
    positions = torch.arange(steps, device=past.device)[None]  # (1, steps)
    padded = chosen[:, None] & (positions < first_kept[:, None])  # (B, steps)
    out = past.clone()
    if padding.fill_first:
        fill = past[torch.arange(batch, device=past.device), first_kept, 0]  # (B,)
        out[..., 0] = torch.where(padded, fill[:, None], past[..., 0])
    else:
        out[..., 0] = past[..., 0].masked_fill(padded, 0.0)
    for j in padding.covariates:
        out[..., j] = past[..., j].masked_fill(padded, 0.0)
    out[..., -1] = past[..., -1].masked_fill(padded, 0.0)
    return out


class WindowBatches(Dataset):
    """Windows gathered from one values array: ``(past, future, y, series)`` per batch, no per-window copies.

    ``__getitems__`` gathers a whole batch in one vectorised op (torch's
    DataLoader calls it whenever batching is on; collate is the identity).
    """

    def __init__(
        self,
        values: torch.Tensor,
        index: WindowIndex,
        spec: WindowSpec,
        *,
        past_columns: list[int],
        future_columns: list[int],
        codes: np.ndarray,
        cumulative: bool,
    ) -> None:
        if len(index) and int(index.starts.max()) + spec.length > values.shape[0]:
            raise ValueError(f"a window starting at row {int(index.starts.max())} runs past the {values.shape[0]} rows")
        self.values = values  # (n_points, C) float32
        self.spec = spec
        self.past_columns = torch.as_tensor(past_columns, dtype=torch.long)
        self.future_columns = torch.as_tensor(future_columns, dtype=torch.long)
        self.cumulative = cumulative
        self._starts = torch.from_numpy(index.starts)  # (n_windows,)
        self._codes = torch.from_numpy(codes[index.series])  # (n_windows,) embedding row per window

    def __len__(self) -> int:
        return int(self._starts.shape[0])

    def __getitem__(self, i: int) -> Batch:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        return tuple(t[0] for t in self.__getitems__([i]))  # type: ignore[return-value]

    def __getitems__(self, idx: list[int]) -> Batch:
        picked = torch.as_tensor(idx, dtype=torch.long)  # (B,)
        window = gather(self.values, self._starts[picked], self.spec.length)  # (B, length, C)
        lookback = self.spec.lookback
        past = window[:, :lookback, self.past_columns]  # (B, lookback, F_past)
        future = window[:, lookback:, self.future_columns]  # (B, horizon, F_future)
        y = window[:, lookback:, 0]  # (B, horizon) scaled (transformed) target
        if self.cumulative:
            y = torch.cumsum(y, dim=1)  # differencing: the change since the origin
            zero_first_change(past)
        return past, future, y, self._codes[picked]


def chunk_plan(index: WindowIndex, stride: int, windows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut each run of consecutive windows (same series, ``stride`` apart) into chunks of up to ``windows``.

    Returns ``(first, count, position)``: each chunk's first index position, its
    number of windows, and for every window of the index its position in its
    chunk. Gaps (``build_index`` drops windows spanning one) and series ends
    break runs, so a chunk never spans either. Windows stay in index order.
    """
    n = len(index)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts, series = index.starts, index.series
    new_run = np.r_[True, (series[1:] != series[:-1]) | (starts[1:] - starts[:-1] != stride)]  # (n,)
    run_first = np.flatnonzero(new_run)  # (runs,)
    run_of = np.cumsum(new_run) - 1  # (n,) run of each window
    in_run = np.arange(n) - run_first[run_of]  # (n,) position within its run
    first = np.flatnonzero(in_run % windows == 0)  # (chunks,)
    count = np.diff(np.r_[first, n])
    return first.astype(np.int64), count.astype(np.int64), (in_run % windows).astype(np.int64)


class ChunkBatches(Dataset):
    """Forked training chunks: ``(past, future, y, series, weight)`` for ``windows`` consecutive windows each.

    Item ``i`` is chunk ``i`` of ``chunk_plan``: the rows from its first
    window's start to the end of its last window's horizon, as one
    ``(lookback + (k - 1) * stride)``-step encoder input plus every window's
    future block and target (``k = windows``). A chunk with fewer windows
    repeats its last row to keep the shape and weights the missing windows 0;
    the encoder is causal, so the repeated rows reach no real window.
    """

    def __init__(
        self,
        values: torch.Tensor,
        index: WindowIndex,
        spec: WindowSpec,
        *,
        windows: int,
        past_columns: list[int],
        future_columns: list[int],
        codes: np.ndarray,
        cumulative: bool,
    ) -> None:
        if windows < 1:
            raise ValueError(f"windows must be >= 1, got {windows}")
        if len(index) and int(index.starts.max()) + spec.length > values.shape[0]:
            raise ValueError(f"a window starting at row {int(index.starts.max())} runs past the {values.shape[0]} rows")
        self.values = values  # (n_points, C) float32
        self.spec = spec
        self.windows = windows
        self.past_columns = torch.as_tensor(past_columns, dtype=torch.long)
        self.future_columns = torch.as_tensor(future_columns, dtype=torch.long)
        self.cumulative = cumulative
        first, count, _ = chunk_plan(index, spec.stride, windows)
        self._starts = torch.from_numpy(index.starts[first])  # (chunks,) first row of each chunk
        self._count = torch.from_numpy(count)  # (chunks,) real windows per chunk
        self._codes = torch.from_numpy(codes[index.series[first]])  # (chunks,)
        self.n_windows = len(index)

    @property
    def steps(self) -> int:
        """Encoder steps per chunk: ``lookback + (windows - 1) * stride``."""
        return self.spec.lookback + (self.windows - 1) * self.spec.stride

    def __len__(self) -> int:
        return int(self._starts.shape[0])

    def __getitem__(self, i: int) -> ForkedBatch:
        if not -len(self) <= i < len(self):
            raise IndexError(f"chunk {i} out of range for {len(self)} chunks")
        return tuple(t[0] for t in self.__getitems__([i]))  # type: ignore[return-value]

    def __getitems__(self, idx: list[int]) -> ForkedBatch:
        picked = torch.as_tensor(idx, dtype=torch.long)  # (C,)
        start, count = self._starts[picked], self._count[picked]
        spec, k, stride = self.spec, self.windows, self.spec.stride
        total = self.steps + spec.horizon
        rows = start[:, None] + torch.arange(total)  # (C, total)
        last = start + (count - 1) * stride + spec.length - 1  # (C,) last row a real window reads
        window = self.values[torch.minimum(rows, last[:, None])]  # (C, total, columns)
        past = window[:, : self.steps, self.past_columns]  # (C, steps, F_past)
        ahead = window[:, spec.lookback :]  # (C, (k - 1) * stride + horizon, columns)
        y = ahead[..., 0].unfold(1, spec.horizon, stride)  # (C, k, horizon)
        future = ahead[..., self.future_columns].unfold(1, spec.horizon, stride).transpose(-1, -2)  # (C, k, H, F_fut)
        if self.cumulative:
            y = torch.cumsum(y, dim=-1)  # differencing: the change since each window's origin
            zero_first_change(past)  # the chunk's first step; later windows read older steps instead
        weight = (torch.arange(k)[None] < count[:, None]).to(past.dtype)  # (C, k)
        return past, future.contiguous(), y.contiguous(), self._codes[picked], weight


def collate_batch(batch: Batch | ForkedBatch) -> Batch | ForkedBatch:
    """Identity collate for ``WindowDataModule``: ``WindowBatches`` and ``ChunkBatches`` return whole batches."""
    return batch


class WindowDataModule(pl.LightningDataModule):
    """Serves training and validation batches; pinned memory only when batches go to a CUDA device."""

    def __init__(
        self,
        train: WindowBatches | ChunkBatches,
        val: WindowBatches | None,
        *,
        batch_size: int,
        seed: int,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.train = train
        self.val = val
        self.batch_size = batch_size
        self.seed = seed
        self.pin_memory = pin_memory

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        # Forked chunks: batch_size windows are batch_size // windows chunks.
        per_batch = max(1, self.batch_size // self.train.windows) if isinstance(self.train, ChunkBatches) else self.batch_size
        return DataLoader(
            self.train, batch_size=per_batch, shuffle=True, generator=generator,
            collate_fn=collate_batch, pin_memory=self.pin_memory,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val is None or len(self.val) == 0:
            return []
        return DataLoader(
            self.val, batch_size=max(self.batch_size, 1024), shuffle=False,
            collate_fn=collate_batch, pin_memory=self.pin_memory,
        )


class LossHistory(pl.Callback):
    """Per-epoch losses, kept in memory so the registry can log them (only it imports mlflow)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._record(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer)

    def state_dict(self) -> dict:
        """Saved in checkpoints (plain floats), so a resumed training keeps the curve of its first epochs."""
        return {"epochs": [dict(e) for e in self.epochs]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = [dict(e) for e in state_dict.get("epochs", [])]

    def _record(self, trainer: pl.Trainer) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("_loss")}
        if not self.epochs or self.epochs[-1]["epoch"] != trainer.current_epoch:
            self.epochs.append({"epoch": trainer.current_epoch})
        self.epochs[-1].update(metrics)
