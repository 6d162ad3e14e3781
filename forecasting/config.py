"""Typed, validated configs for every YAML in ``configs/``.

YAML files hold overrides only; every default lives here with a docstring.
Validation collects every problem (pydantic does, and cross-field checks add
theirs) and raises one ``ConfigError`` that lists them all with field paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forecasting.errors import ConfigError


class _Strict(BaseModel):
    # A typo in a YAML key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    dataset: str = Field(description="Dataset name in the observation store, e.g. 'seattle_temps'.")
    series: list[str] | None = Field(None, description="Series ids to train on; all of the dataset when empty.")
    covariates: list[str] = Field(default_factory=list, description="Past covariate columns fed to the encoder.")
    freq: str = Field(description="pandas offset alias of the series grid ('h', 'D', 'B'); dates the forecast steps.")


class WindowConfig(_Strict):
    lookback: int = Field(ge=1, description="Past steps the encoder sees.")
    horizon: int = Field(ge=1, description="Future steps forecast at once (direct multi-horizon head).")
    stride: int = Field(1, ge=1, description="Steps between consecutive training windows.")
    max_windows_per_series: int | None = Field(None, ge=1, description="Keep only the most recent training windows per series.")


class SplitConfig(_Strict):
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5, description="Share of each series (at its end, before test) used for validation.")
    test_fraction: float = Field(0.1, ge=0.0, lt=0.5, description="Share of each series (at its very end) held out for the final test.")


class ModelConfig(_Strict):
    cell: Literal["lstm"] = Field("lstm", description="Recurrent cell.")
    hidden_size: int = Field(64, ge=1, description="Units per LSTM layer (per direction).")
    num_layers: int = Field(2, ge=1, description="Stacked LSTM layers.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout between stacked layers and before the head.")
    bidirectional: bool = Field(False, description="Encode the lookback window in both directions.")
    anchor: Literal["last", "none"] = Field(
        "last",
        description="'last': the network sees and predicts the target relative to the last observed value, "
        "so level shifts beyond the training range (prices) do not push inputs out of distribution.",
    )


    linear_skip: bool = Field(
        True,
        description="Add a linear map from the lookback target to the horizon (LSTNet's highway): "
        "seasonal patterns are copied exactly and the LSTM learns the rest.",
    )


class TrainingConfig(_Strict):
    max_epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    gradient_clip_val: float | None = Field(1.0, gt=0, description="Clip the gradient norm; LSTMs explode without it.")
    patience: int = Field(3, ge=1, description="Early stopping: epochs without validation improvement.")
    seed: int = Field(42, description="Seeds torch, numpy and window shuffling; same seed, same model on CPU.")
    accelerator: str = Field("auto", description="Lightning accelerator: auto picks a GPU when there is one.")
    devices: int | str = Field("auto")
    strategy: str = Field("auto", description="Lightning strategy, e.g. 'ddp' for several GPUs.")
    precision: str = Field("auto", description="'auto': bf16-mixed on CUDA, 32-true on CPU; or any Lightning precision.")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; default all cores. Two trainings at once must split them.")
    deterministic: bool = Field(True)


class BaselineConfig(_Strict):
    season_length: int = Field(1, ge=1, description="Season of the seasonal-naive baseline (24 for hourly, 1 = naive).")


class ForecasterConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Registered model name in MLflow.")
    description: str = ""
    data: DataConfig
    window: WindowConfig
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    baseline: BaselineConfig = BaselineConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> ForecasterConfig:
        problems = []
        if self.baseline.season_length > self.window.lookback:
            problems.append(
                f"baseline.season_length: {self.baseline.season_length} exceeds window.lookback "
                f"{self.window.lookback}; the seasonal-naive baseline needs one full season of history"
            )
        if self.training.batch_size > 65536:
            problems.append(f"training.batch_size: {self.training.batch_size} is larger than any sensible batch")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def flat(self) -> dict[str, Any]:
        """Every resolved setting as ``section.key -> value``: what MLflow logs as params."""
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = value

        walk("", self.model_dump(mode="json"))
        return out


def _format_errors(source: str, error: ValidationError) -> ConfigError:
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = "" if isinstance(value, dict) or item["type"] == "missing" else f" (got {value!r})"
        problems.append(f"{where}: {msg}{shown}")
    lines = "\n".join(f"  - {p}" for p in problems)
    return ConfigError(f"config {source}: {len(problems)} problem(s)\n{lines}")


def parse_config(raw: dict[str, Any], *, source: str = "<dict>") -> ForecasterConfig:
    """Validate a mapping; raise one ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config {source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return ForecasterConfig.model_validate(raw)
    except ValidationError as exc:
        raise _format_errors(source, exc) from None


def load_config(path: str | Path) -> ForecasterConfig:
    """Read and validate one YAML config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path}: not valid YAML: {exc}") from None
    return parse_config(raw or {}, source=str(path))


def config_to_yaml(config: ForecasterConfig) -> str:
    """The fully resolved config, as logged next to every model."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
