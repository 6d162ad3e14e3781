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

import numpy as np
import torch
import yaml

from forecasting.config.model import ForecasterConfig, config_to_yaml, parse_config
from forecasting.errors import ForecastingError
from forecasting.prep.features import InputLayout
from forecasting.model.network import RecurrentForecaster, output_names
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.prepare import config_spec
from forecasting.prep.windows import WindowSpec

CONFIG_FILE = "config.yaml"
SCALER_FILE = "scaler.json"
WEIGHTS_FILE = "weights.pt"
META_FILE = "meta.json"
MEMBERS_DIR = "members"


def build_network(config: ForecasterConfig, n_series: int = 0) -> RecurrentForecaster:
    """The network a config describes; ``n_series`` training series size the optional embedding."""
    m = config.model
    layout = InputLayout.from_config(config)
    return RecurrentForecaster(
        n_features=layout.n_past,
        horizon=config.window.horizon,
        n_future=layout.n_future,
        cell=m.cell,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        dropout=m.dropout,
        bidirectional=m.bidirectional,
        head=m.head,
        anchor=config.resolved_anchor,
        lookback=config.window.lookback if m.linear_skip else None,
        quantiles=tuple(m.quantiles),
        mean=m.point_kind == "mean",
        n_series=n_series if m.embedding_dim else 0,
        embedding_dim=m.embedding_dim,
        memory=config.window.lookback if m.chrono_init else None,
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
    members: list[TrainedForecaster] = field(default_factory=list)
    """Ensemble members (``model.ensemble``), each a single network; empty for a single network, whose
    weights are ``state_dict``. An ensemble's ``scaler`` is its first member's (series codes, known series)."""

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @property
    def spec(self) -> WindowSpec:
        return config_spec(self.config)

    @property
    def layout(self) -> InputLayout:
        """Which columns the network reads (covariates, calendar, mask)."""
        return InputLayout.from_config(self.config)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The network's output columns, e.g. ``("mean",)`` or ``("q0.1", "q0.5", "q0.9")``."""
        m = self.config.model
        return output_names(tuple(m.quantiles), m.point_kind == "mean")

    def network(self) -> RecurrentForecaster:
        """A fresh network with the trained weights, in eval mode on the CPU."""
        if self.members:
            raise ForecastingError(
                f"model '{self.config.name}' is an ensemble of {len(self.members)} networks; forecast through "
                "forecasting.inference.predict_starts, which combines them"
            )
        net = build_network(self.config, len(self.scaler.series_ids))
        try:
            net.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise ForecastingError(
                f"weights of model '{self.config.name}' do not fit the network its config describes "
                f"(saved by an older version of this package?): {str(exc).splitlines()[0]}"
            ) from None
        return net.eval()

    def series_codes(self, series_ids: list[str] | tuple[str, ...]) -> np.ndarray:
        """``(n,)`` int64 embedding rows: training series 1..n, series never seen in training 0."""
        position = {s: i + 1 for i, s in enumerate(self.scaler.series_ids)}
        return np.array([position.get(s, 0) for s in series_ids], dtype=np.int64)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(config_to_yaml(self.config))
        (directory / SCALER_FILE).write_text(json.dumps(self.scaler.to_dict()))
        torch.save({k: v.detach().cpu() for k, v in self.state_dict.items()}, directory / WEIGHTS_FILE)
        (directory / META_FILE).write_text(json.dumps({"metrics": self.metrics, "history": self.history, **self.meta}))
        for i, member in enumerate(self.members):
            member.save(directory / MEMBERS_DIR / str(i))
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
        members_dir = directory / MEMBERS_DIR
        count = len(list(members_dir.iterdir())) if members_dir.is_dir() else 0
        members = [cls.load(members_dir / str(i)) for i in range(count)]
        config = _pin_anchor(config, meta)
        return cls(config=config, scaler=scaler, state_dict=state, metrics=metrics, history=history, meta=meta, members=members)


LEGACY_AUTO_ANCHOR = {"difference": "none", "log-return": "none"}
"""What ``model.anchor: auto`` meant before it meant 'delta' (2026-12-04): 'last', or 'none' for these."""


def _pin_anchor(config: ForecasterConfig, meta: dict[str, Any]) -> ForecasterConfig:
    """A saved config's ``model.anchor: auto`` replaced by the anchor its weights were trained with.

    'auto' resolves by the rule of the code that trained the model; the weights of an
    older model fit the newer network's shapes but not its inputs, so a silent change
    would skew every forecast. ``fit`` records the resolved anchor in the metadata;
    models saved before it did were trained with the old rule.
    """
    if config.model.anchor != "auto":
        return config
    anchor = meta.get("anchor") or LEGACY_AUTO_ANCHOR.get(config.data.target_transform, "last")
    if anchor == config.resolved_anchor:
        return config  # 'auto' still means what it meant: the config loads as it was saved
    return config.model_copy(update={"model": config.model.model_copy(update={"anchor": anchor})})
