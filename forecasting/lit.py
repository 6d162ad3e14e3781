"""Lightning wiring: the training step, the optimiser and the window loaders.

The network itself lives in ``forecasting.model``; this module only says how
to train it, so the same network serves inference without Lightning.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from forecasting.windows import WindowDataset, WindowIndex, WindowSpec, collate_batch


class LitForecaster(pl.LightningModule):
    """Trains a forecasting network on scaled windows with MSE loss."""

    def __init__(self, net: nn.Module, *, learning_rate: float = 1e-3, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.loss_fn = nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y, _ = batch  # x (batch, lookback, features), y (batch, horizon)
        loss = self.loss_fn(self.net(x), y)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def training_step(self, batch, batch_idx):  # noqa: D102 - Lightning hook
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):  # noqa: D102 - Lightning hook
        return self._step(batch, "val")

    def configure_optimizers(self):  # noqa: D102 - Lightning hook
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


class WindowDataModule(pl.LightningDataModule):
    """Serves batches gathered from one scaled values tensor: no per-window copies."""

    def __init__(
        self,
        values: torch.Tensor,
        spec: WindowSpec,
        train_index: WindowIndex,
        val_index: WindowIndex | None,
        *,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.values = values  # (n_points, features) float32, scaled
        self.spec = spec
        self.train_index = train_index
        self.val_index = val_index
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            WindowDataset(self.values, self.train_index, self.spec),
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
            collate_fn=collate_batch,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_index is None or len(self.val_index) == 0:
            return []
        return DataLoader(
            WindowDataset(self.values, self.val_index, self.spec),
            batch_size=max(self.batch_size, 1024),
            shuffle=False,
            collate_fn=collate_batch,
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
