"""The LSTM network: tensors in, tensors out, nothing else.

Config, scaling and windowing belong to the forecaster object
(``forecasting.forecaster``); this module owns the arithmetic only, so it can be
checked against a float64 reference of the textbook equations.
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMForecaster(nn.Module):
    """Stacked (optionally bidirectional) LSTM encoder + a direct multi-horizon head.

    The encoder reads the lookback window; its last hidden state (both
    directions when bidirectional) feeds one linear layer that emits all
    ``horizon`` steps at once. With ``lookback`` given, a linear skip from the
    lookback target to the horizon is added to that output. Direct heads do not feed their own errors back
    in, which is why they are the default for batch forecasting.
    """

    def __init__(
        self,
        n_features: int,
        horizon: int,
        *,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        bidirectional: bool = False,
        anchor_last: bool = True,
        lookback: int | None = None,
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.anchor_last = anchor_last
        self.encoder = nn.LSTM(
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            # nn.LSTM applies dropout between stacked layers only.
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        directions = 2 if bidirectional else 1
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size * directions, horizon))
        # Optional linear path from the lookback target straight to the horizon (LSTNet's
        # "autoregressive highway"): it represents naive and seasonal-naive forecasts
        # exactly, so the LSTM only has to learn what they miss.
        self.skip = nn.Linear(lookback, horizon) if lookback else None
        if anchor_last:
            # Zero output + the anchored level is the naive forecast: training starts
            # from that baseline and moves away from it only where the data pays.
            for layer in (self.head[1], self.skip):
                if layer is not None:
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast ``horizon`` scaled target values from a scaled lookback window."""
        # x: (batch, lookback, features); the target is feature 0.
        if self.anchor_last:
            level = x[:, -1:, :1]  # (batch, 1, 1): last observed target
            x = torch.cat([x[..., :1] - level, x[..., 1:]], dim=-1)  # (batch, lookback, features)
        _, (h_n, _) = self.encoder(x)  # h_n: (layers * directions, batch, hidden)
        if self.encoder.bidirectional:
            last = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (batch, 2 * hidden): top layer, both directions
        else:
            last = h_n[-1]  # (batch, hidden): top layer
        out = self.head(last)  # (batch, horizon)
        if self.skip is not None:
            out = out + self.skip(x[:, -self.skip.in_features :, 0])  # (batch, horizon)
        if self.anchor_last:
            out = out + level[:, :, 0]  # (batch, horizon)
        return out
