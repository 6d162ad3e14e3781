"""The user-facing forecaster: config + scaler + network weights, saved as plain files.

Weights are a ``state_dict`` in ``weights.pt`` (loaded with ``weights_only=True``),
the config is YAML and the scaler JSON: a model version never depends on
pickled classes, so it loads across refactors of this package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from forecasting.config import ForecasterConfig, config_to_yaml, parse_config
from forecasting.model import LSTMForecaster
from forecasting.scaling import SeriesScaler
from forecasting.windows import WindowSpec

CONFIG_FILE = "config.yaml"
SCALER_FILE = "scaler.json"
WEIGHTS_FILE = "weights.pt"
META_FILE = "meta.json"


def build_network(config: ForecasterConfig) -> LSTMForecaster:
    """The network a config describes (features = target + covariates)."""
    m = config.model
    return LSTMForecaster(
        n_features=1 + len(config.data.covariates),
        horizon=config.window.horizon,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        dropout=m.dropout,
        bidirectional=m.bidirectional,
        anchor_last=m.anchor == "last",
        lookback=config.window.lookback if m.linear_skip else None,
    )


@dataclass
class TrainedForecaster:
    """Everything needed to forecast: what ``fit`` returns and the registry stores."""

    config: ForecasterConfig
    scaler: SeriesScaler
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> WindowSpec:
        w = self.config.window
        return WindowSpec(lookback=w.lookback, horizon=w.horizon, stride=w.stride)

    def network(self) -> LSTMForecaster:
        """A fresh network with the trained weights, in eval mode on the CPU."""
        net = build_network(self.config)
        net.load_state_dict(self.state_dict)
        return net.eval()

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(config_to_yaml(self.config))
        (directory / SCALER_FILE).write_text(json.dumps(self.scaler.to_dict()))
        torch.save({k: v.detach().cpu() for k, v in self.state_dict.items()}, directory / WEIGHTS_FILE)
        (directory / META_FILE).write_text(json.dumps({"metrics": self.metrics, "history": self.history, **self.meta}))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TrainedForecaster:
        directory = Path(directory)
        config = parse_config(yaml.safe_load((directory / CONFIG_FILE).read_text()), source=str(directory))
        scaler = SeriesScaler.from_dict(json.loads((directory / SCALER_FILE).read_text()))
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        meta = json.loads((directory / META_FILE).read_text()) if (directory / META_FILE).exists() else {}
        metrics = meta.pop("metrics", {})
        history = meta.pop("history", [])
        return cls(config=config, scaler=scaler, state_dict=state, metrics=metrics, history=history, meta=meta)
