"""Lightning wiring: the training step, the optimiser and the window loaders.

The network itself lives in ``forecasting.model``; this module only says how
to train it, so the same network serves inference without Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from forecasting.model import ForecastLoss, RecurrentForecaster
from forecasting.windows import WindowIndex, WindowSpec, collate_batch, gather

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


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


class LitForecaster(pl.LightningModule):
    """Trains a forecasting network on scaled windows: MSE on the mean, pinball on quantiles."""

    def __init__(
        self,
        net: RecurrentForecaster,
        *,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        padding: Padding | None = None,
        embedding_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.net = net
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
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=past.shape[0], sync_dist=stage == "val")
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:  # noqa: D102 - Lightning hook
        past, future, y, series = batch
        if self.padding is not None and self.padding.fraction > 0:
            past = mask_prefix(past, self.padding)
        if self.net.embedding is not None and self.embedding_dropout > 0:
            # Some windows forget their series, so row 0 learns to stand for series never seen in training.
            forget = torch.rand(series.shape, device=series.device) < self.embedding_dropout
            series = torch.where(forget, torch.zeros_like(series), series)
        return self._step((past, future, y, series), "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:  # noqa: D102 - Lightning hook
        return self._step(batch, "val")

    def configure_optimizers(self):  # noqa: D102, ANN201 - Lightning hook
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


def mask_prefix(past: torch.Tensor, padding: Padding) -> torch.Tensor:
    """Mask the oldest steps of a random ``padding.fraction`` of windows, as ``left_pad`` would.

    past: (B, lookback, F_past) with the observed mask in the last column.
    A chosen window keeps its last ``k`` steps, ``k`` uniform in
    ``[min_length, lookback - 1]``; the rest become padding: mask 0, data
    covariates 0, target the first kept value (or 0 for differencing).
    """
    batch, lookback, _ = past.shape
    if padding.min_length >= lookback:
        return past
    chosen = torch.rand(batch, device=past.device) < padding.fraction  # (B,)
    keep = torch.randint(padding.min_length, lookback, (batch,), device=past.device)  # (B,)
    first_kept = lookback - keep  # (B,) first observed position
    steps = torch.arange(lookback, device=past.device)[None]  # (1, lookback)
    padded = chosen[:, None] & (steps < first_kept[:, None])  # (B, lookback)
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
            past[:, 0, 0] = 0.0  # as at prediction, where the lookback's first change has no predecessor
        return past, future, y, self._codes[picked]


class WindowDataModule(pl.LightningDataModule):
    """Serves training and validation batches; pinned memory only when batches go to a CUDA device."""

    def __init__(
        self,
        train: WindowBatches,
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
        return DataLoader(
            self.train, batch_size=self.batch_size, shuffle=True, generator=generator,
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

    def _record(self, trainer: pl.Trainer) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.endswith("_loss")}
        if not self.epochs or self.epochs[-1]["epoch"] != trainer.current_epoch:
            self.epochs.append({"epoch": trainer.current_epoch})
        self.epochs[-1].update(metrics)
