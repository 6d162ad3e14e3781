"""The Python API: fit, forecast, backtest, save and load in a notebook, as Darts or NeuralForecast users expect.

A facade over the library, holding no logic of its own: ``Forecaster`` bundles a config with the
model ``forecasting.train.fit`` trains, and forwards to ``forecasting.predict.forecast``,
``forecasting.evaluation.backtest`` / ``report``, ``TrainedForecaster.save/load`` and
``forecasting.registry.models``. The functions below are the same calls without the object.

Importing this module loads only the config layer (pydantic, yaml): torch, Lightning and MLflow are
imported by the calls that need them, so ``import forecasting`` stays cheap and sets no global state.
Walk-through: docs/python-api.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecasting.config.model import ForecasterConfig, backtest_settings, deep_merge, parse_config, read_yaml
from forecasting.errors import ConfigError, ForecastingError

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.evaluation.backtest import BacktestResult
    from forecasting.evaluation.report import ReportFiles, Scores
    from forecasting.model.forecaster import TrainedForecaster
    from forecasting.registry.models import ModelRef
    from forecasting.train import FitResult

__all__ = ["BacktestRun", "Forecaster", "backtest", "fit", "forecast", "load_config"]

ConfigLike = ForecasterConfig | Mapping[str, Any] | str | Path
"""A validated config, its mapping (a parsed YAML) or the path of a YAML file."""


def load_config(path: str | Path, **overrides: Any) -> ForecasterConfig:
    """Read and validate a forecaster YAML (``configs/*.yaml``); keyword arguments override its sections.

    ``load_config("configs/weather.yaml", training={"max_epochs": 2})`` changes one setting of a
    section and keeps the rest, and the result is validated like the YAML itself, so a typo in an
    override is the same one error listing every problem that ``forecast train`` would give.
    """
    return parse_config(deep_merge(read_yaml(path), overrides), source=str(path))


def fit(config: ConfigLike, df: pd.DataFrame, *, checkpoint_dir: str | Path | None = None, progress: bool | None = None) -> FitResult:
    """Train one model on ``df`` (a long frame: series_id, timestamp, target and the config's covariates).

    The library's ``forecasting.train.fit``, after this machine's hardware overrides
    (``FORECASTING_ACCELERATOR`` ...), as ``forecast train`` applies them: hardware belongs to the machine,
    not the model. Returns the ``FitResult``: ``.forecaster`` is the trained model, ``.forecaster.metrics``
    its validation and test scores against the baselines.
    """
    from forecasting.settings import Settings, with_hardware
    from forecasting.train import fit as train

    config = with_hardware(_as_config(config), Settings.from_env())
    return train(config, df, checkpoint_dir=checkpoint_dir, progress=progress)


def forecast(
    model: Forecaster | TrainedForecaster | FitResult,
    df: pd.DataFrame,
    h: int | None = None,
    *,
    future: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecast ``h`` steps (default the model's horizon) after the last observation of every series in ``df``.

    Returns one row per series and step: series_id, origin (the last observed time), timestamp, step,
    mean (the point forecast) and ``q0.1``... for quantile models, in the target's units. Only each
    series' last ``lookback`` points are read. A model with ``data.future_covariates`` needs their
    horizon values in ``future`` (series_id, timestamp, columns).
    """
    from forecasting.predict import forecast as predict

    return predict(_trained(model), df, horizon=h, future=future)


@dataclass(frozen=True)
class BacktestRun:
    """A backtest's scored windows, its aggregated scores and, when asked for, the report written."""

    result: BacktestResult
    """Every scored window (origins, actuals, the model's and every baseline's forecasts)."""
    scores: Scores
    """Per forecaster, per step and per series: MAE, RMSE, sMAPE, MASE, skill vs seasonal naive."""
    report: ReportFiles | None = None
    """report.md, CSVs, forecasts.parquet and plots, when ``report_dir`` was given."""

    @property
    def summary(self) -> pd.DataFrame:
        """One row per forecaster (the model, then the baselines): the table to read first."""
        return self.scores.summary


def backtest(
    df: pd.DataFrame,
    model: Forecaster | TrainedForecaster | FitResult | ConfigLike,
    *,
    report_dir: str | Path | None = None,
    **settings: Any,
) -> BacktestRun:
    """Rolling-origin backtest against naive, seasonal naive, drift, mean and the statistical baselines.

    A trained model (a fitted ``Forecaster``, ``TrainedForecaster`` or ``FitResult``) is evaluated as it is,
    on origins whose targets it did not learn from; a config trains one model per fold, on data before the
    fold only. ``settings`` are ``BacktestConfig`` fields (``origins=10``, ``stride=24``,
    ``refit="always"``...): they win over the config's ``backtest:`` section, which wins over the defaults.
    ``report_dir`` also writes the report ``forecast backtest`` writes.
    """
    from forecasting.evaluation.backtest import backtest as run
    from forecasting.evaluation.report import score_backtest, write_report

    if isinstance(model, Forecaster) and not model.fitted:
        model = model.config
    trained, config, version = None, None, None
    if isinstance(model, ForecasterConfig | Mapping | str | Path):
        config = fitted_config = _as_config(model)
    else:
        trained = _trained(model)
        fitted_config = trained.config
        ref = model.ref if isinstance(model, Forecaster) else None
        # The library reads "no version" as "trained per fold"; name the in-memory model instead.
        version = ref.version if ref is not None else "unregistered"
    bt = backtest_settings(fitted_config, settings)
    result = run(df, bt, trained=trained, config=config, model_version=version)
    scores = score_backtest(result)
    files = write_report(result, report_dir, scores) if report_dir is not None else None
    return BacktestRun(result, scores, files)


class Forecaster:
    """One forecasting model in a notebook: a config, and once fitted or loaded, the trained model.

    ``Forecaster(config).fit(df).predict()`` trains and forecasts; ``.backtest(df)`` scores it against
    the baselines; ``.save(dir)`` / ``Forecaster.load(dir)`` keep it as plain files (YAML, JSON, a
    state_dict: no pickled classes); ``Forecaster.from_registry("name@champion")`` is the version the
    registry serves. Frames are long: series_id, timestamp (UTC), target and the config's covariates.
    """

    def __init__(self, config: ConfigLike) -> None:
        self.config: ForecasterConfig = _as_config(config)
        self.trained: TrainedForecaster | None = None
        """The trained model (config, scaler, weights, metrics) once fitted or loaded."""
        self.fit_result: FitResult | None = None
        """What ``fit`` returned, held-out forecasts included; None for a loaded model."""
        self.ref: ModelRef | None = None
        """The registered version (name, version, run_id) of a model from ``from_registry``."""
        self._history: pd.DataFrame | None = None  # each training series' last lookback rows: predict()'s default

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> Forecaster:
        """A forecaster for a YAML config; keyword arguments override sections, as in ``load_config``."""
        return cls(load_config(path, **overrides))

    @classmethod
    def _of(cls, trained: TrainedForecaster, ref: ModelRef | None = None) -> Forecaster:
        out = cls(trained.config)
        out.trained, out.ref = trained, ref
        return out

    @property
    def fitted(self) -> bool:
        """Whether there is a trained model to forecast with."""
        return self.trained is not None

    @property
    def metrics(self) -> dict[str, float]:
        """Validation and test scores of the trained model, next to the baselines' (``val_mae``, ...)."""
        return dict(self._require().metrics)

    def fit(self, df: pd.DataFrame, *, checkpoint_dir: str | Path | None = None, progress: bool | None = None) -> Forecaster:
        """Train on ``df`` (the config's series and covariates are selected from it); returns self.

        The training series' latest ``lookback`` rows are kept, so ``predict()`` without a frame
        forecasts from the end of the training data.
        """
        from forecasting.predict import latest_history

        result = fit(self.config, df, checkpoint_dir=checkpoint_dir, progress=progress)
        self.fit_result, self.trained, self.ref = result, result.forecaster, None
        self.config = result.forecaster.config
        trained_on = df[df["series_id"].isin(result.series_ids)]
        self._history = latest_history(trained_on, self.config.window.lookback)
        return self

    def predict(self, df: pd.DataFrame | None = None, h: int | None = None, *, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast from the latest origin of each series of ``df`` (default: the training frame).

        Columns: series_id, origin, timestamp, step, mean, and ``q0.1``... for quantile models;
        ``h`` (at most the trained horizon) keeps the first steps. See ``forecasting.forecast``.
        """
        if df is None:
            if self._history is None:
                raise ForecastingError(
                    f"forecaster '{self.config.name}' holds no training frame (it was loaded, not fitted here): "
                    "pass the history to forecast from, predict(df)"
                )
            df = self._history
        return forecast(self._require(), df, h, future=future)

    def backtest(self, df: pd.DataFrame, *, report_dir: str | Path | None = None, **settings: Any) -> BacktestRun:
        """Backtest on ``df``: the trained model as it is, or a model per fold when not fitted or when
        ``refit`` / a sliding ``window`` asks for retraining. See ``forecasting.backtest``."""
        retrain = settings.get("refit", "never") != "never" or settings.get("window") == "sliding"
        return backtest(df, self.config if retrain or not self.fitted else self, report_dir=report_dir, **settings)

    def save(self, directory: str | Path) -> Path:
        """Write the trained model to ``directory`` as plain files (config.yaml, scaler.json, weights.pt, meta.json)."""
        return self._require().save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Forecaster:
        """A forecaster saved by ``save`` (or any ``TrainedForecaster.save`` folder); forecasts like the original."""
        from forecasting.model.forecaster import TrainedForecaster

        if not Path(directory).is_dir():
            raise ForecastingError(f"no saved forecaster at {directory}: the folder does not exist")
        return cls._of(TrainedForecaster.load(directory))

    @classmethod
    def from_registry(cls, ref: str, *, tracking_uri: str | None = None) -> Forecaster:
        """The registered version ``ref`` names: ``NAME@ALIAS`` (``NAME`` alone is the champion) or ``NAME/VERSION``.

        The same weights the registry's pyfunc serves, as a ``Forecaster``, so they predict, backtest and save
        like a model fitted here; ``.ref`` names the version. MLflow is imported here, after the settings the
        CLI applies (telemetry off; ``MLFLOW_TRACKING_URI`` or ``<FORECASTING_HOME>/mlflow.db``), unless
        ``tracking_uri`` is given.
        """
        name, alias, version = _parse_ref(ref)
        from forecasting.settings import Settings, apply_environment

        settings = Settings.from_env()
        apply_environment(settings)  # before mlflow is imported: it reads its settings at import
        from forecasting.registry import models as registry

        registry.configure(tracking_uri or settings.mlflow_tracking_uri)
        registry.recover(name)  # what a killed training left half-made is cleaned up, never loaded
        if version is None:
            model_ref = registry.resolve(name, alias)
        else:
            registry.ensure_version(name, version)
            model_ref = registry.ModelRef(name, version, run_id="")
        registry.require_complete(name, model_ref.version)
        return cls._of(registry.load_trained(name, model_ref.version), model_ref)

    def _require(self) -> TrainedForecaster:
        if self.trained is None:
            raise ForecastingError(f"forecaster '{self.config.name}' is not fitted: call fit(df) first, or load one")
        return self.trained

    def __repr__(self) -> str:
        state = f"version {self.ref.version}" if self.ref else ("fitted" if self.fitted else "not fitted")
        w = self.config.window
        return f"Forecaster('{self.config.name}', lookback={w.lookback}, horizon={w.horizon}, {state})"


def _as_config(config: ConfigLike) -> ForecasterConfig:
    if isinstance(config, ForecasterConfig):
        return config
    if isinstance(config, str | Path):
        return load_config(config)
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    raise ConfigError(f"expected a ForecasterConfig, a mapping or a YAML path, got {type(config).__name__}")


def _trained(model: Forecaster | TrainedForecaster | FitResult) -> TrainedForecaster:
    if isinstance(model, Forecaster):
        return model._require()  # noqa: SLF001 - same module
    trained = getattr(model, "forecaster", model)  # a FitResult holds the trained model
    from forecasting.model.forecaster import TrainedForecaster

    if not isinstance(trained, TrainedForecaster):
        raise ForecastingError(f"expected a Forecaster, TrainedForecaster or FitResult, got {type(model).__name__}")
    return trained


def _parse_ref(ref: str) -> tuple[str, str, str | None]:
    """``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION`` (``models:/`` optional) -> (name, alias, version or None)."""
    text = ref.strip().removeprefix("models:/")
    name, slash, version = text.partition("/")
    if slash and "@" not in text:
        if not name or not version.isdigit():
            raise ConfigError(f"model reference {ref!r} is not NAME, NAME@ALIAS or NAME/VERSION (a number)")
        return name, "", version
    from forecasting.config.backtest import parse_model_ref

    name, alias = parse_model_ref(text)
    return name, alias, None
