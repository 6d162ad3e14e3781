"""Target transforms applied before scaling and inverted exactly after the network.

``none``
    the target as is.
``log``
    ``z_t = log y_t``: multiplicative series; needs ``y > 0``.
``difference``
    ``z_t = y_t - y_{t-1}``: removes the level, so a trending series stays in
    the range the network was trained on.
``log-return``
    ``z_t = log y_t - log y_{t-1}``: relative changes, the usual view of prices.

With the two differencing transforms the network's output at step ``h`` is
the *cumulative* change from the origin, ``z_{T+1} + ... + z_{T+h}`` (scaled),
not the change of step ``h`` alone. That makes inversion exact for every
output, quantiles included: ``y_{T+h} = y_T + sum`` (or ``y_T * exp(sum)``) is
monotone in the sum, so the q-quantile of the sum maps to the q-quantile of
``y_{T+h}``. Summing per-step quantiles would not.

The first point of a series has no predecessor: its change is NaN here and
is fed to the network as "no change" (the scaled value 0), see
``forecasting.features``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from forecasting.errors import ForecastingError
from forecasting.prep.windows import SeriesPanel

Transform = Literal["none", "log", "difference", "log-return"]
TRANSFORMS: tuple[str, ...] = ("none", "log", "difference", "log-return")


def is_cumulative(kind: str) -> bool:
    """True when the network predicts the cumulative change since the origin (differencing transforms)."""
    return kind in ("difference", "log-return")


def check_target(panel: SeriesPanel, kind: str) -> None:
    """Raise one ``ForecastingError`` naming every series a log transform cannot take."""
    _check_kind(kind)
    if kind not in ("log", "log-return"):
        return
    problems = []
    for i, sid in enumerate(panel.series_ids):
        target = panel.series_values(i)[:, 0]  # (n_i,)
        bad = np.flatnonzero(target <= 0)  # NaN (padding) compares False: allowed
        if bad.size:
            stamp = np.datetime_as_string(panel.timestamps[panel.offsets[i] + bad[0]], unit="s")
            problems.append(
                f"series '{sid}' has {bad.size} target value(s) <= 0, the first {float(target[bad[0]])!r} at {stamp}Z"
            )
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ForecastingError(f"target transform '{kind}' needs positive targets:\n{lines}")


def apply(panel: SeriesPanel, kind: str) -> SeriesPanel:
    """The panel with its target column (0) transformed; covariates untouched.

    Differencing leaves NaN at each series' first point and after any NaN
    (padding), since those points have no observed predecessor.
    """
    check_target(panel, kind)
    if kind == "none":
        return panel
    target = panel.values[:, 0]  # (n_points,)
    z = np.log(target) if kind in ("log", "log-return") else target.copy()
    if is_cumulative(kind):
        change = np.full_like(z, np.nan)
        change[1:] = z[1:] - z[:-1]
        change[panel.offsets[:-1][panel.lengths > 0]] = np.nan  # a series' first point follows another series
        z = change
    values = panel.values.copy()
    values[:, 0] = z
    return panel.with_values(values)


def invert(
    pred: np.ndarray,
    *,
    kind: str,
    mean: np.ndarray,
    scale: np.ndarray,
    last: np.ndarray,
) -> np.ndarray:
    """Scaled network outputs back to the target's original units, exactly.

    ``pred`` is ``(B, H)`` or ``(B, H, O)`` (several outputs, e.g. quantiles);
    ``mean`` and ``scale`` are each row's target scaler statistics ``(B,)``;
    ``last`` is each row's last observed raw target ``(B,)`` (the origin value,
    needed by the differencing transforms).
    """
    _check_kind(kind)
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim not in (2, 3):
        raise ValueError(f"pred must be (B, H) or (B, H, O), got shape {pred.shape}")
    trailing = (1,) * (pred.ndim - 1)
    m = np.asarray(mean, dtype=np.float64).reshape(-1, *trailing)
    s = np.asarray(scale, dtype=np.float64).reshape(-1, *trailing)
    y0 = np.asarray(last, dtype=np.float64).reshape(-1, *trailing)
    if is_cumulative(kind):
        steps = np.arange(1, pred.shape[1] + 1, dtype=np.float64).reshape(1, -1, *(1,) * (pred.ndim - 2))
        total = pred * s + m * steps  # the cumulative change: each of h steps carries the mean once
        return y0 + total if kind == "difference" else y0 * np.exp(total)
    z = pred * s + m
    return np.exp(z) if kind == "log" else z


def zero_first_change(past: torch.Tensor) -> None:
    """Set each window's first target change to 0 ("no change"), in place: ``(B, steps, F)``, target in column 0.

    With a differencing transform the first lookback step's change needs the
    point before the lookback. At prediction a history of exactly ``lookback``
    points has none, so inference feeds 0 there; training windows do the
    same, so the network never learns from a value it will not have and only
    the last ``lookback`` points of a history matter. Training, validation and
    inference all call this, so the three agree.
    """
    past[:, 0, 0] = 0.0


def _check_kind(kind: str) -> None:
    if kind not in TRANSFORMS:
        raise ForecastingError(f"unknown target transform {kind!r}; choose one of {list(TRANSFORMS)}")
