"""One preparation step shared by training, inference and backtests: from an observation frame and a
config to the packed panel, its split, scaler, network inputs and window indexes.

Training calls ``prepare`` once; an ensemble calls it again with its own lookback to score the
combination on exactly the windows a single model of that lookback would be scored on.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.config.model import ForecasterConfig
from forecasting.data.calendar import gap_breaks, offset_for
from forecasting.data.schema import validate_observations
from forecasting.errors import ForecastingError, capped_list
from forecasting.prep import transforms
from forecasting.prep.features import InputLayout, model_values
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import (
    USAGES,
    SeriesPanel,
    SplitBounds,
    WindowIndex,
    WindowSpec,
    build_index,
    chronological_split,
    left_pad,
    split_padding,
    split_summary,
    split_usage,
)

log = logging.getLogger(__name__)

USAGE_SERIES_CAP = 100
"""At most this many series are named per usage in ``meta['split_usage']`` (the counts are always whole)."""


@dataclass(frozen=True, eq=False)
class Prepared:
    """A config's view of a frame, ready to train on or to score: everything ``fit`` derives before training."""

    frame: pd.DataFrame
    """The configured series and columns, validated."""
    spec: WindowSpec
    layout: InputLayout
    panel: SeriesPanel
    """Packed series, left-padded where ``window.min_length`` allows."""
    lengths: dict[str, int]
    """Observed points per series (before padding)."""
    padded_rows: dict[str, int]
    bounds: SplitBounds
    summary: str
    """How the series are used, in one line."""
    usage: dict
    scaler: SeriesScaler
    """Fitted on each series' training part only."""
    values: np.ndarray  # (n_points, C) float32 network inputs
    indexes: dict[str, WindowIndex]
    """``train``, ``val`` and ``test`` windows."""


def prepare(config: ForecasterConfig, frame: pd.DataFrame) -> Prepared:
    """Select, pack, pad, split, scale and index ``frame`` as ``config`` asks (see ``fit`` for the rules)."""
    frame = select_training_frame(config, frame)
    spec = config_spec(config)
    layout = InputLayout.from_config(config)
    panel = SeriesPanel.from_frame(frame, covariates=layout.data_features[1:])
    lengths = dict(zip(panel.series_ids, panel.lengths.tolist(), strict=True))
    panel = _pad_short_series(config, panel, spec)
    pad_rows = panel.lengths - np.array(list(lengths.values()), dtype=np.int64)  # (n_series,) rows left-padded
    padded_rows = dict(zip(panel.series_ids, pad_rows.tolist(), strict=True))
    bounds = chronological_split(
        panel, spec, val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction,
        min_length=config.min_length, padding=pad_rows,
    )
    summary = split_summary(panel, bounds, pad_rows)
    log.info("config '%s': %s", config.name, summary)
    kind = config.data.target_transform
    transformed = transforms.apply(panel, kind)
    scaler = SeriesScaler.fit(transformed, bounds.train_end)
    values = model_values(panel, layout, scaler, transform=kind, transformed=transformed)  # (n_points, C) float32
    indexes = window_indexes(config, panel, spec, bounds, lengths)
    return Prepared(frame, spec, layout, panel, lengths, padded_rows, bounds, summary, _usage_meta(panel, bounds),
                    scaler, values, indexes)


def select_training_frame(config: ForecasterConfig, frame: pd.DataFrame) -> pd.DataFrame:
    """The configured series and columns, validated: every problem reported at once."""
    data = config.data
    name = f"dataset '{data.dataset}'"
    problems = []
    if "series_id" in frame.columns and data.series:
        available = set(frame["series_id"].unique())
        missing = [s for s in data.series if s not in available]
        if missing:
            problems.append(f"series {missing} not found; available: {sorted(available)}")
    wanted = [*data.covariates, *data.future_covariates]
    missing_cols = [c for c in wanted if c not in frame.columns]
    if missing_cols:
        covariate_cols = sorted(set(frame.columns) - {"series_id", "timestamp", "target"})
        problems.append(f"covariate column(s) {missing_cols} not found; available covariates: {covariate_cols}")
    if problems:
        raise ForecastingError(f"config '{config.name}' does not match {name}:\n" + "\n".join(f"  - {p}" for p in problems))
    if data.series:
        frame = frame[frame["series_id"].isin(data.series)]
    columns = ["series_id", "timestamp", "target", *wanted]
    return validate_observations(frame[columns], required=wanted, name=name)


def _pad_short_series(config: ForecasterConfig, panel: SeriesPanel, spec: WindowSpec) -> SeriesPanel:
    """With padding on, left-pad each series whose training part (after ``plan_split`` kept or dropped
    its validation and test parts) is shorter than one window, just enough to hold one."""
    if not config.padded:
        return panel
    split = config.split
    pad = split_padding(
        panel.lengths, spec, val_fraction=split.val_fraction, test_fraction=split.test_fraction, min_length=config.min_length
    )
    padded, _ = left_pad(panel, panel.lengths + pad, offset_for(config.data.freq))
    return padded


def _usage_meta(panel: SeriesPanel, bounds: SplitBounds) -> dict:
    """Per-series usage for lineage: counts per usage, and the series of each usage but the full one (capped)."""
    usage = split_usage(panel, bounds)
    counts = np.bincount(usage, minlength=len(USAGES))
    out: dict = {"counts": {name: int(c) for name, c in zip(USAGES, counts, strict=True) if c}, "series": {}}
    for k, name in enumerate(USAGES[1:], start=1):
        members = [panel.series_ids[i] for i in np.flatnonzero(usage == k)]
        if members:
            out["series"][name] = members[:USAGE_SERIES_CAP]
    if any(counts[1:] > USAGE_SERIES_CAP):
        out["series_cap"] = USAGE_SERIES_CAP
    return out


def window_indexes(
    config: ForecasterConfig, panel: SeriesPanel, spec: WindowSpec, bounds: SplitBounds, lengths: dict[str, int]
) -> dict[str, WindowIndex]:
    """Train (strided), validation and test (every origin) windows; none spans a gap in the grid.

    With padding, windows keep at least ``min_length`` observed lookback points
    and only observed targets; a series left with no training window is an error.
    """
    breaks = gap_breaks(panel, config.data.freq, timezone=config.data.calendar_timezone)
    out = {
        "train": build_index(panel, spec, bounds, "train", max_windows_per_series=config.window.max_windows_per_series, breaks=breaks),
        "val": build_index(panel, spec, bounds, "val", stride=1, breaks=breaks),
        "test": build_index(panel, spec, bounds, "test", stride=1, breaks=breaks),
    }
    if not len(out["train"]):
        raise ForecastingError(
            f"config '{config.name}': no training window fits between the gaps of the {config.data.freq!r} grid "
            f"({int(breaks.sum())} gaps in {panel.n_series} series); does data.freq match the data's spacing?"
        )
    if not config.padded:
        return out
    observed = np.r_[0, np.cumsum(~np.isnan(panel.values[:, 0]))]  # (n_points + 1,) observed before each row
    for part, index in out.items():
        s = index.starts
        seen = observed[s + spec.lookback] - observed[s]
        targets = observed[s + spec.length] - observed[s + spec.lookback]
        keep = (seen >= config.min_length) & (targets == spec.horizon)
        out[part] = WindowIndex(starts=s[keep], series=index.series[keep])
    trained_on = set(out["train"].series.tolist())
    orphans = [i for i in range(panel.n_series) if i not in trained_on]
    if orphans:
        lines = [
            f"series '{panel.series_ids[i]}' has {lengths[panel.series_ids[i]]} points but no training window with "
            f"min_length {config.min_length} observed points and {spec.horizon} observed targets between its gaps"
            for i in orphans
        ]
        raise ForecastingError(f"{len(orphans)} series have no training window, even left-padded:\n" + capped_list(lines))
    return out


def config_spec(config: ForecasterConfig) -> WindowSpec:
    """The window shape a config asks for."""
    w = config.window
    return WindowSpec(lookback=w.lookback, horizon=w.horizon, stride=w.stride)


def data_fingerprint(frame: pd.DataFrame) -> dict:
    """What the model saw: series, time range, rows and a content hash (for lineage)."""
    digest = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return {
        "series": sorted(frame["series_id"].unique().tolist()),
        "start": str(frame["timestamp"].min()),
        "end": str(frame["timestamp"].max()),
        "rows": int(len(frame)),
        "sha1": hashlib.sha1(digest.tobytes()).hexdigest(),
    }

