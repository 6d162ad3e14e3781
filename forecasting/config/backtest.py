"""Backtest settings: the optional ``backtest:`` section of a forecaster YAML (``ForecasterConfig.backtest``),
plus CLI overrides (``config.model.load_backtest_config`` merges them, every problem reported at once).

This module sits below ``config.model``: the model config types its section with ``BacktestConfig``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting.errors import ConfigError

SECTION = "backtest"


class BacktestConfig(BaseModel):
    """Where the forecast origins sit and how models are (re)trained between them.

    An origin is the last observed time of a forecast; its targets are the
    next ``horizon`` points. Origins are anchored at the end of each series
    (the last one leaves exactly a full horizon of actuals) and step back by
    ``stride``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    origins: int | None = Field(
        30, ge=1, description="Most recent origins per series to evaluate; null = every allowed origin."
    )
    stride: int | None = Field(
        None, ge=1, description="Steps between consecutive origins; default the horizon (targets do not overlap)."
    )
    start: datetime | None = Field(None, description="Earliest origin (UTC when no zone is given); default unbounded.")
    end: datetime | None = Field(None, description="Latest origin (UTC when no zone is given); default unbounded.")
    horizon: int | None = Field(None, ge=1, description="Steps scored per origin; default the model's horizon.")
    refit: Literal["never", "always"] | int = Field(
        "never",
        description="With --train: 'never' trains once before the first origin, 'always' before every origin, "
        "an integer N every N origins. A registered model is evaluated as it is ('never').",
    )
    window: Literal["expanding", "sliding"] = Field(
        "expanding", description="Training data of a fold: everything before its cut-off, or the last train_size points."
    )
    train_size: int | None = Field(None, ge=1, description="Points per series a sliding window trains on.")
    in_sample: Literal["skip", "include"] = Field(
        "skip",
        description="Origins whose targets the evaluated model learned from (its training and validation parts): "
        "'skip' leaves them out; 'include' scores them, marked in_sample (optimistic).",
    )
    plot_series: int = Field(4, ge=1, description="Series shown in the forecasts-vs-actuals plot.")
    experiment: str = Field("backtests", min_length=1, description="MLflow experiment the backtest run is logged to.")

    @field_validator("refit", mode="before")
    @classmethod
    def _refit_policy(cls, value: Any) -> str | int:
        if value in ("never", "always"):
            return value
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError("refit must be 'never', 'always' or a number of origins N >= 1 (refit every N)")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        stamp = pd.Timestamp(value)
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()

    @model_validator(mode="after")
    def _cross_checks(self) -> BacktestConfig:
        problems = []
        if self.window == "sliding" and self.train_size is None:
            problems.append("train_size: a sliding window needs train_size (points per series)")
        if self.window == "expanding" and self.train_size is not None:
            problems.append(f"train_size: {self.train_size} is only used by window 'sliding'")
        if self.start is not None and self.end is not None and self.start > self.end:
            problems.append(f"start {self.start.isoformat()} is after end {self.end.isoformat()}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def refit_every(self) -> int | None:
        """Origins per fold: None for a single fold ('never'), 1 for 'always'."""
        if self.refit == "never":
            return None
        return 1 if self.refit == "always" else int(self.refit)


def parse_backtest(raw: Any, *, source: str = "<dict>") -> BacktestConfig:
    """Validate a ``backtest:`` mapping; one ConfigError lists every problem."""
    problems = backtest_problems(raw)
    if problems:
        raise ConfigError(f"config {source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))
    return BacktestConfig.model_validate(raw or {})


def backtest_problems(raw: Any) -> list[str]:
    if raw is not None and not isinstance(raw, dict):
        return [f"{SECTION}: expected a mapping, got {type(raw).__name__}"]
    try:
        BacktestConfig.model_validate(raw or {})
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            where = ".".join(str(p) for p in (SECTION, *item["loc"]))
            msg = item["msg"].removeprefix("Value error, ")
            value = item.get("input")
            shown = "" if isinstance(value, dict) or item["type"] == "missing" else f" (got {value!r})"
            problems.append(f"{where}: {msg}{shown}")
        return problems
    return []


def parse_model_ref(ref: str) -> tuple[str, str]:
    """``NAME``, ``NAME@ALIAS`` or ``models:/NAME@ALIAS`` -> ``(name, alias)``; the alias defaults to champion."""
    text = ref.strip().removeprefix("models:/")
    name, _, alias = text.partition("@")
    if not name or "/" in name or (_ and not alias):
        raise ConfigError(f"model reference {ref!r} is not NAME, NAME@ALIAS or models:/NAME@ALIAS")
    return name, alias or "champion"


def check_mode(settings: BacktestConfig, *, train: bool) -> None:
    """Refit settings need models trained per fold; say so before anything is loaded or trained."""
    if not train and settings.refit != "never":
        raise ConfigError(
            f"backtest.refit {settings.refit!r} trains a new model per fold: use --train; "
            "a registered model is evaluated as it is (refit 'never')"
        )
    if not train and settings.window == "sliding":
        raise ConfigError("backtest.window 'sliding' sets the training data of per-fold models: use --train")
