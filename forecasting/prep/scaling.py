"""Per-series standard scaling, fitted on the training part only.

Series differ by orders of magnitude (a temperature, a share price), so one
global scale would let the largest series dominate the loss. Each series and
feature gets its own mean and standard deviation, computed only from points
before the series' ``train_end`` so validation and test data never leak into
the inputs the model is trained on.

Series are matched by id, never by position: a prediction panel may hold a
subset of the training series in another order, plus series never seen in
training (see ``SeriesScaler.extended``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from forecasting.errors import ForecastingError
from forecasting.prep.windows import SeriesPanel

# A std this small relative to the mean is float rounding of a constant
# column; dividing by it would turn rounding noise into values of about +-1.
_CONSTANT_RTOL = 1e-12


@dataclass(frozen=True, eq=False)
class SeriesScaler:
    """Reversible ``(x - mean) / scale`` per series and feature."""

    series_ids: tuple[str, ...]
    features: tuple[str, ...]
    mean: np.ndarray  # (n_series, n_features) float64
    scale: np.ndarray  # (n_series, n_features) float64; 1.0 for constant columns

    def __post_init__(self) -> None:
        shape = (len(self.series_ids), len(self.features))
        if self.mean.shape != shape or self.scale.shape != shape:
            raise ValueError(f"mean {self.mean.shape} and scale {self.scale.shape} must both be {shape}")
        if len(set(self.series_ids)) != len(self.series_ids):
            raise ValueError("series_ids must be unique")

    @classmethod
    def fit(cls, panel: SeriesPanel, train_end: np.ndarray | None = None) -> SeriesScaler:
        """Fit on each series' first ``train_end[i]`` points (all points if None), ignoring NaN.

        Constant columns get scale 1.0. A covariate with no observed value in
        the fitting range gets the identity (mean 0, scale 1): the canonical
        frame allows NaN covariates, and NaN stays NaN through the transform.
        A target with no observed value cannot be scaled and raises.
        """
        lengths = panel.lengths
        if train_end is None:
            train_end = lengths
        train_end = np.asarray(train_end, dtype=np.int64)
        if train_end.shape != lengths.shape:
            raise ValueError(f"train_end has shape {train_end.shape}; the panel has {panel.n_series} series")
        beyond = np.flatnonzero(train_end > lengths)
        if beyond.size:
            i = beyond[0]
            raise ValueError(
                f"train_end {train_end[i]} of series '{panel.series_ids[i]}' exceeds its {lengths[i]} points"
            )

        rows = panel.row_series  # (n_points,)
        local = np.arange(rows.shape[0]) - panel.offsets[rows]  # (n_points,) position within its series
        used = (local < train_end[rows])[:, None] & ~np.isnan(panel.values)  # (n_points, F)
        count = _segment_sum(used, rows, panel.n_series)  # (n_series, F)
        _check_target_observed(panel, count, train_end)

        observed = count > 0
        safe_count = np.where(observed, count, 1.0)
        mean = _segment_sum(np.where(used, panel.values, 0.0), rows, panel.n_series) / safe_count
        deviation = np.where(used, panel.values - mean[rows], 0.0)  # (n_points, F)
        std = np.sqrt(_segment_sum(deviation * deviation, rows, panel.n_series) / safe_count)
        scale = np.where(std > _CONSTANT_RTOL * np.abs(mean), std, 1.0)
        return cls(panel.series_ids, panel.features, np.where(observed, mean, 0.0), np.where(observed, scale, 1.0))

    def transform(self, panel: SeriesPanel, *, dtype: np.dtype | type = np.float32) -> np.ndarray:
        """Scale ``panel.values`` -> ``(n_points, F)`` in ``dtype`` (float32 for the model)."""
        self._check_features(panel.features)
        positions = self._positions(panel.series_ids)  # (n_series,) scaler row per series
        out = np.empty(panel.values.shape, dtype=dtype)
        # Series by series, in float64 then cast, as one expression over the panel would compute it, but
        # without per-point index and broadcast temporaries (~40 bytes a point): only the result is new.
        for i, (lo, hi) in enumerate(zip(panel.offsets[:-1], panel.offsets[1:], strict=True)):
            row = positions[i]
            out[lo:hi] = (panel.values[lo:hi] - self.mean[row]) / self.scale[row]
        return out

    def inverse_target(self, y: np.ndarray, series_ids: Sequence[str]) -> np.ndarray:
        """Scaled targets ``(B, ...)`` (e.g. ``(B, H)``) back to original units, as float64.

        ``series_ids[b]`` names the series of row ``b``.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 0 or y.shape[0] != len(series_ids):
            raise ValueError(f"y has shape {y.shape}; expected {len(series_ids)} rows, one per series id")
        rows = self._positions(series_ids)  # (B,)
        trailing = (1,) * (y.ndim - 1)
        return y * self.scale[rows, 0].reshape(-1, *trailing) + self.mean[rows, 0].reshape(-1, *trailing)

    def extended(self, panel: SeriesPanel) -> SeriesScaler:
        """A scaler that also covers ``panel``'s unknown series, fitted on all their given data.

        Known series keep their training statistics; used at prediction time
        for series that were not in the training data.
        """
        self._check_features(panel.features)
        known = self._position
        unknown = [s for s in panel.series_ids if s not in known]
        if not unknown:
            return self
        fresh = SeriesScaler.fit(panel.select(unknown))
        return SeriesScaler(
            self.series_ids + fresh.series_ids,
            self.features,
            np.concatenate([self.mean, fresh.mean]),
            np.concatenate([self.scale, fresh.scale]),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; Python floats print their shortest exact repr, so it round-trips."""
        return {
            "series_ids": list(self.series_ids),
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesScaler:
        """Rebuild a scaler from ``to_dict`` output."""
        missing = [k for k in ("series_ids", "features", "mean", "scale") if k not in d]
        if missing:
            raise ForecastingError(f"scaler dict lacks key(s) {missing}; it has {sorted(d)}")
        shape = (len(d["series_ids"]), len(d["features"]))
        try:
            mean = np.asarray(d["mean"], dtype=np.float64).reshape(shape)
            scale = np.asarray(d["scale"], dtype=np.float64).reshape(shape)
        except ValueError as exc:
            raise ForecastingError(
                f"scaler dict mean/scale do not fit {shape[0]} series x {shape[1]} features"
            ) from exc
        return cls(tuple(d["series_ids"]), tuple(d["features"]), mean, scale)

    @cached_property
    def _position(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.series_ids)}

    def _positions(self, series_ids: Sequence[str]) -> np.ndarray:
        unknown = [s for s in dict.fromkeys(series_ids) if s not in self._position]
        if unknown:
            raise ForecastingError(
                f"scaler does not know series {', '.join(repr(s) for s in unknown)}; "
                f"it was fitted on {len(self.series_ids)} series (use extended() for new ones)"
            )
        return np.array([self._position[s] for s in series_ids], dtype=np.int64)

    def _check_features(self, features: tuple[str, ...]) -> None:
        if tuple(features) != self.features:
            raise ForecastingError(f"scaler was fitted on features {list(self.features)}; panel has {list(features)}")


def _segment_sum(x: np.ndarray, rows: np.ndarray, n_series: int) -> np.ndarray:
    """``(n_points, F)`` -> ``(n_series, F)`` sums per series, one bincount per feature."""
    columns = [np.bincount(rows, weights=x[:, j], minlength=n_series) for j in range(x.shape[1])]
    return np.stack(columns, axis=1) if columns else np.zeros((n_series, 0))


def _check_target_observed(panel: SeriesPanel, count: np.ndarray, train_end: np.ndarray) -> None:
    empty = np.flatnonzero(count[:, 0] == 0)
    if empty.size:
        lines = [
            f"  - series '{panel.series_ids[i]}': no target value in its first {train_end[i]} points" for i in empty
        ]
        raise ForecastingError("cannot fit a scaler on series without observed targets:\n" + "\n".join(lines))
