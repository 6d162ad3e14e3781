"""Hyperparameter search: an Optuna study over a forecaster config, scored by fit's validation MASE.

The objective is ``val_mase`` from :func:`forecasting.train.fit` (lower is better): the validation
part of every series is scored from *every* origin in it (stride 1, each origin forecasting a full
horizon), so the value is already a rolling-origin mean over ``split.val_fraction`` of each series'
end (before the test part), with no extra training. MASE, not MAE: scaled per series, so hundreds of
series of different sizes weigh the same. On M1 a search on validation MAE (dominated by the largest
series) picked a config 6% worse on the hold-out than the measured default; for one series the two rank
trials alike.

Each trial's config is the user's YAML (overrides form) with the tuned keys merged in and
validated by :func:`forecasting.config.model.parse_config`, exactly as a YAML would be; the best
one is written back in the same overrides form (:func:`best_yaml`), loadable by
``forecast train --config``.

Pruning: :class:`PruneOnValidation` reports the validation loss (the scaled training loss on the
validation windows, one number per epoch) to the trial and raises ``optuna.TrialPruned`` when
the ``MedianPruner`` says the trial is worse than the median of earlier trials at that epoch.

This module knows nothing of MLflow or Prefect: :func:`tune` takes ``map_trials`` (how a batch
of trials is trained: in turn here, on a task runner in ``pipelines.tune``) and ``on_trial``
(what to do with each finished trial: an MLflow child run in ``forecasting.registry.tuning``).
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import optuna
import pandas as pd
import pytorch_lightning as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forecasting.config.model import ForecasterConfig, config_error, deep_merge, parse_config, read_yaml, validation_problems
from forecasting.errors import ConfigError, ForecastingError
from forecasting.train import fit

OBJECTIVE = "val_mase"
"""The metric minimised: fit's validation MASE (every origin of each series' validation part; series weigh the same)."""
PRUNING_MONITOR = "val_loss"


# --- Search space ------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PruningSettings(_Strict):
    enabled: bool = Field(True, description="Stop trials whose validation loss is worse than the median at the same epoch.")
    startup_trials: int = Field(3, ge=0, description="Trials that always run to the end before any is pruned.")
    warmup_epochs: int = Field(1, ge=0, description="Epochs a trial always trains before it may be pruned.")


class SearchSpace(_Strict):
    """What ``forecast tune`` searches; every key is optional (the defaults below), ``null`` keeps the
    config's own value, a one-element list fixes it. Read from ``--space FILE`` (a mapping, or one
    under a top-level ``tune:`` key); see ``configs/tune/space.yaml``."""

    lookback_seasons: tuple[float, float] | None = Field(
        (1.5, 4.0),
        description="window.lookback as a multiple of baseline.season_length (of window.horizon when the season is 1), "
        "never below the horizon, the season or window.min_length.",
    )
    hidden_size: list[int] | None = Field([16, 32, 64, 128], description="model.hidden_size choices.")
    num_layers: list[int] | None = Field([1, 2, 3], description="model.num_layers choices.")
    dropout: tuple[float, float] | None = Field((0.0, 0.3), description="model.dropout range.")
    learning_rate: tuple[float, float] | None = Field((3e-4, 1e-2), description="training.learning_rate range (log scale).")
    target_transform: list[Literal["none", "log"]] | None = Field(
        ["none", "log"],
        description="data.target_transform choices; 'log' is tried only when every target is positive, and only when "
        "the config's own transform is none or log.",
    )
    anchor: list[Literal["auto", "last", "delta", "none"]] | None = Field(
        ["last", "delta", "none"], description="model.anchor choices ('last'/'delta' are dropped for differencing transforms)."
    )
    seed: int = Field(0, description="Seed of the TPE sampler: the same seed suggests the same trials, in turn.")
    pruning: PruningSettings = PruningSettings()

    @model_validator(mode="after")
    def _ranges(self) -> SearchSpace:
        problems = []
        for name in ("lookback_seasons", "dropout", "learning_rate"):
            value = getattr(self, name)
            if value is not None and not value[0] <= value[1]:
                problems.append(f"{name}: low {value[0]} is above high {value[1]}")
        if self.lookback_seasons is not None and self.lookback_seasons[0] <= 0:
            problems.append(f"lookback_seasons: {self.lookback_seasons[0]} must be positive")
        if self.learning_rate is not None and self.learning_rate[0] <= 0:
            problems.append(f"learning_rate: {self.learning_rate[0]} must be positive (searched on a log scale)")
        if self.dropout is not None and not (0.0 <= self.dropout[0] and self.dropout[1] < 1.0):
            problems.append(f"dropout: {list(self.dropout)} must lie in [0, 1)")
        for name in ("hidden_size", "num_layers", "target_transform", "anchor"):
            value = getattr(self, name)
            if value is not None and not value:
                problems.append(f"{name}: an empty list; use null to keep the config's value")
            if name in ("hidden_size", "num_layers") and value and min(value) < 1:
                problems.append(f"{name}: {value} must all be >= 1")
        if problems:
            raise ValueError("\n".join(problems))
        return self


def load_space(path: str | Path | None) -> SearchSpace:
    """The search space of ``path`` (defaults when None); one ConfigError listing every problem."""
    if path is None:
        return SearchSpace()
    raw = read_yaml(path, what="search space")
    if set(raw) == {"tune"}:
        raw = raw["tune"] or {}
    try:
        return SearchSpace.model_validate(raw)
    except ValidationError as exc:
        raise config_error(f"search space {path}", validation_problems(exc)) from None


def check_tunable(config: ForecasterConfig) -> None:
    """The objective is the validation MASE: a config without a validation part cannot be tuned."""
    if config.split.val_fraction <= 0:
        raise ConfigError(
            f"config '{config.name}': split.val_fraction is {config.split.val_fraction}; tuning scores each trial on "
            "the validation part, so it must be above 0"
        )


def all_positive(frame: pd.DataFrame) -> bool:
    """Whether a log transform is possible: every observed target is above zero."""
    target = frame["target"].dropna()
    return bool(len(target)) and bool((target > 0).all())


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    section, key = dotted.split(".")
    raw.setdefault(section, {})
    raw[section][key] = value


def suggest_overrides(
    trial: optuna.Trial | optuna.trial.FixedTrial, base: ForecasterConfig, space: SearchSpace, *, positive: bool
) -> dict[str, Any]:
    """One trial's overrides of the config, as a YAML would write them (``{"model": {"hidden_size": 32}, ...}``)."""
    out: dict[str, Any] = {}
    w, season = base.window, base.baseline.season_length

    if space.lookback_seasons is not None:
        unit = season if season > 1 else w.horizon
        least = max(w.horizon, season, w.min_length or 1)
        lo = max(least, math.ceil(space.lookback_seasons[0] * unit))
        hi = max(lo, math.floor(space.lookback_seasons[1] * unit))
        step = max(1, unit // 4)
        hi = lo + (hi - lo) // step * step
        _set(out, "window.lookback", trial.suggest_int("lookback", lo, hi, step=step) if hi > lo else lo)

    def categorical(name: str, dotted: str, choices: Sequence[Any] | None) -> None:
        if not choices:
            return
        choices = list(dict.fromkeys(choices))
        _set(out, dotted, trial.suggest_categorical(name, choices) if len(choices) > 1 else choices[0])

    categorical("hidden_size", "model.hidden_size", space.hidden_size)
    categorical("num_layers", "model.num_layers", space.num_layers)
    if space.dropout is not None:
        lo, hi = space.dropout
        _set(out, "model.dropout", trial.suggest_float("dropout", lo, hi) if hi > lo else lo)
    if space.learning_rate is not None:
        lo, hi = space.learning_rate
        _set(out, "training.learning_rate", trial.suggest_float("learning_rate", lo, hi, log=True) if hi > lo else lo)

    transform = base.data.target_transform
    if space.target_transform is not None and transform in ("none", "log"):
        choices = [t for t in space.target_transform if t == "none" or positive]
        categorical("target_transform", "data.target_transform", choices)
        transform = out.get("data", {}).get("target_transform", transform)
    if space.anchor is not None:
        differencing = transform in ("difference", "log-return")
        categorical("anchor", "model.anchor", [a for a in space.anchor if not (differencing and a in ("last", "delta"))])
    return out


def trial_config(base_raw: dict[str, Any], overrides: dict[str, Any], *, source: str) -> ForecasterConfig:
    """The config a trial trains: the YAML's mapping with the overrides merged in, validated like a YAML."""
    return parse_config(deep_merge(base_raw, overrides), source=source)


# --- Pruning -------------------------------------------------------------------------------------


class PruneOnValidation(pl.Callback):
    """Reports ``monitor`` after each validation epoch to ``trial``; raises ``optuna.TrialPruned`` when the
    pruner says so. For the ``pytorch_lightning`` namespace this project trains with (optuna-integration's
    callback is for ``lightning.pytorch``, whose callbacks a ``pytorch_lightning`` Trainer rejects)."""

    def __init__(self, trial: optuna.Trial, monitor: str = PRUNING_MONITOR) -> None:
        super().__init__()
        self.trial = trial
        self.monitor = monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        epoch = trainer.current_epoch
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"trial {self.trial.number} pruned at epoch {epoch} ({self.monitor}={float(value):.4g})")


# --- Running trials ------------------------------------------------------------------------------


@dataclass
class TrialJob:
    """One trial to train: what a task of the task runner receives (picklable: the study lives in a file)."""

    trial: optuna.Trial
    config: ForecasterConfig
    frame: pd.DataFrame
    checkpoint_dir: str | None = None
    prune: bool = True


@dataclass
class TrialOutcome:
    """What training one trial gave: ``state`` is 'complete', 'pruned' or 'fail'."""

    state: str
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    epochs: int | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass
class TrialRecord:
    """A finished trial as reported and logged: parameters, overrides, result."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    overrides: dict[str, Any]
    metrics: dict[str, float]
    intermediate: dict[int, float]
    epochs: int | None
    seconds: float
    error: str | None
    started: float | None = None
    """Unix seconds."""


def run_trial(job: TrialJob) -> TrialOutcome:
    """Train one trial; never raises (a failed trial is an outcome, so a batch keeps its other trials)."""
    started = time.perf_counter()
    callbacks = [PruneOnValidation(job.trial)] if job.prune else []
    try:
        result = fit(job.config, job.frame, checkpoint_dir=job.checkpoint_dir, callbacks=callbacks)
    except optuna.TrialPruned as exc:
        return TrialOutcome("pruned", seconds=time.perf_counter() - started, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad trial (a lookback too long for the data) must not end the study
        message = str(exc) if isinstance(exc, ForecastingError) else "".join(traceback.format_exception_only(exc)).strip()
        return TrialOutcome("fail", seconds=time.perf_counter() - started, error=message)
    metrics = {k: float(v) for k, v in result.forecaster.metrics.items()}
    value = metrics.get(OBJECTIVE)
    epochs = result.forecaster.meta.get("epochs")
    seconds = time.perf_counter() - started
    if value is None or not math.isfinite(value):
        return TrialOutcome("fail", metrics=metrics, epochs=epochs, seconds=seconds,
                            error=f"no finite {OBJECTIVE}: the validation part holds no window (split.val_fraction too small?)")
    return TrialOutcome("complete", value=value, metrics=metrics, epochs=epochs, seconds=seconds)


def run_in_turn(jobs: list[TrialJob]) -> list[TrialOutcome]:
    """The default ``map_trials``: one trial after another, in this process."""
    return [run_trial(job) for job in jobs]


def create_study(name: str, space: SearchSpace, storage: Any = None) -> optuna.Study:
    """A minimising study: seeded TPE (constant liar, so parallel trials spread out) and a MedianPruner."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    p = space.pruning
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs)
        if p.enabled else optuna.pruners.NopPruner()
    )
    sampler = optuna.samplers.TPESampler(seed=space.seed, constant_liar=True)
    return optuna.create_study(study_name=name, storage=storage, direction="minimize", sampler=sampler, pruner=pruner)


def journal_storage(path: str | Path) -> Any:
    """A study store in one file that several processes (Dask workers) can share."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


@dataclass
class TuneResult:
    study: optuna.Study
    records: list[TrialRecord]
    best: TrialRecord | None
    notes: list[str]


def tune(
    study: optuna.Study,
    base_raw: dict[str, Any],
    frame: pd.DataFrame,
    *,
    trials: int,
    timeout: float | None = None,
    space: SearchSpace | None = None,
    parallel: int = 1,
    prepare: Callable[[ForecasterConfig], ForecasterConfig] | None = None,
    map_trials: Callable[[list[TrialJob]], list[TrialOutcome]] = run_in_turn,
    on_trial: Callable[[TrialRecord], None] | None = None,
    checkpoint_dir: str | None = None,
    source: str = "<config>",
) -> TuneResult:
    """Run up to ``trials`` trials (no new batch once ``timeout`` seconds have passed), ``parallel`` at a time.

    ``base_raw`` is the config's YAML mapping (overrides form). ``prepare`` adjusts each trial's
    validated config before training (this machine's hardware, torch threads per parallel trial).
    ``map_trials`` trains a batch and returns outcomes in order; ``on_trial`` sees every finished trial.
    A study in which every trial failed is an error naming the first failure.
    """
    space = space or SearchSpace()
    base = parse_config(base_raw, source=source)
    check_tunable(base)
    positive = all_positive(frame)
    notes = []
    if space.target_transform and "log" in space.target_transform and not positive:
        notes.append("data.target_transform 'log' not tried: not every target is positive")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    records: list[TrialRecord] = []
    started = time.monotonic()
    parallel = max(1, parallel)
    while len(records) < trials and (timeout is None or time.monotonic() - started < timeout):
        batch = []
        for _ in range(min(parallel, trials - len(records))):
            trial = study.ask()
            overrides = suggest_overrides(trial, base, space, positive=positive)
            trial.set_user_attr("overrides", overrides)
            try:
                config = trial_config(base_raw, overrides, source=f"{source} (trial {trial.number})")
                config = prepare(config) if prepare else config
            except ForecastingError as exc:
                records.append(_finish(study, trial, TrialOutcome("fail", error=str(exc)), overrides, on_trial))
                continue
            batch.append(TrialJob(trial, config, frame, checkpoint_dir, prune=space.pruning.enabled))
        outcomes = map_trials(batch) if batch else []
        for job, outcome in zip(batch, outcomes, strict=True):
            records.append(_finish(study, job.trial, outcome, job.trial.user_attrs["overrides"], on_trial))
    records.sort(key=lambda r: r.number)
    complete = [r for r in records if r.state == "complete"]
    if not complete:
        first = next((r for r in records if r.error), None)
        why = f"; trial {first.number}: {first.error}" if first else ""
        raise ForecastingError(f"no trial of {len(records)} completed{why}")
    best = min(complete, key=lambda r: r.value)
    return TuneResult(study, records, best, notes)


def _finish(
    study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome, overrides: dict[str, Any],
    on_trial: Callable[[TrialRecord], None] | None,
) -> TrialRecord:
    for key, value in (("metrics", outcome.metrics), ("epochs", outcome.epochs), ("seconds", round(outcome.seconds, 3)),
                       ("error", outcome.error)):
        trial.set_user_attr(key, value)
    state = {"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED,
             "fail": optuna.trial.TrialState.FAIL}[outcome.state]
    frozen = study.tell(trial, outcome.value if outcome.state == "complete" else None, state=state)
    start = frozen.datetime_start.timestamp() if frozen.datetime_start else None
    record = TrialRecord(
        number=frozen.number, state=outcome.state, value=outcome.value, params=dict(frozen.params), overrides=overrides,
        metrics=outcome.metrics, intermediate=dict(frozen.intermediate_values), epochs=outcome.epochs,
        seconds=outcome.seconds, error=outcome.error, started=start,
    )
    if on_trial is not None:
        on_trial(record)
    return record


# --- Results -------------------------------------------------------------------------------------


def best_yaml(base_raw: dict[str, Any], best: TrialRecord, *, study_name: str, source: str = "<config>") -> str:
    """The best trial's config in overrides form (the YAML's keys plus the tuned ones), validated first."""
    merged = deep_merge(base_raw, best.overrides)
    parse_config(merged, source=f"{source} (best trial {best.number})")
    header = (
        f"# Tuned by `forecast tune` (study {study_name}): trial {best.number} of the search,\n"
        f"# {OBJECTIVE} {best.value:.6g}. Train it with `forecast train --config THIS_FILE`.\n"
    )
    return header + yaml.safe_dump(merged, sort_keys=False)


def trials_frame(records: Sequence[TrialRecord]) -> pd.DataFrame:
    """One row per trial: number, state, objective, parameters, epochs, seconds, error."""
    rows = []
    for r in records:
        rows.append({"trial": r.number, "state": r.state, OBJECTIVE: r.value, **r.params, "epochs": r.epochs,
                     "seconds": round(r.seconds, 2), "error": r.error or ""})
    return pd.DataFrame(rows)


def save_plots(study: optuna.Study, directory: str | Path) -> list[Path]:
    """Optuna's matplotlib plots as PNGs: optimisation history, learning curves (pruning), parameter importances.

    A plot the study cannot support yet (importances of fewer than two completed trials) is skipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    plots = {
        "optimization_history": partial(ovm.plot_optimization_history, target_name=OBJECTIVE),
        "intermediate_values": ovm.plot_intermediate_values,  # the pruning curves: validation loss by epoch
        "param_importances": partial(ovm.plot_param_importances, target_name=OBJECTIVE),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, plot in plots.items():
            try:
                ax = plot(study)
            except Exception:  # noqa: BLE001 - a plot is a nicety; the study's result stands without it
                plt.close("all")
                continue
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            path = directory / f"{name}.png"
            fig.savefig(path, dpi=80)
            plt.close(fig)
            out.append(path)
    return out
