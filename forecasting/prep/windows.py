"""Sliding windows over many series without copying them.

All series live in one contiguous ``(n_points, n_features)`` array, so memory
is O(points). A window is just an int64 start row into that array; the
``(batch, length, features)`` block a model sees is built per batch by one
advanced-indexing gather. Materialising every window up front would cost
O(windows x lookback), which is what this module exists to avoid.

Splits are chronological per series: validation and test are the most recent
points, and a window belongs to a part by where its *targets* fall. A series
too short for both parts drops test, then validation (``plan_split``), and
still trains. A validation window's lookback may reach back into the
training part: that is past data the model is allowed to see, not leakage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from forecasting.errors import ForecastingError, capped_list

Part = Literal["train", "val", "test", "all"]
PARTS: tuple[str, ...] = ("train", "val", "test", "all")


@dataclass(frozen=True)
class WindowSpec:
    """The shape of one training example: ``lookback`` inputs, then ``horizon`` targets."""

    lookback: int
    """Past steps the model reads."""
    horizon: int
    """Future steps the model predicts."""
    stride: int = 1
    """Steps between consecutive window starts (1 = every window)."""

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon", "stride"):
            _check_positive_int(f"WindowSpec.{name}", getattr(self, name))

    @property
    def length(self) -> int:
        """Points one window spans: the minimum length a series needs for one window."""
        return self.lookback + self.horizon


@dataclass(frozen=True, eq=False)
class SeriesPanel:
    """All series packed into one contiguous array: memory O(points)."""

    series_ids: tuple[str, ...]
    features: tuple[str, ...]
    """``("target", *covariates)``; the target is always column 0."""
    values: np.ndarray  # (n_points, n_features) float64, raw units
    offsets: np.ndarray  # (n_series + 1,) int64; series i is values[offsets[i]:offsets[i+1]]
    timestamps: np.ndarray  # (n_points,) datetime64[ns], UTC with the zone dropped

    def __post_init__(self) -> None:
        n_points = self.values.shape[0] if self.values.ndim == 2 else -1
        problems = []
        if self.values.ndim != 2 or self.values.shape[1] != len(self.features):
            problems.append(f"values shape {self.values.shape} does not fit {len(self.features)} features")
        if self.offsets.shape != (len(self.series_ids) + 1,):
            problems.append(f"offsets shape {self.offsets.shape} does not fit {len(self.series_ids)} series")
        elif self.offsets[0] != 0 or self.offsets[-1] != n_points or np.any(np.diff(self.offsets) < 0):
            problems.append(f"offsets must rise from 0 to {n_points}")
        if self.timestamps.shape != (n_points,):
            problems.append(f"timestamps shape {self.timestamps.shape} does not fit {n_points} points")
        if problems:
            raise ValueError("inconsistent SeriesPanel: " + "; ".join(problems))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, covariates: Sequence[str] = ()) -> SeriesPanel:
        """Pack a canonical observation frame (sorted by series_id, timestamp).

        Makes one float64 copy of the used columns; nothing downstream copies again.
        """
        features = ("target", *covariates)
        missing = [c for c in ("series_id", "timestamp", *features) if c not in frame.columns]
        if missing:
            raise ForecastingError(f"frame lacks column(s) {missing}; it has {list(frame.columns)}")
        if len(set(features)) != len(features):
            raise ForecastingError(f"features {list(features)} name a column twice")

        ids = frame["series_id"].to_numpy(dtype=object)  # (n_points,)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.empty(0, np.int64)
        offsets = np.append(starts, len(ids)).astype(np.int64)
        series_ids = tuple(str(s) for s in ids[starts])
        if len(set(series_ids)) != len(series_ids):
            repeated = sorted({s for s in series_ids if series_ids.count(s) > 1})
            raise ForecastingError(
                f"frame is not sorted by series_id: {len(repeated)} series appear in separate blocks: "
                + capped_list([repr(r) for r in repeated], bullet="")
            )

        values = np.empty((len(frame), len(features)), dtype=np.float64)  # (n_points, n_features)
        for j, column in enumerate(features):
            values[:, j] = frame[column].to_numpy(dtype=np.float64)
        stamps = frame["timestamp"]
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        timestamps = stamps.to_numpy(dtype="datetime64[ns]")
        return cls(series_ids, features, values, offsets, timestamps)

    @property
    def n_series(self) -> int:
        return len(self.series_ids)

    @property
    def lengths(self) -> np.ndarray:
        """``(n_series,)`` int64 points per series."""
        return np.diff(self.offsets)

    @property
    def row_series(self) -> np.ndarray:
        """``(n_points,)`` int64 series index of every row (for per-series reductions)."""
        return np.repeat(np.arange(self.n_series, dtype=np.int64), self.lengths)

    def series_values(self, i: int) -> np.ndarray:
        """Series ``i`` as ``(n_i, n_features)``: a view, never a copy."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def with_values(self, values: np.ndarray) -> SeriesPanel:
        """Same series, layout and timestamps with new values (e.g. scaled)."""
        if values.shape != self.values.shape:
            raise ValueError(f"new values have shape {values.shape}; the panel needs {self.values.shape}")
        return dataclasses.replace(self, values=values)

    def select(self, series_ids: Sequence[str]) -> SeriesPanel:
        """A new panel holding only ``series_ids``, in that order (copies those rows)."""
        position = {s: i for i, s in enumerate(self.series_ids)}
        unknown = [s for s in series_ids if s not in position]
        if unknown:
            raise ForecastingError(
                f"panel has no series [{capped_list([repr(u) for u in unknown], bullet='')}] ({len(unknown)} unknown); "
                f"it holds {self.n_series} series"
            )
        picked = np.array([position[s] for s in series_ids], dtype=np.int64)
        lengths = self.lengths[picked]
        rows = np.concatenate(
            [np.arange(self.offsets[i], self.offsets[i + 1]) for i in picked] or [np.empty(0, np.int64)]
        )
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        features = self.values.shape[1]
        return SeriesPanel(
            tuple(series_ids), self.features, self.values[rows].reshape(-1, features), offsets, self.timestamps[rows]
        )


@dataclass(frozen=True, eq=False)
class SplitBounds:
    """Per-series local positions where the validation and test targets start."""

    train_end: np.ndarray  # (n_series,) int64, exclusive end of the training part
    val_end: np.ndarray  # (n_series,) int64, exclusive end of the validation part


USAGES: tuple[str, ...] = ("train+val+test", "train+val", "train+test", "train only")
"""What a series is used for, most complete first (``SplitPlan.usage`` indexes this)."""


@dataclass(frozen=True, eq=False)
class SplitPlan:
    """Per series: the most recent points kept for validation and test, by the one split-size rule.

    A series long enough keeps both parts; a shorter one drops its test part
    first, then its validation part (validation drives early stopping), so it
    still keeps the points of one training window.
    """

    val: np.ndarray  # (n_series,) int64 validation points (0: none)
    test: np.ndarray  # (n_series,) int64 test points (0: none)
    trainable: np.ndarray  # (n_series,) bool, at least one training window's worth of points
    train_points: int
    """Points one training window needs: lookback + horizon, or min_length + horizon with padding."""

    @property
    def usage(self) -> np.ndarray:
        """``(n_series,)`` int64 index into ``USAGES`` (-1: too short to train on)."""
        code = np.where(self.val > 0, np.where(self.test > 0, 0, 1), np.where(self.test > 0, 2, 3))
        return np.where(self.trainable, code, -1).astype(np.int64)


def part_size(n: np.ndarray | int, fraction: float, horizon: int) -> np.ndarray | int:
    """Points a validation or test part of an ``n``-point series gets: ``max(horizon, round(fraction * n))``.

    A fraction of 0 gives 0 (no part). The single home of this rule: the split,
    padding and backtests' in-sample boundary all call it.
    """
    if fraction == 0:
        return np.zeros_like(n) if isinstance(n, np.ndarray) else 0
    # np.rint rounds half to even, exactly like Python's round().
    size = np.maximum(horizon, np.rint(fraction * np.asarray(n)).astype(np.int64))
    return size if isinstance(n, np.ndarray) else int(size)


def train_points(spec: WindowSpec, min_length: int | None = None) -> int:
    """Observed points one training window needs: ``min_length`` (default the lookback) + horizon."""
    return (spec.lookback if min_length is None else min(min_length, spec.lookback)) + spec.horizon


def needed_length(spec: WindowSpec, val_fraction: float, test_fraction: float, min_length: int | None = None) -> int:
    """Smallest n from which every longer series keeps validation, test and one training window.

    Validation and test grow with n, so the need is not simply ``length + parts(n)``
    at the short series' own n; search for it instead.
    """
    least = train_points(spec, min_length)
    upper = int(np.ceil((least + 2 * spec.horizon + 2) / (1.0 - val_fraction - test_fraction))) + 2
    n = np.arange(upper + 1, dtype=np.int64)
    train = n - part_size(n, val_fraction, spec.horizon) - part_size(n, test_fraction, spec.horizon)
    failing = np.flatnonzero(train < least)
    return int(failing[-1]) + 1


def plan_split(
    lengths: np.ndarray, spec: WindowSpec, *, val_fraction: float, test_fraction: float, min_length: int | None = None
) -> SplitPlan:
    """Decide, per series of ``lengths`` observed points, which held-out parts it keeps.

    Each part has ``part_size(n, fraction, horizon)`` points. A series keeps
    validation and test if ``train_points`` remain before them; else validation
    alone if they remain before it; else it trains on all its points (if it
    has ``train_points``). ``min_length`` below the lookback means the caller
    left-pads (``split_padding``) so fewer observed points make a window.
    """
    _check_fractions(val_fraction, test_fraction)
    n = np.asarray(lengths, dtype=np.int64)
    least = train_points(spec, min_length)
    val = part_size(n, val_fraction, spec.horizon)
    test = part_size(n, test_fraction, spec.horizon)
    full = n - val - test >= least
    keep_val = full | (n - val >= least)
    return SplitPlan(
        val=np.where(keep_val, val, 0).astype(np.int64),
        test=np.where(full, test, 0).astype(np.int64),
        trainable=n >= least,
        train_points=least,
    )


def split_padding(
    lengths: np.ndarray, spec: WindowSpec, *, val_fraction: float, test_fraction: float, min_length: int | None = None
) -> np.ndarray:
    """``(n_series,)`` rows to left-pad so each trainable series' training part spans one full window."""
    plan = plan_split(lengths, spec, val_fraction=val_fraction, test_fraction=test_fraction, min_length=min_length)
    train = np.asarray(lengths, dtype=np.int64) - plan.val - plan.test
    return np.where(plan.trainable, np.maximum(spec.length - train, 0), 0).astype(np.int64)


def chronological_split(
    panel: SeriesPanel,
    spec: WindowSpec,
    *,
    val_fraction: float,
    test_fraction: float,
    min_length: int | None = None,
    padding: np.ndarray | None = None,
) -> SplitBounds:
    """Give each series' most recent points to test, the ones before to validation (``plan_split``).

    Each kept part gets ``max(horizon, round(fraction * n))`` points so it holds
    at least one full target span; a fraction of 0 leaves that part empty. A
    series too short for its parts drops test, then validation, and trains on
    what it has. ``padding`` (rows ``left_pad`` prepended per series; see
    ``split_padding``) is not counted as data. Only series too short for even
    one training window are an error: one ``ForecastingError`` naming them.
    """
    _check_fractions(val_fraction, test_fraction)
    pad = np.zeros(panel.n_series, np.int64) if padding is None else np.asarray(padding, dtype=np.int64)
    if pad.shape != (panel.n_series,):
        raise ValueError(f"padding has shape {pad.shape}; the panel has {panel.n_series} series")
    observed = panel.lengths - pad
    plan = plan_split(observed, spec, val_fraction=val_fraction, test_fraction=test_fraction, min_length=min_length)
    short = np.flatnonzero(~plan.trainable)
    if short.size:
        padded = min_length is not None and min_length < spec.lookback
        parts = f"min_length {min_length}" if padded else f"lookback {spec.lookback}"
        parts += f" + horizon {spec.horizon}"
        lines = [f"series '{panel.series_ids[i]}' has {observed[i]} points; {parts} needs {plan.train_points}" for i in short]
        hint = "" if padded else "; a window.min_length below the lookback would left-pad shorter series"
        raise ForecastingError(
            f"{short.size} of {panel.n_series} series are too short for one training window, even without "
            f"validation or test parts ({parts} = {plan.train_points} points{hint}):\n" + capped_list(lines)
        )
    val_end = panel.lengths - plan.test
    train_end = val_end - plan.val
    thin = np.flatnonzero(train_end < spec.length)
    if thin.size:
        names = capped_list([repr(panel.series_ids[i]) for i in thin], bullet="")
        raise ValueError(
            f"{thin.size} series keep fewer than {spec.length} rows for training ({names}): "
            "left-pad them by split_padding first and pass that padding"
        )
    return SplitBounds(train_end=train_end.astype(np.int64), val_end=val_end.astype(np.int64))


def split_usage(panel: SeriesPanel, bounds: SplitBounds) -> np.ndarray:
    """``(n_series,)`` int64 index into ``USAGES``: which parts each series has under ``bounds``."""
    has_val = bounds.val_end > bounds.train_end
    has_test = panel.lengths > bounds.val_end
    return np.where(has_val, np.where(has_test, 0, 1), np.where(has_test, 2, 3)).astype(np.int64)


def split_summary(panel: SeriesPanel, bounds: SplitBounds, padding: np.ndarray | None = None) -> str:
    """One line saying how the series are used, e.g. ``617 series: 480 train+val+test, 137 train only (12 left-padded)``."""
    counts = np.bincount(split_usage(panel, bounds), minlength=len(USAGES))
    parts = [f"{int(c)} {USAGES[k]}" for k, c in enumerate(counts) if c]
    line = f"{panel.n_series} series: " + (", ".join(parts) if parts else "none")
    n_padded = 0 if padding is None else int(np.count_nonzero(padding))
    return line + (f" ({n_padded} left-padded)" if n_padded else "")


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {fraction}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction {val_fraction} + test_fraction {test_fraction} leaves nothing to train on")


@dataclass(frozen=True, eq=False)
class WindowIndex:
    """Windows as start rows into ``panel.values``: 16 bytes per window, whatever the lookback."""

    starts: np.ndarray  # (n_windows,) int64, global row where each window begins
    series: np.ndarray  # (n_windows,) int64, series index of each window

    def __post_init__(self) -> None:
        if self.starts.shape != self.series.shape or self.starts.ndim != 1:
            raise ValueError(f"starts {self.starts.shape} and series {self.series.shape} must be equal 1-d shapes")

    def __len__(self) -> int:
        return int(self.starts.shape[0])


def build_index(
    panel: SeriesPanel,
    spec: WindowSpec,
    bounds: SplitBounds | None,
    part: Part,
    *,
    stride: int | None = None,
    max_windows_per_series: int | None = None,
    breaks: np.ndarray | None = None,
) -> WindowIndex:
    """Index the windows of one part, ordered by series then time.

    Windows are anchored at the end of the part (the last one ends exactly
    there) and step back by ``stride``, so the most recent data is always used.
    ``max_windows_per_series`` keeps the most recent windows. ``part="all"``
    needs no bounds; series shorter than ``spec.length`` then yield no windows.
    ``breaks`` (``(n_points,)`` bool, True where a gap precedes the point; see
    ``forecasting.data.calendar.gap_breaks``) drops every window spanning a
    gap, before ``max_windows_per_series`` is applied.
    """
    stride = spec.stride if stride is None else stride
    _check_positive_int("stride", stride)
    if max_windows_per_series is not None:
        _check_positive_int("max_windows_per_series", max_windows_per_series)

    lo, hi = _start_range(panel, spec, bounds, part)  # (n_series,) first and last local start, inclusive
    counts = np.where(hi >= lo, (hi - lo) // stride + 1, 0)
    if max_windows_per_series is not None and breaks is None:
        counts = np.minimum(counts, max_windows_per_series)

    series = np.repeat(np.arange(panel.n_series, dtype=np.int64), counts)  # (n_windows,)
    last = np.cumsum(counts) - 1  # (n_series,) index position of each series' latest window
    steps_back = last[series] - np.arange(series.shape[0], dtype=np.int64)  # (n_windows,)
    starts = panel.offsets[series] + hi[series] - stride * steps_back  # (n_windows,)
    if breaks is not None:
        starts, series = _without_breaks(panel, spec, starts, series, breaks, max_windows_per_series)
    return WindowIndex(starts=starts.astype(np.int64, copy=False), series=series)


def _without_breaks(
    panel: SeriesPanel,
    spec: WindowSpec,
    starts: np.ndarray,
    series: np.ndarray,
    breaks: np.ndarray,
    keep_last: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Drop windows with a break after their first row; then keep each series' last ``keep_last``."""
    breaks = np.asarray(breaks, dtype=bool)
    if breaks.shape != (panel.values.shape[0],):
        raise ValueError(f"breaks has shape {breaks.shape}; the panel has {panel.values.shape[0]} points")
    crossed = np.r_[0, np.cumsum(breaks)]  # (n_points + 1,) breaks before each row
    keep = crossed[starts + spec.length] == crossed[starts + 1]  # no break at rows start+1 .. start+length-1
    starts, series = starts[keep], series[keep]
    if keep_last is not None:
        after_last = np.searchsorted(series, series, side="right")  # (n_windows,) series sorted ascending
        keep = after_last - np.arange(series.shape[0]) <= keep_last
        starts, series = starts[keep], series[keep]
    return starts, series


def _start_range(
    panel: SeriesPanel, spec: WindowSpec, bounds: SplitBounds | None, part: str
) -> tuple[np.ndarray, np.ndarray]:
    """First and last allowed local start per series for ``part``."""
    n = panel.lengths
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    if part == "all":
        return np.zeros_like(n), n - spec.length
    if bounds is None:
        raise ValueError(f"part {part!r} needs split bounds; only 'all' works without")
    if bounds.train_end.shape != n.shape or bounds.val_end.shape != n.shape:
        raise ValueError(f"split bounds cover {bounds.train_end.shape[0]} series; the panel has {panel.n_series}")
    if part == "train":
        return np.zeros_like(n), bounds.train_end - spec.length
    if part == "val":  # targets in [train_end, val_end)
        return np.maximum(bounds.train_end - spec.lookback, 0), bounds.val_end - spec.length
    return np.maximum(bounds.val_end - spec.lookback, 0), n - spec.length  # test: targets in [val_end, n)


def gather(values: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """``(n_points, F)``, ``(B,)`` -> ``(B, length, F)`` by one advanced-indexing gather."""
    steps = torch.arange(length, device=values.device)  # (length,)
    rows = starts.to(values.device)[:, None] + steps  # (B, length)
    return values[rows]  # (B, length, F)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def left_pad(panel: SeriesPanel, length: int | np.ndarray, step: pd.DateOffset) -> tuple[SeriesPanel, np.ndarray]:
    """Prepend NaN rows to every series shorter than ``length`` so it has exactly ``length`` rows.

    ``length`` is one length for all series or ``(n_series,)`` lengths, one per
    series (``n + split_padding(...)`` pads each just enough to train on).

    Padded rows carry NaN in every feature (a NaN target is how the rest of
    the package recognises padding: validated data never has one) and
    timestamps one ``step`` apart before the series' first point, so calendar
    features stay defined. Returns the new panel and ``(n_series,)`` int64 rows
    added per series; a panel needing no padding is returned as is.
    """
    if np.ndim(length) == 0:
        _check_positive_int("length", length)
    elif np.shape(length) != (panel.n_series,):
        raise ValueError(f"length has shape {np.shape(length)}; the panel has {panel.n_series} series")
    pad = np.maximum(np.asarray(length, dtype=np.int64) - panel.lengths, 0).astype(np.int64)  # (n_series,)
    if not pad.any():
        return panel, pad
    new_lengths = panel.lengths + pad
    offsets = np.r_[0, np.cumsum(new_lengths)].astype(np.int64)
    rows = np.arange(panel.values.shape[0]) + np.repeat(offsets[:-1] + pad - panel.offsets[:-1], panel.lengths)
    values = np.full((int(offsets[-1]), panel.values.shape[1]), np.nan)
    values[rows] = panel.values
    timestamps = np.empty(int(offsets[-1]), dtype="datetime64[ns]")
    timestamps[rows] = panel.timestamps
    for i in np.flatnonzero(pad):
        first = pd.Timestamp(panel.timestamps[panel.offsets[i]])
        before = [first - step * k for k in range(int(pad[i]), 0, -1)]  # oldest first
        timestamps[offsets[i] : offsets[i] + pad[i]] = pd.DatetimeIndex(before).to_numpy(dtype="datetime64[ns]")
    return SeriesPanel(panel.series_ids, panel.features, values, offsets, timestamps), pad
