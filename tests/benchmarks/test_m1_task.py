"""M1 in the time-to-accuracy measure: ragged monthly series, right-aligned and NaN-padded, with the official
18-point hold-out, one origin per series, and a project contestant that trains and forecasts on it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from benchmarks.accuracy import DATA as DATA_DIR
from benchmarks.task import load, m1_task


@pytest.fixture(scope="module")
def m1():  # noqa: ANN201 - a TaskData
    return load(m1_task())


def _rows(part: str) -> int:
    with gzip.open(DATA_DIR / f"m1-monthly-{part}.csv.gz", "rt") as f:
        return sum(1 for _ in f) - 1  # less the header


def test_m1_task_data_is_right_aligned_nan_padded_with_the_official_holdout(m1) -> None:  # noqa: ANN001
    assert m1.values.shape == (617, 150) and m1.ragged and m1.freq == "MS"
    assert list(m1.ids) == sorted(m1.ids)
    observed = ~np.isnan(m1.values)
    assert observed[:, -1].all()  # every series ends on the same (last) month
    assert (observed == (np.arange(150) >= m1.first[:, None])).all()  # NaN only as left padding
    assert (m1.lengths.min(), m1.lengths.max()) == (48, 150)
    assert m1.holdout == 18 and m1.validation == 18 and list(m1.origins) == [131]
    assert m1.actual.shape == (617, 1, 18) and np.isfinite(m1.actual).all()
    assert m1.val_windows == 617  # one validation window per series: every one has a season before it
    scale = m1.mase_scale
    assert scale.shape == (617,) and np.isfinite(scale).all() and (scale > 0).all()
    scaled, mean, std = m1.standardized()
    np.testing.assert_array_equal(np.isnan(scaled), ~observed)
    assert np.isfinite(mean).all() and (std > 0).all()
    frame = m1.frame()
    assert not frame.isna().any().any() and len(frame) == _rows("train") + _rows("test")
    assert frame["timestamp"].dt.tz is not None


def test_m1_window_counts_follow_the_projects_padding(m1) -> None:  # noqa: ANN001
    fit = m1.lengths - 36  # observed points before the validation part
    windows = m1.train_windows_by_series
    np.testing.assert_array_equal(windows[fit >= 54], fit[fit >= 54] - 53)  # every fully observed window
    assert (windows[(fit < 54) & (fit >= 30)] == 1).all()  # left-padded to one window
    assert (windows[fit < 30] == 0).all()  # too short: validated on only
    with pytest.raises(ValueError, match="different lengths"):
        m1.train_windows_per_series


def test_a_smaller_m1_task_takes_the_first_series_and_keeps_the_shared_end(m1) -> None:  # noqa: ANN001
    small = load(m1_task(n_series=20))
    assert small.ids == m1.ids[:20] and small.timestamps[-1] == m1.timestamps[-1]
    np.testing.assert_array_equal(small.values[:, -small.n_points:], m1.values[:20, -small.n_points:])


def test_project_trains_and_forecasts_a_tiny_m1_task() -> None:
    from benchmarks.contestants import project

    data = load(m1_task(n_series=20, max_epochs=1, patience=1, threads=1))
    cfg = project.config(data)
    assert (cfg.data.freq, cfg.window.min_length, cfg.split.test_fraction) == ("MS", 12, 0.0)
    out = project.train(data)  # checks fit's window counts against the project's split rule itself
    assert out["forecasts"].shape == (20, 1, 18) and np.isfinite(out["forecasts"]).all()
    assert np.isfinite(data.score(out["forecasts"])["mase"])
