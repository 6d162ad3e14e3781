"""The statistical baselines (statsforecast) against hand computations on tiny synthetic series."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.errors import ForecastingError
from forecasting.evaluation.statistical import statistical_forecasts


def test_ets_and_theta_continue_an_exactly_seasonal_series():
    # Three seasons of 1,5,3,7 (no trend, no noise): the hand forecast repeats the pattern.
    pattern = np.array([1.0, 5.0, 3.0, 7.0])
    y = np.tile(pattern, 6)
    out = statistical_forecasts([y], 6, season=4, models=["ets", "theta"])
    expected = np.tile(pattern, 2)[:6]
    np.testing.assert_allclose(out.forecasts["ets"][0], expected, atol=0.05)
    np.testing.assert_allclose(out.forecasts["theta"][0], expected, atol=0.25)
    assert out.fallbacks == {"ets": 0, "theta": 0}


def test_a_constant_series_is_forecast_flat_and_padding_is_dropped():
    y = np.r_[np.full(5, np.nan), np.full(20, 3.0)]  # left padding first, then a constant
    out = statistical_forecasts([y], 3, season=1, models=["ets", "theta"])
    for name in ("ets", "theta"):
        np.testing.assert_allclose(out.forecasts[name][0], [3.0, 3.0, 3.0], atol=1e-6)


def test_each_history_is_fitted_on_its_own_and_only_its_last_points():
    # Two origins of one series: the later history ends on a new level, which only its own fit sees.
    low, high = np.full(30, 1.0), np.r_[np.full(30, 1.0), np.full(30, 9.0)]
    out = statistical_forecasts([low, high], 2, season=1, models=["ets"], max_history=20)
    np.testing.assert_allclose(out.forecasts["ets"][0], [1.0, 1.0], atol=1e-3)
    np.testing.assert_allclose(out.forecasts["ets"][1], [9.0, 9.0], atol=1e-3)


def test_unknown_model_and_empty_history_are_clear_errors():
    with pytest.raises(ForecastingError, match="unknown statistical model.*'prophet'"):
        statistical_forecasts([np.ones(10)], 2, season=1, models=["prophet"])
    with pytest.raises(ForecastingError, match="empty history"):
        statistical_forecasts([np.full(4, np.nan)], 2, season=1, models=["ets"])


def test_the_validation_comparison_takes_the_latest_windows_a_horizon_apart():
    from forecasting.evaluation.validation import recent_windows
    from forecasting.prep.windows import WindowIndex

    index = WindowIndex(starts=np.arange(10, dtype=np.int64), series=np.array([0] * 6 + [1] * 4, dtype=np.int64))
    np.testing.assert_array_equal(recent_windows(index, spacing=2, per_series=2), [3, 5, 7, 9])
    np.testing.assert_array_equal(recent_windows(index, spacing=3, per_series=4), [2, 5, 6, 9])
    assert recent_windows(WindowIndex(starts=np.empty(0, np.int64), series=np.empty(0, np.int64)), spacing=2, per_series=1).size == 0


@pytest.mark.slow
def test_training_scores_ets_and_theta_beside_the_model_on_the_same_windows(tiny_fit):
    _, _, result = tiny_fit  # baseline.statistical: [ets, theta]
    m = result.forecaster.metrics
    # three series, each with 29 validation windows (40 points, horizon 12): the latest and those 12 and 24 before it
    assert m["val_stat_windows"] == 3 * 3
    for name in ("ets", "theta"):
        assert np.isfinite(m[f"val_{name}_mae"]) and np.isfinite(m[f"val_{name}_rmse"])
    # a noisy sine with the right season: ETS is close to the noise level, far below the 4-epoch model
    assert m["val_ets_mae"] < m["val_stat_model_mae"]
    # MASE (what forecast tune minimises): scaled per series; the 4-epoch model is far behind seasonal naive here too
    assert np.isfinite(m["val_mase"]) and m["val_mase"] > m["val_baseline_mase"] > 0
