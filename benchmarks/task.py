"""The standard benchmark task: the same data, windows, hold-out and budget for every contestant.

Issue "Benchmarks against the peers" fixes it: 64 synthetic hourly series x
2,000 points (daily + weekly seasonality, trend, noise, fixed seed), LSTM
hidden 64 x 2 layers, lookback 168, horizon 24 (direct head), batch 256, Adam
lr 1e-3, stride 1, one epoch, float32, 2 threads; and the bundled real
hourly weather series for accuracy.

Every series has the same length here, so a task is one ``(n_series,
n_points)`` array. The hold-out is the last 10% of each series (at least one
horizon), the rule ``forecasting.windows.chronological_split`` uses for its
test part: contestants train on the points before it, and are scored on
every origin whose targets lie inside it (stride 1), in original units.

Time to accuracy (the ``converge`` measure) trains with early stopping
instead of the fixed budget: a task with ``patience`` set keeps the last
``val_fraction`` of each series' training part (at least one horizon) as the
validation part every contestant stops on, and trains on the points before
it for at most ``max_epochs`` epochs. The hold-out is the same either way.

M1 (``dataset: m1``, converge only) is ragged: 617 monthly series of 48 to
150 points (train + the official 18-point test part). They are re-dated to
end on the same month and stored right-aligned, left-padded with NaN, so the
hold-out (exactly the official 18 points, ``holdout_points``), the
validation part (exactly one horizon, ``validation_points``) and the single
origin (each series' last training point) sit at the same columns for every
series. ``lengths`` counts each series' observed points; every property
ignores the padding. Windows are counted as the project counts them with
``window.min_length`` (``Task.min_length``): a series whose fit part is
shorter than one window but holds ``min_length + horizon`` observed points
gives one left-padded window, a shorter one none (see ``train_windows_by_series``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

DATASETS: tuple[str, ...] = ("synthetic", "weather", "m1")
M1_SERIES = 617
M1_END = pd.Timestamp("2012-06-01", tz="UTC")
"""The month every re-dated M1 series ends on: the files' own grid (2000-01 on) for the longest, 150-point series."""


@dataclass(frozen=True)
class Task:
    """Sizes and hyper-parameters shared by every contestant; JSON-able, so workers receive it as is."""

    dataset: str = "synthetic"
    n_series: int = 64
    n_points: int = 2000
    """Points per synthetic series; the weather series keeps its own length unless ``weather_points`` cuts it."""
    weather_points: int | None = None
    """Keep only the most recent points of the weather series (quick mode)."""
    lookback: int = 168
    horizon: int = 24
    hidden: int = 64
    layers: int = 2
    batch_size: int = 256
    learning_rate: float = 1e-3
    epochs: int = 1
    """The fixed budget (``patience`` None): every contestant trains exactly this many epochs."""
    holdout_fraction: float = 0.1
    val_fraction: float = 0.1
    """With ``patience``: share of each series' training part (its end) validated on, at least one horizon."""
    patience: int | None = None
    """Early stopping: epochs without a better validation loss before stopping; None is the fixed ``epochs`` budget."""
    max_epochs: int = 20
    """With ``patience``: the most epochs a contestant may train."""
    season: int = 24
    holdout_points: int | None = None
    """Points per series held out, exactly (M1's official test part); None is the ``holdout_fraction`` rule."""
    validation_points: int | None = None
    """With ``patience``: points per series validated on, exactly; None is the ``val_fraction`` rule."""
    min_length: int | None = None
    """Fewest observed lookback points a window may have (the project's ``window.min_length``): series shorter
    than a window are left-padded. None: every window is fully observed (equal-length data)."""
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        """The fields as JSON-able values: how a job hands the task to its worker process."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Task:
        """Inverse of ``to_dict``; an unknown key is an error, so a stale results file fails loudly."""
        return cls(**raw)

    def with_(self, **changes: object) -> Task:
        """A copy with ``changes`` (e.g. the same task on the weather data)."""
        return replace(self, **changes)

    @property
    def early_stopping(self) -> bool:
        """Whether contestants train to a validation part (``patience`` set) rather than for ``epochs``."""
        return self.patience is not None

    @property
    def epoch_cap(self) -> int:
        """Epochs a contestant may train: ``max_epochs`` with early stopping, else exactly ``epochs``."""
        return self.max_epochs if self.early_stopping else self.epochs

    @property
    def length(self) -> int:
        """Points one window spans: lookback then horizon."""
        return self.lookback + self.horizon


def m1_task(**changes: object) -> Task:
    """The M1 time-to-accuracy task: every series, configs/m1-monthly.yaml's window and network (36 / 18,
    one layer of 16, the size measured best on M1), the official 18-point hold-out, one horizon validated
    on, short series left-padded down to 12 observed points (a season), early stopping after 3 epochs."""
    task = Task(
        dataset="m1", n_series=M1_SERIES, lookback=36, horizon=18, hidden=16, layers=1, batch_size=256,
        learning_rate=1e-3, season=12, holdout_points=18, validation_points=18, min_length=12, patience=3, max_epochs=60,
    )
    return task.with_(**changes)


@dataclass(frozen=True, eq=False)
class TaskData:
    """One task's series as an array, with the hold-out and the windows every contestant uses.

    Ragged data (M1) is right-aligned and left-padded with NaN: column ``j`` is the same date for every
    series, and positions such as ``train_points`` or ``origins`` are columns shared by all of them.
    """

    task: Task
    ids: tuple[str, ...]
    values: np.ndarray  # (n_series, n_points) float64, original units, NaN = left padding
    timestamps: pd.DatetimeIndex  # (n_points,) on the ``freq`` grid, UTC, shared by every series

    @cached_property
    def lengths(self) -> np.ndarray:
        """``(n_series,)`` observed points per series (the NaN left padding excluded)."""
        observed = ~np.isnan(self.values)
        lengths = observed.sum(axis=1)
        if not (observed == (np.arange(self.n_points) >= (self.n_points - lengths)[:, None])).all():
            raise ValueError("task values may hold NaN only as left padding")
        return lengths

    @property
    def first(self) -> np.ndarray:
        """``(n_series,)`` column of each series' first observed point (0 unless left-padded)."""
        return self.n_points - self.lengths

    @property
    def ragged(self) -> bool:
        """Whether some series is left-padded (series of different lengths)."""
        return bool(self.lengths.min() < self.n_points)

    @property
    def freq(self) -> str:
        """The pandas frequency of ``timestamps`` ("h" or "MS"): what contestants pass their libraries."""
        freq = self.timestamps.freqstr or pd.infer_freq(self.timestamps)
        if freq is None:
            raise ValueError("task timestamps are not on a regular grid")
        return freq

    @property
    def n_series(self) -> int:
        return self.values.shape[0]

    @property
    def n_points(self) -> int:
        return self.values.shape[1]

    @property
    def holdout(self) -> int:
        """Points per series held out: ``task.holdout_points`` where set (M1's official test part), else
        ``max(horizon, round(fraction * n))``, as the project's test split."""
        if self.task.holdout_points is not None:
            return self.task.holdout_points
        return max(self.task.horizon, int(np.rint(self.task.holdout_fraction * self.n_points)))

    @property
    def train_points(self) -> int:
        """Column where the hold-out starts: points per series contestants may train on (everything before
        the hold-out), padding included; ``train_lengths`` counts the observed ones."""
        return self.n_points - self.holdout

    @property
    def train_lengths(self) -> np.ndarray:
        """``(n_series,)`` observed points before the hold-out."""
        return self.lengths - self.holdout

    @property
    def validation(self) -> int:
        """Points per series validated on (the end of the training part): 0 without early stopping, else
        ``task.validation_points`` where set, else ``max(horizon, round(val_fraction * train_points))``."""
        if not self.task.early_stopping:
            return 0
        if self.task.validation_points is not None:
            return self.task.validation_points
        return max(self.task.horizon, int(np.rint(self.task.val_fraction * self.train_points)))

    @property
    def fit_points(self) -> int:
        """Points per series whose windows update the weights: the training part less its validation part."""
        return self.train_points - self.validation

    @property
    def min_observed(self) -> int:
        """Fewest observed lookback points of a window: ``task.min_length`` (at most the lookback), else the lookback."""
        m = self.task.min_length
        return self.task.lookback if m is None else min(m, self.task.lookback)

    @property
    def train_windows_by_series(self) -> np.ndarray:
        """``(n_series,)`` training windows at stride 1: windows whose targets end before the validation part
        (before the hold-out when there is none), counted as the project counts them.

        A series whose fit part spans a whole window gives every fully observed window
        (``fit - lookback - horizon + 1``); a shorter one with at least ``min_observed + horizon`` observed
        points is left-padded to exactly one window (the project's ``split_padding``); a shorter one still
        gives none (it is only validated on).
        """
        return self.windows_in(self.fit_points - self.first)  # observed points of each fit part

    def windows_in(self, fit: np.ndarray) -> np.ndarray:
        """``(n_series,)`` training windows of fit parts of ``fit`` observed points each, by the rule of
        ``train_windows_by_series`` (the project contestant applies it to its own split's fit parts)."""
        full = fit - self.task.length + 1
        padded = np.where(fit >= self.min_observed + self.task.horizon, 1, 0)
        return np.where(full >= 1, full, padded).astype(np.int64)

    @property
    def val_windows_by_series(self) -> np.ndarray:
        """``(n_series,)`` validation windows (stride 1, targets inside the validation part, at least
        ``min_observed`` observed lookback points); zeros without early stopping."""
        if not self.validation:
            return np.zeros(self.n_series, np.int64)
        horizon = self.task.horizon
        first_target = np.maximum(self.fit_points, self.first + self.min_observed)  # earliest target column
        return np.maximum(self.train_points - horizon - first_target + 1, 0).astype(np.int64)

    @property
    def val_windows(self) -> int:
        """Validation windows, all series; 0 without early stopping."""
        return int(self.val_windows_by_series.sum())

    @property
    def train_windows_per_series(self) -> int:
        """Training windows per series at stride 1 (equal-length data only: see ``train_windows_by_series``)."""
        if self.ragged:
            raise ValueError(f"{self.task.dataset} series have different lengths: use train_windows_by_series")
        return self.fit_points - self.task.length + 1

    @property
    def train_windows(self) -> int:
        return int(self.train_windows_by_series.sum())

    @property
    def origins(self) -> np.ndarray:
        """``(n_origins,)`` local positions of the last observed point of each hold-out window."""
        return np.arange(self.train_points - 1, self.n_points - self.task.horizon)

    @property
    def holdout_windows(self) -> int:
        return self.n_series * len(self.origins)

    @cached_property
    def actual(self) -> np.ndarray:
        """``(n_series, n_origins, horizon)`` the hold-out targets every forecast is scored against."""
        rows = self.origins[:, None] + 1 + np.arange(self.task.horizon)  # (n_origins, horizon)
        return self.values[:, rows]

    @cached_property
    def mase_scale(self) -> np.ndarray:
        """``(n_series,)`` in-sample seasonal-naive MAE over each series' observed training part (MASE
        denominators; the NaN padding is not history)."""
        from forecasting.evaluation.metrics import seasonal_naive_scale

        flat = self.values.ravel()
        rows = np.arange(self.n_series) * self.n_points
        return seasonal_naive_scale(flat, rows + self.first, rows + self.train_points, season=self.task.season)

    def standardized(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values float32, mean, std)``: each series scaled by its training part, as the project's scaler does.

        Given to the contestants that do not scale themselves (the raw loop,
        Darts), so every network sees inputs on the same scale.
        """
        train = self.values[:, : self.train_points]  # NaN padding stays NaN in the result
        mean = np.nanmean(train, axis=1)
        std = np.nanstd(train, axis=1)
        std = np.where(std > 0, std, 1.0)
        return ((self.values - mean[:, None]) / std[:, None]).astype(np.float32), mean, std

    def frame(self, points: int | None = None) -> pd.DataFrame:
        """The canonical observation frame (series_id, timestamp UTC, target) of the first ``points`` columns;
        the padding rows are dropped (ragged series give a ragged frame)."""
        n = self.n_points if points is None else points
        frame = pd.DataFrame(
            {
                "series_id": np.repeat(np.array(self.ids, dtype=object), n),
                "timestamp": np.tile(self.timestamps[:n], self.n_series),
                "target": self.values[:, :n].ravel(),
            }
        )
        return frame[frame["target"].notna()].reset_index(drop=True) if self.ragged else frame

    def score(self, predicted: np.ndarray) -> dict[str, float]:
        """MAE and MASE (seasonal ``task.season`` scale) of ``(n_series, n_origins, horizon)`` forecasts, original units."""
        from forecasting.evaluation import metrics

        if predicted.shape != self.actual.shape:
            raise ValueError(f"forecasts have shape {predicted.shape}; the hold-out is {self.actual.shape}")
        flat_actual = self.actual.reshape(self.n_series, -1)
        flat_pred = predicted.reshape(self.n_series, -1)
        return {
            "mae": metrics.mae(flat_actual, flat_pred),
            "mase": metrics.mase(flat_actual, flat_pred, scale=self.mase_scale),
        }

    def seasonal_naive(self) -> np.ndarray:
        """``(n_series, n_origins, horizon)`` the seasonal-naive forecast: the last season repeated."""
        season, horizon = self.task.season, self.task.horizon
        steps = self.origins[:, None] - season + 1 + (np.arange(horizon) % season)  # (n_origins, horizon)
        return self.values[:, steps]


def synthetic_values(n_series: int, n_points: int, seed: int = 0) -> np.ndarray:
    """``(n_series, n_points)`` noisy daily + weekly seasonality with a trend and a level per series."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    rows = []
    for _ in range(n_series):
        level, trend = rng.uniform(5, 50), rng.uniform(-0.002, 0.002)
        phase = rng.uniform(0, 2 * np.pi)
        rows.append(
            level
            + trend * t
            + 3 * np.sin(2 * np.pi * t / 24 + phase)
            + 1.5 * np.sin(2 * np.pi * t / 168 + phase / 2)
            + 0.3 * rng.standard_normal(n_points)
        )
    return np.asarray(rows).reshape(n_series, n_points)


def standard_frame(n_series: int, n_points: int, seed: int = 0) -> pd.DataFrame:
    """The synthetic task as a canonical observation frame (what ``benchmarks.backtest_speed`` reads)."""
    return load(Task(n_series=n_series, n_points=n_points, seed=seed)).frame()


def weather_values(points: int | None = None) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The bundled hourly Seattle temperatures (2010) on a complete hourly grid.

    The source misses one hour (2010-03-14, see ``forecasting.data.sources.bundled``);
    it is linearly interpolated here so that every contestant, including the
    peers that need a regular grid, reads the very same 8,760 points.
    """
    from forecasting.data.sources.bundled import load_bundled

    frame = load_bundled("seattle_temps")
    series = frame.set_index("timestamp")["target"]
    grid = pd.date_range(series.index.min(), series.index.max(), freq="h")
    filled = series.reindex(grid).interpolate(limit=3)
    if filled.isna().any():
        raise ValueError(f"weather series has {int(filled.isna().sum())} points missing after filling gaps of 3")
    if points is not None:
        filled = filled.iloc[-points:]
    return filled.to_numpy()[None, :], pd.DatetimeIndex(filled.index)


def m1_values(n_series: int = M1_SERIES) -> tuple[tuple[str, ...], np.ndarray, pd.DatetimeIndex]:
    """The first ``n_series`` M1 monthly series (sorted ids), train + official test, re-dated to end on ``M1_END``.

    The files date every series from 2000-01, so they end on different months; the dates are synthetic
    anyway, and a shared end puts the hold-out, validation part and origin at the same columns for all.
    Returns ids, ``(n, max length)`` values right-aligned and left-padded with NaN, and the monthly grid.
    """
    from benchmarks.accuracy import m1_frame

    frame = m1_frame()  # train + test, sorted by series and time
    ids = tuple(sorted(frame["series_id"].unique()))[:n_series]
    frame = frame[frame["series_id"].isin(ids)]
    groups = [g.to_numpy(dtype=np.float64) for _, g in frame.groupby("series_id", sort=True)["target"]]
    width = max(len(g) for g in groups)
    values = np.full((len(groups), width), np.nan)
    for i, g in enumerate(groups):
        values[i, width - len(g):] = g
    stamps = pd.date_range(end=M1_END, periods=width, freq="MS")
    return ids, values, stamps


def load(task: Task) -> TaskData:
    """The task's series: synthetic (deterministic in ``task.seed``), the bundled weather series, or M1."""
    if task.dataset == "synthetic":
        values = synthetic_values(task.n_series, task.n_points, task.seed)
        stamps = pd.date_range("2024-01-01", periods=task.n_points, freq="h", tz="UTC")
        ids = tuple(f"bench/s{i:04d}" for i in range(task.n_series))
        return TaskData(task, ids, values, stamps)
    if task.dataset == "weather":
        values, stamps = weather_values(task.weather_points)
        return TaskData(task, ("weather/seattle-hourly",), values, stamps)
    if task.dataset == "m1":
        ids, values, stamps = m1_values(task.n_series)
        return TaskData(task, ids, values, stamps)
    raise ValueError(f"dataset must be one of {DATASETS}, got {task.dataset!r}")


def lstm_flops(task: Task, n_inputs: int = 1) -> dict[str, float]:
    """Matrix-multiply FLOPs of the task's LSTM per window: forward, and training (forward + backward).

    Per layer and step an LSTM computes its four gates as ``[x_t, h_{t-1}] @ W``
    with ``W`` of shape ``(inputs + hidden, 4 * hidden)``: ``2 * 4H * (I + H)``
    FLOPs. Over ``lookback`` steps and every layer (layer 1 reads ``n_inputs``
    features, the others ``hidden``), plus the direct head ``2 * H * horizon``.
    The backward pass costs two such products per forward one (gradients of
    inputs and of weights), so training is 3x the forward. Elementwise gate
    work is left out: it is not GEMM work and the ceiling is a GEMM ceiling.
    """
    h = task.hidden
    forward = 0.0
    for layer in range(task.layers):
        inputs = n_inputs if layer == 0 else h
        forward += task.lookback * 2 * 4 * h * (inputs + h)
    forward += 2 * h * task.horizon
    return {"forward": forward, "train": 3 * forward}
