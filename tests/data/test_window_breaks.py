"""``build_index(..., breaks=...)``: no window spans a gap the gap policy left open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data.calendar import gap_breaks
from forecasting.prep.windows import SeriesPanel, WindowSpec, build_index, chronological_split


def _panel(lengths: list[int], missing: dict[int, list[int]]) -> SeriesPanel:
    frames = []
    for i, n in enumerate(lengths):
        stamps = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
        frame = pd.DataFrame({"series_id": f"s{i}", "timestamp": stamps, "target": np.arange(n, dtype=float)})
        frames.append(frame.drop(index=missing.get(i, [])))
    return SeriesPanel.from_frame(pd.concat(frames, ignore_index=True))


def _spans_gap(panel: SeriesPanel, starts: np.ndarray, length: int) -> np.ndarray:
    """Brute force: does the window's time span exceed length - 1 hours?"""
    first = panel.timestamps[starts]
    last = panel.timestamps[starts + length - 1]
    return (last - first) > np.timedelta64(length - 1, "h")


@pytest.mark.parametrize("stride", [1, 3])
def test_windows_across_a_gap_are_dropped_and_all_others_kept(stride) -> None:
    panel = _panel([60, 40], {0: [20, 21, 22], 1: [30]})
    spec = WindowSpec(lookback=6, horizon=2)
    breaks = gap_breaks(panel, "h")
    plain = build_index(panel, spec, None, "all", stride=stride)
    kept = build_index(panel, spec, None, "all", stride=stride, breaks=breaks)

    crossing = _spans_gap(panel, plain.starts, spec.length)
    assert crossing.any()  # the test would notice windows across the gap
    assert not _spans_gap(panel, kept.starts, spec.length).any()
    np.testing.assert_array_equal(kept.starts, plain.starts[~crossing])
    np.testing.assert_array_equal(kept.series, plain.series[~crossing])


def test_max_windows_per_series_counts_only_windows_without_a_gap() -> None:
    panel = _panel([50], {0: [46]})  # a gap near the end: the most recent windows cross it
    spec = WindowSpec(lookback=4, horizon=2)
    index = build_index(panel, spec, None, "all", max_windows_per_series=5, breaks=gap_breaks(panel, "h"))
    assert len(index) == 5
    assert not _spans_gap(panel, index.starts, spec.length).any()
    assert index.starts.tolist() == [36, 37, 38, 39, 40]  # 41..43 cross the gap; after it only 3 points remain


def test_training_windows_with_splits_skip_gaps_too() -> None:
    panel = _panel([200, 200], {0: [50, 51, 52, 53, 54, 55, 56, 57, 58, 59]})
    spec = WindowSpec(lookback=12, horizon=4)
    bounds = chronological_split(panel, spec, val_fraction=0.1, test_fraction=0.1)
    breaks = gap_breaks(panel, "h")
    for part in ("train", "val", "test"):
        index = build_index(panel, spec, bounds, part, breaks=breaks)
        assert len(index) and not _spans_gap(panel, index.starts, spec.length).any(), part
    assert _spans_gap(panel, build_index(panel, spec, bounds, "train").starts, spec.length).any()


def test_no_breaks_means_the_same_index_as_before() -> None:
    panel = _panel([30, 25], {})
    spec = WindowSpec(lookback=5, horizon=3)
    a = build_index(panel, spec, None, "all", stride=2, max_windows_per_series=4)
    b = build_index(panel, spec, None, "all", stride=2, max_windows_per_series=4, breaks=np.zeros(55, dtype=bool))
    np.testing.assert_array_equal(a.starts, b.starts)
    np.testing.assert_array_equal(a.series, b.series)


def test_breaks_must_cover_every_point() -> None:
    panel = _panel([30], {})
    with pytest.raises(ValueError, match=r"breaks has shape \(29,\); the panel has 30 points"):
        build_index(panel, WindowSpec(lookback=5, horizon=3), None, "all", breaks=np.zeros(29, dtype=bool))
