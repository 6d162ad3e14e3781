"""Rolling-origin backtests: one batched pass without refit, one training per fold with it.

An origin is the last observed point of a forecast; its targets are the next
``horizon`` points. Origins are anchored at each series' end and step back by
``stride`` (``forecasting.backtest_config``). Every forecast, baseline and
actual is gathered by vectorised indexing, so the cost without refit is one
``predict_starts`` call over all origins of all series plus O(points) work.

No look-ahead:

- A registered model is evaluated as it is. Origins whose targets fall in
  the data it learned from (its training *and* validation parts: validation
  chose its epoch) are in-sample; by default they are skipped. The split is
  rebuilt from the model's recorded data range, and when the data hash no
  longer matches, everything up to the recorded end counts as in-sample.
- With ``--train`` each fold's model is fitted by ``fit`` on the rows up to
  the fold's cut-off (its first origin) only, so its scaler and weights never
  see a later point; later origins of the fold read newer data only through
  their lookback window, as a live forecast would.
- The MASE denominator of an origin is the seasonal-naive MAE of its series'
  history up to that origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.config.backtest import BacktestConfig
from forecasting.evaluation.origins import holdout_start, min_train_points, no_origins_message, plan_origins, short_series_note
from forecasting.evaluation.baselines import BASELINES, backfill, baseline_forecast
from forecasting.evaluation.statistical import forecast_at_origins
from forecasting.config.model import ForecasterConfig
from forecasting.data.calendar import offset_for
from forecasting.errors import ForecastingError
from forecasting.progress import track
from forecasting.inference import predict_starts
from forecasting.model.forecaster import TrainedForecaster
from forecasting.evaluation.metrics import seasonal_naive_scale
from forecasting.train import fit
from forecasting.prep.prepare import config_spec, select_training_frame
from forecasting.prep import transforms
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import SeriesPanel, WindowSpec, left_pad

@dataclass(frozen=True)
class FoldJob:
    """One fold's training, planned: everything ``fit_fold`` needs, nothing it must look up (it may run elsewhere)."""

    index: int
    cutoff: pd.Timestamp
    config: ForecasterConfig
    """The fold's config: its eligible series, no test part."""
    frame: pd.DataFrame
    """The rows up to the cut-off the fold learns from."""
    checkpoint_dir: str | None = None


def fit_fold(job: FoldJob) -> tuple[TrainedForecaster, float]:
    """Train one fold's model; returns it and the seconds it took. Pure: safe on another process or machine."""
    t0 = time.perf_counter()
    trained = fit(job.config, job.frame, checkpoint_dir=job.checkpoint_dir).forecaster
    return trained, time.perf_counter() - t0


FoldMapper = Callable[[list[FoldJob]], list[tuple[TrainedForecaster, float]]]
"""Runs ``fit_fold`` over the jobs and returns the results in job order: a loop by default,
a Prefect task per fold (on a Dask cluster, say) in the backtest flow."""


def fit_folds_in_turn(jobs: list[FoldJob]) -> list[tuple[TrainedForecaster, float]]:
    return [fit_fold(job) for job in track(jobs, "backtest refits", len(jobs), "folds")]


MODEL = "model"
FORECASTERS: tuple[str, ...] = (MODEL, *BASELINES)
"""Report order: the model, then every naive-family baseline (naive, seasonal_naive, drift, mean); the
statistical ones the config lists (``baseline.statistical``: ets, theta, arima) follow."""


@dataclass(frozen=True)
class Fold:
    """One model and the origins it forecast."""

    index: int
    cutoff: pd.Timestamp | None
    """Last time the fold's model could learn from (UTC); None when a registered model does not record it."""
    windows: int
    trained: TrainedForecaster
    train_rows: int | None = None
    """Rows the fold trained on; None for a registered model evaluated as it is."""
    train_seconds: float | None = None


@dataclass
class BacktestResult:
    """Every scored window of a backtest; ``forecasting.report`` turns it into tables and files."""

    model_name: str
    model_version: str | None
    """Registered version evaluated; None when models were trained per fold."""
    settings: BacktestConfig
    horizon: int
    lookback: int
    season: int
    freq: str
    series_ids: tuple[str, ...]
    """Series of the panel; ``series`` indexes into it."""
    series: np.ndarray  # (N,) int64
    origin: np.ndarray  # (N,) datetime64[ns], UTC
    target_time: np.ndarray  # (N, H) datetime64[ns], UTC: the actual time of each target row
    actual: np.ndarray  # (N, H)
    forecasts: dict[str, np.ndarray]  # forecaster -> (N, H) point forecasts: FORECASTERS, then statistical ones
    quantiles: dict[float, np.ndarray]  # model quantile level -> (N, H)
    scale: np.ndarray  # (N,) MASE denominators
    in_sample: np.ndarray  # (N,) bool
    fold: np.ndarray  # (N,) int64 index into ``folds``
    folds: list[Fold]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_windows(self) -> int:
        return int(self.series.shape[0])

    @property
    def n_origins(self) -> int:
        """Distinct origin times over all series."""
        return int(np.unique(self.origin).shape[0])

    @property
    def label(self) -> str:
        return f"{self.model_name} v{self.model_version}" if self.model_version else f"{self.model_name} (trained per fold)"


def backtest(
    frame: pd.DataFrame,
    settings: BacktestConfig,
    *,
    trained: TrainedForecaster | None = None,
    config: ForecasterConfig | None = None,
    model_version: str | None = None,
    checkpoint_dir: str | None = None,
    log: Callable[[str], None] | None = None,
    map_folds: FoldMapper | None = None,
    dataset: str | None = None,
) -> BacktestResult:
    """Backtest a trained model as it is (``trained``) or train one per fold from ``config``.

    ``frame`` is a canonical observation frame holding the model's dataset;
    the configured series and covariates are selected from it. ``map_folds``
    trains the planned folds (default one after another); folds are
    independent, so any mapper that keeps their order gives the same result.
    ``dataset`` names the dataset ``frame`` holds when a trained model is judged on another one than
    it was trained on: every series of it is scored (those it never saw scaled on their history before
    their first origin).
    """
    if (trained is None) == (config is None):
        raise ForecastingError("backtest needs exactly one of a trained model or a config to train per fold")
    if trained is not None:
        if settings.refit != "never":
            raise ForecastingError(
                f"refit {settings.refit!r} trains a new model per fold: use --train; "
                "a registered model is evaluated as it is (refit 'never')"
            )
        return _evaluate_trained(trained, frame, settings, model_version, dataset)
    assert config is not None
    return _refit(config, frame, settings, checkpoint_dir, log or (lambda _: None), map_folds or fit_folds_in_turn)


def _evaluate_trained(
    trained: TrainedForecaster, frame: pd.DataFrame, settings: BacktestConfig, version: str | None, dataset: str | None = None
) -> BacktestResult:
    started = time.perf_counter()
    config, spec = trained.config, trained.spec
    notes: list[str] = []
    other = dataset is not None and dataset != config.data.dataset
    if other:
        # Judged on another dataset: all its series, whatever subset the model was trained on.
        notes.append(f"model trained on dataset '{config.data.dataset}' judged on dataset '{dataset}'")
        config = config.model_copy(update={"data": config.data.model_copy(update={"dataset": dataset, "series": None})})
    frame = select_training_frame(config, frame)
    panel = SeriesPanel.from_frame(frame, covariates=_data_columns(frame))
    horizon = _horizon(settings, spec, config.name)

    known = set(trained.scaler.series_ids)
    unknown = [s for s in panel.series_ids if s not in known]
    if unknown and trained.members:
        # An ensemble's members scale unknown series on all their data, which would read the future.
        notes.append(f"skipped {len(unknown)} series the ensemble was not trained on: {unknown[:10]}")
        panel = panel.select([s for s in panel.series_ids if s in known])
        unknown = []
    if panel.n_series == 0:
        raise ForecastingError(f"model '{config.name}' knows none of the series in dataset '{config.data.dataset}'")

    skip = settings.in_sample == "skip"
    holdout, cutoff, note = holdout_start(trained, frame, panel, required=skip)
    notes.append(note)
    is_unknown = np.isin(np.asarray(panel.series_ids, dtype=object), unknown)
    holdout = np.where(is_unknown, 0, holdout)  # the model never learned from a series it does not know
    pad = np.zeros(panel.n_series, np.int64)
    observed = max(config.min_length - 1, config.baseline.season_length)
    if config.padded:
        # As in training and prediction: a series shorter than one window is left-padded, and an origin needs
        # min_length observed points before it (and more than a season, for the MASE scale). The padding of
        # a short series lets its earliest such origin read a full lookback, so none of its origins is lost.
        short = panel.lengths < spec.lookback + horizon
        extra = max(spec.lookback - 1 - observed, 0)
        panel, pad = left_pad(panel, np.where(short, panel.lengths + extra, panel.lengths), offset_for(config.data.freq))
        holdout = holdout + pad
        if pad.any():
            notes.append(f"{int((pad > 0).sum())} series shorter than lookback + horizon were left-padded, as in training")
    first = np.maximum(spec.lookback - 1, pad + observed).astype(np.int64)
    lo = np.maximum(first, holdout - 1) if skip else first
    series, pos = plan_origins(panel, settings, horizon, lo)
    planned = np.bincount(series, minlength=panel.n_series)
    if not planned.all() and planned.any():
        # Never dropped silently: the series without an origin are listed, with their count, in one line.
        empty = np.flatnonzero(planned == 0)
        notes.append(short_series_note(panel, empty, panel.lengths - pad, horizon, spec.lookback, config.min_length, padded=config.padded))
        kept = np.flatnonzero(planned > 0)
        panel, pad, holdout, lo = panel.select([panel.series_ids[i] for i in kept]), pad[kept], holdout[kept], lo[kept]
        is_unknown = is_unknown[kept]
        series, pos = plan_origins(panel, settings, horizon, lo)
    if series.size == 0:
        raise ForecastingError(no_origins_message(panel, settings, horizon, config.name, in_sample=skip))
    in_sample = pos + 1 < holdout[series]
    if skip:
        notes.append("origins whose targets lie in the model's training or validation data were skipped (in_sample: skip)")
    elif in_sample.any():
        notes.append(
            f"{int(in_sample.sum())} of {series.size} windows are in-sample (targets the model learned from): "
            "their scores are optimistic"
        )
    scaler = trained.scaler
    if is_unknown.any():
        scaler = _scaler_for_new_series(trained, panel, series, pos, is_unknown)
        notes.append(
            f"{int(is_unknown.sum())} series the model was not trained on are scaled on their history up to "
            "their first origin (no later point)"
        )

    starts = panel.offsets[series] + pos - spec.lookback + 1  # (N,)
    t0 = time.perf_counter()
    out = predict_starts(trained, panel, starts, scaler=scaler)  # one batched pass over every origin
    predict_seconds = time.perf_counter() - t0
    fold = Fold(0, cutoff, int(series.size), trained)
    result = _assemble(
        panel, series, pos, out, horizon, config, settings, version, [fold], np.zeros(series.size, np.int64), in_sample, notes
    )
    result.timings = {"predict": predict_seconds, "total": time.perf_counter() - started}
    return result


def _scaler_for_new_series(
    trained: TrainedForecaster, panel: SeriesPanel, series: np.ndarray, pos: np.ndarray, unknown: np.ndarray
) -> SeriesScaler:
    """The trained scaler plus one for each unknown series, fitted on its (transformed) points up to its first origin.

    Prediction scales a new series on all of its history; in a backtest that history runs past the
    origins, so only the points before the earliest scored origin may be read.
    """
    ids = [panel.series_ids[i] for i in np.flatnonzero(unknown)]
    sub = panel.select(ids)
    first_origin = np.full(panel.n_series, np.iinfo(np.int64).max)
    np.minimum.at(first_origin, series, pos)  # (S,) earliest origin per series
    transformed = transforms.apply(sub, trained.config.data.target_transform)
    fresh = SeriesScaler.fit(transformed, train_end=first_origin[np.flatnonzero(unknown)] + 1)
    base = trained.scaler
    return SeriesScaler(
        base.series_ids + fresh.series_ids, base.features,
        np.concatenate([base.mean, fresh.mean]), np.concatenate([base.scale, fresh.scale]),
    )


def _refit(
    config: ForecasterConfig,
    frame: pd.DataFrame,
    settings: BacktestConfig,
    checkpoint_dir: str | None,
    log: Callable[[str], None],
    map_folds: FoldMapper,
) -> BacktestResult:
    started = time.perf_counter()
    spec = config_spec(config)
    frame = select_training_frame(config, frame)
    panel = SeriesPanel.from_frame(frame, covariates=_data_columns(frame))
    horizon = _horizon(settings, spec, config.name)
    need = min_train_points(spec, config.split.val_fraction)
    if settings.window == "sliding" and settings.train_size < need:
        raise ForecastingError(
            f"backtest.train_size {settings.train_size} is too small: lookback {spec.lookback} + horizon "
            f"{spec.horizon} + validation ({config.split.val_fraction:g}) need {need} points per series"
        )
    first = max(spec.lookback - 1, config.baseline.season_length, need - 1)
    series, pos = plan_origins(panel, settings, horizon, np.full(panel.n_series, first, np.int64))
    if series.size == 0:
        raise ForecastingError(no_origins_message(panel, settings, horizon, config.name, in_sample=False, need=need))

    times = panel.timestamps[panel.offsets[series] + pos]  # (N,) origin times
    unique = np.unique(times)
    every = settings.refit_every or unique.size
    planned = np.searchsorted(unique, times) // every  # (N,) fold of each window by its origin time
    fold_of = np.full(series.size, -1, dtype=np.int64)  # index into ``folds`` once a model forecast it
    keep = np.ones(series.size, dtype=bool)
    folds: list[Fold] = []
    outputs: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    jobs: list[FoldJob] = []
    targets: list[tuple[np.ndarray, SeriesPanel, np.ndarray, int]] = []  # per job: windows, panel, starts, rows
    notes = [f"one model per fold, each fitted on data up to its cut-off only ({settings.window} window)"]
    n_folds = int(planned.max()) + 1
    rows = panel.row_series
    local = np.arange(rows.size) - panel.offsets[rows]  # (n_points,) position within its series
    for k in range(n_folds):
        cutoff = unique[k * every]
        seen = np.bincount(rows, weights=panel.timestamps <= cutoff, minlength=panel.n_series).astype(np.int64)
        eligible = seen >= need
        in_fold = planned == k
        dropped = in_fold & ~eligible[series]
        if dropped.any():
            short = [panel.series_ids[i] for i in np.unique(series[dropped])]
            notes.append(f"fold {k}: skipped series with fewer than {need} points by the cut-off: {short[:10]}")
            keep &= ~dropped
        if not (in_fold & keep).any():
            continue
        mask = (local < seen[rows]) & eligible[rows]
        if settings.window == "sliding":
            mask &= local >= seen[rows] - settings.train_size
        ids = [s for s, ok in zip(panel.series_ids, eligible, strict=True) if ok]
        fold_config = config.model_copy(
            update={
                "split": config.split.model_copy(update={"test_fraction": 0.0}),
                "data": config.data.model_copy(update={"series": ids}),
                # the backtest fits the statistical baselines at its own origins; a fold's validation needs none
                "baseline": config.baseline.model_copy(update={"statistical": []}),
            }
        )
        log(f"fold {k + 1}/{n_folds}: training on {int(mask.sum())} rows up to {pd.Timestamp(cutoff, tz='UTC')}")
        jobs.append(FoldJob(k, pd.Timestamp(cutoff, tz="UTC"), fold_config, frame[mask].reset_index(drop=True), checkpoint_dir))
        picked = np.flatnonzero(in_fold & keep)
        sub = panel if eligible.all() else panel.select(ids)
        sub_series = np.cumsum(eligible) - 1  # panel series index -> index in ``sub``
        starts = sub.offsets[sub_series[series[picked]]] + pos[picked] - spec.lookback + 1
        targets.append((picked, sub, starts, int(mask.sum())))

    fitted = map_folds(jobs) if jobs else []
    if len(fitted) != len(jobs):
        raise AssertionError(f"map_folds returned {len(fitted)} models for {len(jobs)} folds")
    for job, (trained, seconds), (picked, sub, starts, rows_used) in zip(jobs, fitted, targets, strict=True):
        outputs.append((picked, predict_starts(trained, sub, starts, scaler=trained.scaler)))
        folds.append(Fold(len(folds), job.cutoff, int(picked.size), trained, rows_used, seconds))
        fold_of[picked] = len(folds) - 1

    if not folds:
        raise ForecastingError(f"no fold of the backtest of '{config.name}' has a series with {need} points by its cut-off")
    order = np.concatenate([p for p, _ in outputs])
    out = {key: np.concatenate([o[key] for _, o in outputs]) for key in outputs[0][1]}
    back = np.full(series.size, -1, dtype=np.int64)  # window -> row of the concatenated fold outputs
    back[order] = np.arange(order.size)
    kept = np.flatnonzero(keep)  # windows in plan order; every kept window is in exactly one fold
    out = {key: value[back[kept]] for key, value in out.items()}
    series, pos, fold_of = series[kept], pos[kept], fold_of[kept]
    result = _assemble(
        panel, series, pos, out, horizon, config, settings, None, folds, fold_of, np.zeros(series.size, bool), notes
    )
    result.timings = {"train": sum(f.train_seconds or 0.0 for f in folds), "total": time.perf_counter() - started}
    return result


def _assemble(
    panel: SeriesPanel,
    series: np.ndarray,
    pos: np.ndarray,
    out: dict[str, np.ndarray],
    horizon: int,
    config: ForecasterConfig,
    settings: BacktestConfig,
    version: str | None,
    folds: list[Fold],
    fold: np.ndarray,
    in_sample: np.ndarray,
    notes: list[str],
) -> BacktestResult:
    """Actuals, baselines and MASE scales for the planned windows, gathered in a few array operations.

    Left padding (NaN) stays out of the baselines (padded lookback steps take the first observed value),
    of the statistical fits and of the MASE scale, which skips NaN terms."""
    lookback, season = config.window.lookback, config.baseline.season_length
    origin_row = panel.offsets[series] + pos  # (N,) global row of each origin
    target_rows = origin_row[:, None] + 1 + np.arange(horizon)  # (N, H)
    history = backfill(panel.values[origin_row[:, None] - lookback + 1 + np.arange(lookback), 0])  # (N, lookback)
    forecasts = {MODEL: out["mean"][:, :horizon]}
    for name in BASELINES:
        forecasts[name] = baseline_forecast(name, history, horizon, season=season)  # (N, H)
    statistical = config.baseline.statistical
    if statistical:
        # Refitted per origin on the series' history up to it: what a statistical forecaster would have said then.
        fitted, keep = forecast_at_origins(
            panel.values[:, 0], panel.offsets[series], origin_row, horizon, season=season, lookback=lookback,
            models=statistical, max_history=config.baseline.statistical_history,
        )
        forecasts |= fitted.forecasts
        for name, failed in fitted.fallbacks.items():
            if failed:
                notes.append(f"{name}: the fit failed on {failed} of {series.size} windows; seasonal naive stood in there")
        notes.append(
            "statistical baselines (" + ", ".join(statistical) + f") refitted per origin on the last {keep} points: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in fitted.seconds.items())
        )
    quantiles = {float(k[1:]): v[:, :horizon] for k, v in out.items() if k.startswith("q") and _is_number(k[1:])}
    scale = seasonal_naive_scale(panel.values[:, 0], panel.offsets[series], origin_row + 1, season=season)
    return BacktestResult(
        model_name=config.name,
        model_version=version,
        settings=settings,
        horizon=horizon,
        lookback=lookback,
        season=season,
        freq=config.data.freq,
        series_ids=panel.series_ids,
        series=series,
        origin=panel.timestamps[origin_row],
        target_time=panel.timestamps[target_rows],
        actual=panel.values[target_rows, 0],
        forecasts=forecasts,
        quantiles=dict(sorted(quantiles.items())),
        scale=scale,
        in_sample=in_sample,
        fold=fold,
        folds=folds,
        notes=notes,
    )


def _horizon(settings: BacktestConfig, spec: WindowSpec, name: str) -> int:
    horizon = settings.horizon or spec.horizon
    if horizon > spec.horizon:
        raise ForecastingError(f"backtest.horizon {horizon} exceeds the horizon {spec.horizon} model '{name}' forecasts")
    return horizon


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _data_columns(frame: pd.DataFrame) -> list[str]:
    """The columns the model reads besides the target, as ``select_training_frame`` selected and ordered them."""
    return [c for c in frame.columns if c not in ("series_id", "timestamp", "target")]
