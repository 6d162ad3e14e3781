"""Typed, validated configs for every YAML in ``configs/``.

YAML files hold overrides only; every default lives here with a docstring.
Validation collects every problem (pydantic does, and cross-field checks add
theirs) and raises one ``ConfigError`` that lists them all with field paths.
"""

from __future__ import annotations

import copy
import zoneinfo
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting.config.backtest import SECTION, BacktestConfig, backtest_problems, parse_backtest
from forecasting.data.calendar import offset_for
from forecasting.errors import ConfigError


class _Strict(BaseModel):
    # A typo in a YAML key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


TargetTransform = Literal["none", "log", "difference", "log-return"]
StatisticalModel = Literal["ets", "theta", "arima"]
CalendarFeature = Literal["hour_of_day", "day_of_week", "day_of_year", "weekend", "holiday", "trading_day"]


class DataConfig(_Strict):
    dataset: str = Field(description="Dataset name in the observation store, e.g. 'seattle_temps'.")
    series: list[str] | None = Field(None, description="Series ids to train on; all of the dataset when empty.")
    covariates: list[str] = Field(
        default_factory=list,
        description="Past covariate columns (humidity, volume, ...): read over the lookback only, "
        "so forecasting never needs their future values.",
    )
    future_covariates: list[str] = Field(
        default_factory=list,
        description="Known-future covariate columns (a planned promotion, a weather forecast): read over the "
        "lookback and the horizon, so forecasting needs their values for every horizon step "
        "(``forecast(..., future=frame)``); a missing value is an error naming series and timestamps.",
    )
    calendar: list[CalendarFeature] = Field(
        default_factory=list,
        description="Known-future calendar features computed from the timestamps, history and horizon alike: "
        "hour_of_day, day_of_week, day_of_year (each as sin/cos), weekend, holiday (US federal) and "
        "trading_day (NYSE session) flags. They need no input at prediction time.",
    )
    calendar_timezone: str = Field(
        "UTC", description="IANA zone the data was recorded in: daily and coarser grids (days, NYSE sessions) start at its local midnight, calendar features are computed in it, and forecasts carry the local date. E.g. 'America/Los_Angeles'."
    )
    target_transform: TargetTransform = Field(
        "none",
        description="Applied to the target before scaling and inverted exactly after: 'log' (positive series), "
        "'difference' (y_t - y_{t-1}) or 'log-return' (log y_t - log y_{t-1}, for prices). With the two "
        "differencing transforms the network predicts the cumulative change from the last observation.",
    )
    freq: str = Field(description="pandas offset alias of the series grid ('h', 'D', 'B'); dates the forecast steps.")


class WindowConfig(_Strict):
    lookback: int = Field(ge=1, description="Past steps the encoder sees.")
    horizon: int = Field(ge=1, description="Future steps forecast at once (direct multi-horizon head).")
    stride: int = Field(1, ge=1, description="Steps between consecutive training windows.")
    max_windows_per_series: int | None = Field(None, ge=1, description="Keep only the most recent training windows per series.")
    min_length: int | None = Field(
        None,
        ge=1,
        description="Fewest observed points a series needs to be forecast. Series shorter than lookback but at "
        "least this long (a newly listed stock) are left-padded and a mask input marks the padding; the model "
        "is trained on windows padded the same way (see pad_fraction). None means lookback: no padding.",
    )
    pad_fraction: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Share of training windows whose oldest part is masked as padding (leaving at least "
        "min_length observed points), so the model learns to forecast short series. Used only when "
        "min_length < lookback.",
    )


class SplitConfig(_Strict):
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5, description="Share of each series (at its end, before test) used for validation.")
    test_fraction: float = Field(0.1, ge=0.0, lt=0.5, description="Share of each series (at its very end) held out for the final test.")


class EnsembleConfig(_Strict):
    """Several networks trained on the same data, served as one model: the forecast is their median.

    N-BEATS and the M4 winners got much of their edge from ensembling; members differ by seed and,
    optionally, by lookback. One MLflow version holds every member; one pyfunc serves them.
    """

    members: int = Field(5, ge=2, le=64, description="Networks trained, each with seed training.seed + i.")
    lookbacks: list[int] = Field(
        default_factory=list,
        description="Member lookbacks, assigned in turn (member i gets lookbacks[i % len]); each at most "
        "window.lookback, which is what the ensemble reads. Empty: every member uses window.lookback. "
        "E.g. 1.5x to 4x the season.",
    )
    combine: Literal["median", "mean"] = Field("median", description="How member forecasts are combined per step.")
    statistical: list[StatisticalModel] = Field(
        default_factory=list,
        description="'comb': the forecast becomes the equal-weight mean of the networks' combined forecast and each "
        "of these statistical forecasts (ets, theta, arima), refitted per origin on the history up to it whenever "
        "the ensemble forecasts. On M1 monthly the mean of the networks, ETS and Theta beat each of them.",
    )

    @field_validator("lookbacks")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError(f"lookbacks must be >= 1, got {value}")
        return value


class ModelConfig(_Strict):
    cell: Literal["lstm", "gru", "rnn"] = Field(
        "lstm", description="Recurrent cell: lstm, gru, or a vanilla tanh rnn (kept as a reference point)."
    )
    hidden_size: int = Field(64, ge=1, description="Units per recurrent layer (per direction).")
    num_layers: int = Field(2, ge=1, description="Stacked recurrent layers.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout between stacked layers and before the head.")
    bidirectional: bool = Field(False, description="Encode the lookback window in both directions.")
    head: Literal["direct", "autoregressive"] = Field(
        "direct",
        description="'direct': one layer emits every horizon step at once from the encoder state (no error "
        "feedback). 'autoregressive': a seq2seq decoder of the same cell steps through the horizon, fed its "
        "own previous forecast and that step's known-future covariates.",
    )
    anchor: Literal["auto", "last", "delta", "none"] = Field(
        "auto",
        description="'last': the network sees and predicts the target relative to the last observed value, "
        "so level shifts beyond the training range (prices) do not push inputs out of distribution. "
        "'delta': equally level-free, but the encoder reads the target as step-to-step changes (the forecast "
        "is still the last value + what the network adds), so training can fork (training.forking). "
        "'auto': 'delta', except 'none' for the differencing target transforms (already relative); chosen by "
        "measurement on five datasets (docs/forecaster.md, \"Choosing the anchor\"). Models saved before 'auto' "
        "meant 'delta' load with the anchor they were trained with.",
    )
    linear_skip: bool = Field(
        True,
        description="Add a linear map from the lookback target to the horizon (LSTNet's highway): "
        "seasonal patterns are copied exactly and the LSTM learns the rest.",
    )
    quantiles: list[float] = Field(
        default_factory=list,
        description="Quantile levels in (0, 1) to forecast, e.g. [0.1, 0.5, 0.9]; trained with pinball loss and "
        "built as cumulative softplus steps from a centre quantile, so they never cross.",
    )
    point: Literal["auto", "median", "mean"] = Field(
        "auto",
        description="The point forecast ('mean' column of every forecast): 'median' is the 0.5 quantile (needs "
        "0.5 in quantiles); 'mean' adds a separate output trained with MSE. 'auto': the median when 0.5 is "
        "among the quantiles, else the mean.",
    )
    chrono_init: bool = Field(
        True,
        description="Initialise LSTM/GRU gate biases for memory spread up to the lookback (Tallec & Ollivier "
        "2018) instead of torch's default, which halves each unit's state every step at the start.",
    )
    embedding_dim: int = Field(
        0,
        ge=0,
        description="Static covariate: a learned per-series embedding of this size fed to every step "
        "(0 = none). Series unseen in training use a shared 'unknown' vector, trained by dropping the "
        "series identity from 10% of training windows.",
    )

    ensemble: EnsembleConfig | None = Field(
        None, description="Train several members and serve their median as one model (see EnsembleConfig)."
    )

    @field_validator("quantiles")
    @classmethod
    def _sorted(cls, value: list[float]) -> list[float]:
        return sorted(value)

    @property
    def point_kind(self) -> str:
        """'mean' or 'median', with 'auto' resolved."""
        if self.point == "auto":
            return "median" if 0.5 in self.quantiles else "mean"
        return self.point


def _at_least_one_or_auto(value: int | str) -> int | str:
    """A count of windows that may also be 'auto' (``forking_windows``, ``inference.batch_size``)."""
    if isinstance(value, int) and value < 1:
        raise ValueError(f"must be >= 1 or 'auto', got {value}")
    return value


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
    precision: str = Field(
        "auto",
        description="'auto': bf16-mixed where bf16 is native (CUDA with bf16, CPUs with AVX512-BF16 or AMX), "
        "16-mixed on older CUDA devices, 32-true elsewhere; or any Lightning precision. The machine can override "
        "it (FORECASTING_PRECISION).",
    )
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; default all cores. Two trainings at once must split them.")
    deterministic: bool = Field(True)
    forking: Literal["auto", "off"] = Field(
        "auto",
        description="Forking sequences (MQ-RNN): 'auto' trains stride-overlapping windows of a series in chunks "
        "that share one encoder pass, the head reading the state at each window's origin: the same windows and "
        "optimizer steps, several times faster. Used whenever the network allows it (model.anchor 'delta' or "
        "'none', or a differencing transform; direct head, one direction, no padding masks); 'off' trains every "
        "window on its own. Inference is unchanged either way.",
    )
    forking_windows: int | Literal["auto"] = Field(
        "auto",
        description="Windows per forked chunk (at most batch_size): a batch holds batch_size // forking_windows "
        "chunks. Window j of a chunk has read j * stride steps more than its lookback when its head is trained. "
        "'auto': batch_size // 8, at most 8, so every batch mixes at least 8 stretches of data and no head "
        "reads more than 7 strides of extra history (measured: 32 windows a chunk cost 9% MAE on one weather "
        "series and stopped early on it at learning rate 3e-3; 8 matched window-by-window training on every "
        "dataset of docs/forecaster.md's 'Choosing the anchor').",
    )

    _positive_windows = field_validator("forking_windows")(lambda value: _at_least_one_or_auto(value))

    @property
    def fork_chunk(self) -> int:
        """Windows per forked chunk with 'auto' resolved (never more than the batch)."""
        k = self.forking_windows if isinstance(self.forking_windows, int) else min(8, self.batch_size // 8)
        return max(1, min(k, self.batch_size))


class InferenceConfig(_Strict):
    precision: Literal["auto", "32", "bf16"] = Field(
        "auto",
        description="Arithmetic of batch prediction, backtests and the served model: 'auto' (bf16 where the "
        "hardware computes it natively: a CPU with AVX512-BF16 or AMX, a CUDA device with bf16; float32 "
        "elsewhere), '32' (float32) or 'bf16' (bfloat16 autocast around the network; weights stay float32). "
        "bf16 ran the LSTM 1.4-1.7x faster on a 2-core CPU with AVX512-BF16 and moved hold-out MASE by about "
        "0.001 on five datasets, against 0.02-0.1 between training seeds (docs/forecaster.md, \"Inference "
        "speed\"). Backtests, promotion and monitoring use the same setting, so the promised error is the served "
        "one's on the same kind of machine; set '32' where forecasts must match across CPUs bit for bit.",
    )
    batch_size: int | Literal["auto"] = Field(
        "auto",
        description="Windows per forward pass: 'auto' is 128 on a CPU and 4,096 on a GPU "
        "(forecasting.hardware.resolve_inference_batch), or a number of windows. On a CPU the recurrence's "
        "state and gates stay in the core's cache across the lookback with a small batch: 128 predicted 1.26x "
        "faster than 1,024 in float32 on a 2-core AMD EPYC (benchmarks/inference_batch.py, docs/forecaster.md "
        "'Inference speed'); a GPU needs large batches to fill it. It also bounds prediction's peak memory. "
        "Forecasts do not depend on it.",
    )

    _positive_batch = field_validator("batch_size")(lambda value: _at_least_one_or_auto(value))


NAIVE_BASELINES: tuple[str, ...] = ("naive", "seasonal_naive", "drift", "mean")
"""Baselines computed from each window's lookback alone (forecasting.evaluation.baselines)."""


class BaselineConfig(_Strict):
    season_length: int = Field(1, ge=1, description="Season of the seasonal-naive baseline (24 for hourly, 1 = naive).")
    statistical: list[StatisticalModel] = Field(
        default_factory=lambda: ["ets", "theta"],
        description="Statistical forecasters scored beside the model on the same origins, each refitted per origin "
        "on the history up to it (statsforecast): 'ets' (AutoETS), 'theta' (AutoTheta), 'arima' (AutoARIMA, slow). "
        "What a user would otherwise run: a model that loses to them is not worth serving.",
    )
    statistical_history: int | None = Field(
        None,
        ge=2,
        description="Most recent points each statistical fit reads; default max(10 seasons, 5 x lookback). Bounds "
        "the cost of refitting per origin on long hourly series; their forecasts depend on recent data anyway.",
    )


class PromotionConfig(_Strict):
    metric: Literal["mae", "rmse", "smape", "mase"] = Field(
        "mae", description="Backtest metric a challenger must win on (lower is better)."
    )
    margin: float = Field(
        0.01,
        ge=0.0,
        lt=1.0,
        description="Relative improvement over the champion required to promote (0.02 = 2% lower); "
        "above zero so that retraining noise alone never swaps the model in service.",
    )
    origins: int = Field(30, ge=1, description="Most recent out-of-sample origins both versions are backtested on.")
    must_beat: list[str] = Field(
        default_factory=lambda: ["seasonal_naive"],
        description="Baselines a version must beat on ``metric`` (same origins) to become champion, the first "
        "version of a name included: any of naive, seasonal_naive, drift, mean, or a statistical model listed "
        "in baseline.statistical (e.g. [ets, theta]).",
    )


class LimitsConfig(_Strict):
    """Sizes no config may exceed unless it raises these limits: a typo of a few zeros
    (``lookback: 100000000``, ``hidden_size: 1000000000``) is refused at load, not an out-of-memory
    crash hours into a training. Raise a limit in the config when a size is meant."""

    max_lookback: int = Field(100_000, ge=1, description="Largest window.lookback (11 years of hourly points).")
    max_horizon: int = Field(100_000, ge=1, description="Largest window.horizon.")
    max_parameters: int = Field(
        100_000_000, ge=1,
        description="Largest recurrent network, in parameters (400 MB of float32 weights, 1.6 GB with Adam's "
        "state and gradients), as estimated from model.cell, hidden_size, num_layers and bidirectional.",
    )


class ForecasterConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Registered model name in MLflow.")
    description: str = ""
    data: DataConfig
    window: WindowConfig
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    inference: InferenceConfig = InferenceConfig()
    baseline: BaselineConfig = BaselineConfig()
    promotion: PromotionConfig = PromotionConfig()
    limits: LimitsConfig = LimitsConfig()
    backtest: BacktestConfig | None = Field(
        None, description="Backtest settings (forecasting.config.backtest.BacktestConfig); ignored by training."
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> ForecasterConfig:
        problems = _data_problems(self.data) + _model_problems(self.model, self.data) + _limit_problems(self)
        if self.baseline.season_length > self.window.lookback:
            problems.append(
                f"baseline.season_length: {self.baseline.season_length} exceeds window.lookback "
                f"{self.window.lookback}; the seasonal-naive baseline needs one full season of history"
            )
        if self.window.min_length is not None and self.window.min_length > self.window.lookback:
            problems.append(
                f"window.min_length: {self.window.min_length} exceeds window.lookback {self.window.lookback}; "
                "series at least lookback long need no padding"
            )
        ensemble = self.model.ensemble
        if ensemble is not None:
            too_long = [lb for lb in ensemble.lookbacks if lb > self.window.lookback]
            if too_long:
                problems.append(
                    f"model.ensemble.lookbacks: {too_long} exceed window.lookback {self.window.lookback}, which is what "
                    "the ensemble reads; raise window.lookback to the longest member's"
                )
            too_short = [lb for lb in ensemble.lookbacks if lb < self.baseline.season_length]
            if too_short:
                problems.append(
                    f"model.ensemble.lookbacks: {too_short} are shorter than baseline.season_length "
                    f"{self.baseline.season_length}; a member must see one full season"
                )
        known = set(NAIVE_BASELINES) | set(self.baseline.statistical)
        unknown = [b for b in self.promotion.must_beat if b not in known]
        if unknown:
            problems.append(
                f"promotion.must_beat: {unknown} is not a computed baseline; choose from {sorted(known)} "
                "(statistical ones must also be listed in baseline.statistical)"
            )
        if self.training.batch_size > 65536:
            problems.append(f"training.batch_size: {self.training.batch_size} is larger than any sensible batch")
        if problems:
            # One line per problem; _format_errors lists each as its own item.
            raise ValueError("\n".join(problems))
        return self

    @property
    def resolved_anchor(self) -> str:
        """``model.anchor`` with 'auto' resolved: 'none' for the differencing transforms (their target is
        already relative), else 'delta', the level-free anchor that trains forked (docs/forecaster.md,
        "Choosing the anchor", has the measurements behind it)."""
        if self.model.anchor != "auto":
            return self.model.anchor
        return "none" if self.data.target_transform in ("difference", "log-return") else "delta"

    @property
    def min_length(self) -> int:
        """Fewest observed points a series needs to be forecast (``window.min_length`` or lookback)."""
        return self.window.min_length or self.window.lookback

    @property
    def padded(self) -> bool:
        """True when short series are left-padded and the network reads a mask input."""
        return self.min_length < self.window.lookback

    def member_configs(self) -> list[ForecasterConfig]:
        """One config per ensemble member (seed + i, its lookback), each a plain single-network config."""
        ensemble = self.model.ensemble
        if ensemble is None:
            return [self]
        out = []
        for i in range(ensemble.members):
            lookback = ensemble.lookbacks[i % len(ensemble.lookbacks)] if ensemble.lookbacks else self.window.lookback
            min_length = None if self.window.min_length is None else min(self.window.min_length, lookback)
            out.append(
                self.model_copy(
                    update={
                        "model": self.model.model_copy(update={"ensemble": None}),
                        "window": self.window.model_copy(update={"lookback": lookback, "min_length": min_length}),
                        "training": self.training.model_copy(update={"seed": self.training.seed + i}),
                    }
                )
            )
        return out

    def flat(self) -> dict[str, Any]:
        """Every resolved setting as ``section.key -> value``: what MLflow logs as params."""
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                out[prefix] = value

        walk("", self.model_dump(mode="json", exclude={"backtest"} if self.backtest is None else None))
        return out


def _data_problems(data: DataConfig) -> list[str]:
    problems = []
    both = sorted(set(data.covariates) & set(data.future_covariates))
    if both:
        problems.append(f"data.future_covariates: {both} are also listed in data.covariates; name each column once")
    for field_name in ("covariates", "future_covariates", "calendar"):
        values = getattr(data, field_name)
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            problems.append(f"data.{field_name}: {repeated} listed more than once")
    reserved = sorted({"series_id", "timestamp", "target"} & set(data.covariates + data.future_covariates))
    if reserved:
        problems.append(f"data covariates: {reserved} are reserved column names, not covariates")
    try:
        offset = offset_for(data.freq)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a config problem
        problems.append(f"data.freq: {data.freq!r} is not a pandas offset alias or trading calendar ({exc})")
    else:
        daily_or_longer = offset is not None and _at_least_a_day(offset)
        if daily_or_longer and "hour_of_day" in data.calendar:
            problems.append(f"data.calendar: hour_of_day is constant on a {data.freq!r} grid; drop it")
    try:
        zoneinfo.ZoneInfo(data.calendar_timezone)
    except Exception:  # noqa: BLE001 - ZoneInfo raises several types
        problems.append(f"data.calendar_timezone: {data.calendar_timezone!r} is not an IANA time zone")
    return problems


def _model_problems(model: ModelConfig, data: DataConfig) -> list[str]:
    problems = []
    outside = [q for q in model.quantiles if not 0.0 < q < 1.0]
    if outside:
        problems.append(f"model.quantiles: {outside} outside (0, 1)")
    if len(set(model.quantiles)) != len(model.quantiles):
        problems.append(f"model.quantiles: {model.quantiles} repeats a level")
    if model.point == "median" and 0.5 not in model.quantiles:
        problems.append(f"model.point: 'median' needs 0.5 in model.quantiles (got {model.quantiles})")
    if model.anchor in ("last", "delta") and data.target_transform in ("difference", "log-return"):
        problems.append(
            f"model.anchor: {model.anchor!r} with data.target_transform {data.target_transform!r} would anchor on the last "
            "change, not the last level; use 'auto' or 'none'"
        )
    return problems


_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def recurrent_parameters(config: ForecasterConfig) -> int:
    """Parameters of the recurrent encoder alone (a lower bound of the network's): gates x directions x layers
    x (hidden x (inputs + hidden) + 2 biases x hidden)."""
    m, d = config.model, config.data
    directions = 2 if m.bidirectional else 1
    inputs = 2 + len(d.covariates) + len(d.future_covariates) + len(d.calendar)  # target, mask and the columns
    total = 0
    for layer in range(m.num_layers):
        n_in = inputs if layer == 0 else m.hidden_size * directions
        total += _GATES.get(m.cell, 4) * directions * (m.hidden_size * (n_in + m.hidden_size) + 2 * m.hidden_size)
    return total


def _limit_problems(config: ForecasterConfig) -> list[str]:
    """Sizes that cannot fit memory, each naming the field, the value and the limit that allows it."""
    limits, problems = config.limits, []
    if config.window.lookback > limits.max_lookback:
        problems.append(f"window.lookback: {config.window.lookback} is over limits.max_lookback "
                        f"{limits.max_lookback}; raise limits.max_lookback if you mean it")
    if config.window.horizon > limits.max_horizon:
        problems.append(f"window.horizon: {config.window.horizon} is over limits.max_horizon "
                        f"{limits.max_horizon}; raise limits.max_horizon if you mean it")
    parameters = recurrent_parameters(config)
    if parameters > limits.max_parameters:
        m = config.model
        problems.append(
            f"model.hidden_size: {m.hidden_size} x num_layers {m.num_layers} makes a {m.cell} network of at least "
            f"{parameters:.3g} parameters ({parameters * 4 / 1e9:.3g} GB of float32 weights), over "
            f"limits.max_parameters {limits.max_parameters}; raise limits.max_parameters if you mean it"
        )
    return problems


def _at_least_a_day(offset) -> bool:  # noqa: ANN001 - a pandas DateOffset
    try:
        return pd.Timedelta(offset) >= pd.Timedelta(days=1)
    except (TypeError, ValueError):
        return True  # business days, months, trading sessions: calendar steps of a day or more


def validation_problems(error: ValidationError, *, drop_tags: tuple[str, ...] = ()) -> list[str]:
    """One line per pydantic error, ``field.path: message (got value)``.

    ``drop_tags`` removes a discriminated union's tag that pydantic puts first in the path.
    """
    problems = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        if loc and loc[0] in drop_tags:
            loc = loc[1:]
        where = ".".join(loc)
        msg = item["msg"].removeprefix("Value error, ")
        if not where:  # cross-field checks: each line already names its fields
            problems.extend(msg.splitlines())
            continue
        value = item.get("input")
        shown = "" if isinstance(value, dict) or item["type"] == "missing" else f" (got {value!r})"
        problems.append(f"{where}: {msg}{shown}")
    return problems


def config_error(what: str, problems: list[str]) -> ConfigError:
    """One error listing every problem of one config."""
    lines = "\n".join(f"  - {p}" for p in problems)
    return ConfigError(f"{what}: {len(problems)} problem(s)\n{lines}")


def read_yaml(path: str | Path, *, what: str = "config") -> dict[str, Any]:
    """A YAML file's top-level mapping, or one ConfigError saying why there is none."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} file {path} is a directory, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} file {path} cannot be read: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise ConfigError(f"{what} file {path} is a binary file, not YAML text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} file {path} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                          "is it a binary file?") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{what} {path}: not valid YAML: nested too deeply") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in section by section (neither is changed)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_config(raw: dict[str, Any], *, source: str = "<dict>") -> ForecasterConfig:
    """Validate a mapping; raise one ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config {source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return ForecasterConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(f"config {source}", validation_problems(exc)) from None


def load_config(path: str | Path) -> ForecasterConfig:
    """Read and validate one YAML config."""
    return parse_config(read_yaml(path), source=str(path))


def config_to_yaml(config: ForecasterConfig) -> str:
    """The fully resolved config, as logged next to every model."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def load_backtest_config(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[ForecasterConfig, BacktestConfig]:
    """Read a forecaster YAML with an optional ``backtest:`` section; ``overrides`` (CLI options) win.

    Problems in the forecaster part and the backtest part come in one ConfigError.
    """
    raw = read_yaml(path)
    section = raw.pop(SECTION, None) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"config {path}: '{SECTION}' must be a mapping, got {type(section).__name__}")
    merged = {**section, **(overrides or {})}  # an override of None means "unbounded", e.g. every origin
    problems = backtest_problems(merged)
    try:
        config = parse_config(raw, source=str(path))
    except ConfigError as exc:
        lines = str(exc).splitlines()[1:]  # drop the "N problem(s)" header, keep the items
        problems = [line.removeprefix("  - ") for line in lines] + problems
        config = None
    if problems:
        raise ConfigError(f"config {path}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))
    assert config is not None
    return config, BacktestConfig.model_validate(merged)


def check_model_fits(config: ForecasterConfig, model: ForecasterConfig) -> None:
    """The registered model must forecast the dataset the backtest config names; say so, naming both."""
    if model.data.dataset != config.data.dataset:
        raise ConfigError(
            f"model '{model.name}' was trained on dataset '{model.data.dataset}', "
            f"but the backtest config names dataset '{config.data.dataset}'"
        )


def backtest_settings(config: ForecasterConfig, overrides: dict[str, Any] | None = None) -> BacktestConfig:
    """The config's ``backtest:`` section with ``overrides`` (CLI options, keyword arguments) winning; one
    ConfigError listing every problem."""
    section = config.backtest.model_dump(exclude_unset=True) if config.backtest else {}
    return parse_backtest({**section, **(overrides or {})}, source=f"'{config.name}' (backtest settings)")
