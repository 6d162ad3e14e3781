"""Where a backtest's origins go: the rolling-origin plan and the model's in-sample boundary.

Everything is per series and vectorised over series (``np.bincount`` over the
panel's rows), so planning costs O(points) whatever the number of origins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.config.backtest import BacktestConfig
from forecasting.errors import ForecastingError
from forecasting.model.forecaster import TrainedForecaster
from forecasting.prep.prepare import data_fingerprint
from forecasting.prep.windows import SeriesPanel, WindowSpec, needed_length, part_size, plan_split

__all__ = ["holdout_start", "min_train_points", "no_origins_message", "part_size", "plan_origins", "short_series_note"]


def plan_origins(
    panel: SeriesPanel, settings: BacktestConfig, horizon: int, lo: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(series (N,), local origin position (N,))`` ordered by series then time.

    Per series the last origin leaves ``horizon`` actuals (or sits at ``end``);
    earlier ones step back by ``stride`` down to ``lo`` and ``start``, keeping
    the most recent ``origins``.
    """
    stride = settings.stride or horizon
    rows = panel.row_series
    hi = panel.lengths - 1 - horizon  # (S,)
    lo = np.asarray(lo, dtype=np.int64)
    if settings.end is not None:
        hi = np.minimum(hi, _count(panel, rows, panel.timestamps <= _naive(settings.end)) - 1)
    if settings.start is not None:
        lo = np.maximum(lo, _count(panel, rows, panel.timestamps < _naive(settings.start)))
    counts = np.where(hi >= lo, (hi - lo) // stride + 1, 0)
    if settings.origins is not None:
        counts = np.minimum(counts, settings.origins)
    series = np.repeat(np.arange(panel.n_series, dtype=np.int64), counts)  # (N,)
    last = np.cumsum(counts) - 1
    steps_back = last[series] - np.arange(series.size, dtype=np.int64)
    return series, hi[series] - stride * steps_back


def holdout_start(
    trained: TrainedForecaster, frame: pd.DataFrame, panel: SeriesPanel, *, required: bool = True
) -> tuple[np.ndarray, pd.Timestamp | None, str]:
    """Per series, the local position of the first target the model never learned from.

    Also the last time it learned from, and a note saying how that was found.
    Without a recorded training range this raises, unless not ``required``
    (every origin is scored anyway), when every position is 0.
    """
    data = trained.meta.get("data") or {}
    name = trained.config.name
    if "end" not in data:
        if not required:
            note = f"model '{name}' records no training data range: which origins are in-sample is unknown"
            return np.zeros(panel.n_series, dtype=np.int64), None, note
        raise ForecastingError(
            f"model '{name}' records no training data range (meta data.end), so in-sample origins cannot be "
            "told apart; set backtest.in_sample: include to score every origin"
        )
    end = pd.Timestamp(data["end"])
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    seen = _count(panel, panel.row_series, panel.timestamps <= _naive(end))  # (S,) points up to the end
    in_training = frame["series_id"].isin(data.get("series") or panel.series_ids) & (frame["timestamp"] <= end)
    trained_rows = frame[in_training].reset_index(drop=True)
    if data.get("sha1") and data_fingerprint(trained_rows)["sha1"] == data["sha1"]:
        config, spec = trained.config, trained.spec
        # The split fit made (windows.plan_split): a series too short for a test part has none, so all of it is in-sample.
        plan = plan_split(
            seen, spec, val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction,
            min_length=getattr(config, "min_length", None),
        )
        holdout = seen - plan.test  # the test part is the series' tail
        learned = panel.timestamps[panel.offsets[:-1] + np.maximum(holdout - 1, 0)]  # (S,) last target learned from
        last = pd.Timestamp(learned.max(), tz="UTC")
        note = (
            "training split rebuilt from the recorded data (hash matches): targets up to each series' test part "
            f"(latest {last}) are in-sample"
        )
        return holdout, last, note
    note = f"training data changed since the model was trained (hash differs): every point up to {end} counts as in-sample"
    return seen, end, note


def min_train_points(spec: WindowSpec, val_fraction: float, test_fraction: float = 0.0) -> int:
    """Fewest points from which every series ``fit`` splits into one training window plus validation and test parts.

    ``windows.needed_length``: the split's own rule, so the two cannot disagree.
    """
    return needed_length(spec, val_fraction, test_fraction)


def no_origins_message(
    panel: SeriesPanel, settings: BacktestConfig, horizon: int, name: str, *, in_sample: bool, need: int | None = None
) -> str:
    longest = int(panel.lengths.max()) if panel.n_series else 0
    why = [f"horizon {horizon}", f"stride {settings.stride or horizon}"]
    if settings.start is not None or settings.end is not None:
        why.append(f"start {settings.start} / end {settings.end}")
    if in_sample:
        why.append("in_sample: skip (the model learned from every full horizon; try in_sample: include or newer data)")
    if need is not None:
        why.append(f"{need} training points before the first origin")
    return f"no origin to backtest '{name}' (longest series {longest} points): " + ", ".join(why)


def short_series_note(
    panel: SeriesPanel, empty: np.ndarray, observed: np.ndarray, horizon: int, lookback: int, min_length: int, *, padded: bool
) -> str:
    """One line naming every series of ``empty`` (indices) that got no origin, with their count and lengths.

    ``observed``: ``(S,)`` observed points per series (padding excluded). A series is never dropped
    silently: too short for one window, or all of it learned from (in-sample), the report says so.
    """
    need = f"min_length {min_length}" if padded else f"lookback {lookback}"
    shown = [f"{panel.series_ids[i]} ({int(observed[i])} points)" for i in empty[:20]]
    more = f" and {empty.size - 20} more" if empty.size > 20 else ""
    return (
        f"{empty.size} of {panel.n_series} series have no origin and are left out (each needs {need} observed points "
        f"before an out-of-sample origin and horizon {horizon} after it): {', '.join(shown)}{more}"
    )


def _count(panel: SeriesPanel, rows: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """``(S,)`` points per series where ``hit`` (a per-row condition on a sorted series) holds."""
    return np.bincount(rows, weights=hit, minlength=panel.n_series).astype(np.int64)


def _naive(stamp: pd.Timestamp | object) -> np.datetime64:
    """A UTC time as the panel stores it (datetime64[ns] without zone)."""
    ts = pd.Timestamp(stamp)
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    return ts.to_datetime64()
