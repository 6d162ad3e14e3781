"""The standard task is deterministic, its hold-out is the project's test split, and the raw loop's windows are right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.task import Task, load, lstm_flops

TINY = Task(n_series=3, n_points=300, seed=7)


def test_synthetic_task_is_deterministic_and_shaped() -> None:
    a, b = load(TINY), load(TINY)
    assert a.values.shape == (3, 300)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, load(TINY.with_(seed=8)).values)
    assert a.timestamps.tz is not None and len(a.timestamps) == 300


def test_holdout_geometry() -> None:
    data = load(TINY)
    assert data.holdout == 30  # max(horizon 24, 10% of 300)
    assert data.train_points == 270
    assert data.train_windows_per_series == 270 - 192 + 1
    assert len(data.origins) == 30 - 24 + 1
    assert data.actual.shape == (3, 7, 24)
    assert data.actual[1, 0, 0] == data.values[1, 270]  # first target is the first hold-out point
    assert data.actual[2, -1, -1] == data.values[2, -1]  # last target is the series' last point


def test_scores_are_zero_for_the_truth_and_match_forecasting_metrics() -> None:
    from forecasting.evaluation import metrics

    data = load(TINY)
    assert data.score(data.actual.copy()) == {"mae": 0.0, "mase": 0.0}
    naive = data.seasonal_naive()
    expected = np.mean(
        [metrics.mase(data.actual[s], naive[s], insample=data.values[s, : data.train_points], season=24) for s in range(3)]
    )
    assert data.score(naive)["mase"] == pytest.approx(expected)


def test_holdout_is_the_projects_test_split() -> None:
    from benchmarks.contestants.project import _panel_and_starts, config
    from forecasting.prep.prepare import config_spec
    from forecasting.prep.windows import build_index, chronological_split

    data = load(TINY)
    panel, starts = _panel_and_starts(data, data.frame())
    spec = config_spec(config(data))
    bounds = chronological_split(panel, spec, val_fraction=0.0, test_fraction=0.1)
    np.testing.assert_array_equal(build_index(panel, spec, bounds, "test").starts, starts)
    assert len(build_index(panel, spec, bounds, "train")) == data.train_windows


def test_raw_loop_gathers_windows_and_trains_on_a_tiny_task() -> None:
    from benchmarks.contestants import raw

    values = torch.arange(20, dtype=torch.float32)
    np.testing.assert_array_equal(raw._gather(values, torch.tensor([0, 5]), 3).numpy(), [[0, 1, 2], [5, 6, 7]])
    data = load(Task(n_series=2, n_points=260, hidden=4, layers=1, batch_size=32))
    out = raw.train(data)
    assert out["windows"] == data.train_windows and out["steps"] == -(-data.train_windows // 32)
    assert out["forecasts"].shape == data.actual.shape and np.isfinite(out["forecasts"]).all()


def test_lstm_flops_of_the_standard_task() -> None:
    flops = lstm_flops(Task())
    assert flops["forward"] == 168 * 2 * 256 * (1 + 64) + 168 * 2 * 256 * 128 + 2 * 64 * 24
    assert flops["train"] == pytest.approx(49.8e6, rel=0.01)


def test_early_stopping_validates_on_the_end_of_the_training_part_and_the_project_agrees() -> None:
    from benchmarks.contestants.project import DEFAULT, config
    from forecasting.prep.prepare import config_spec
    from forecasting.prep.windows import build_index, chronological_split
    from benchmarks.contestants.project import _panel_and_starts

    assert load(TINY).validation == 0 and load(TINY).val_windows == 0  # the fixed budget is unchanged
    data = load(TINY.with_(patience=2, max_epochs=5))
    assert data.validation == 27 and data.fit_points == 243  # max(24, round(10% of the 270 training points))
    assert data.train_windows == 3 * (243 - 192 + 1) and data.val_windows == 3 * (27 - 24 + 1)
    cfg = config(data, DEFAULT)
    assert (cfg.training.patience, cfg.training.max_epochs) == (2, 5)
    panel, starts = _panel_and_starts(data, data.frame())
    spec = config_spec(cfg)
    bounds = chronological_split(panel, spec, val_fraction=cfg.split.val_fraction, test_fraction=0.1)
    assert list(bounds.train_end) == [data.fit_points] * 3
    assert len(build_index(panel, spec, bounds, "val")) == data.val_windows
    np.testing.assert_array_equal(build_index(panel, spec, bounds, "test").starts, starts)
