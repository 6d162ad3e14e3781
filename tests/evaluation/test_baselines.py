"""Baselines against arrays computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.evaluation.baselines import BASELINES, baseline_forecast, drift, mean, naive, seasonal_naive
from forecasting.errors import ForecastingError

X = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 8.0, 6.0, 4.0]])  # (B=2, lookback=4)


def test_naive_repeats_last_value():
    np.testing.assert_array_equal(naive(X, 3), [[4, 4, 4], [4, 4, 4]])


def test_seasonal_naive_repeats_last_season():
    np.testing.assert_array_equal(seasonal_naive(X, 3, season=2), [[3, 4, 3], [6, 4, 6]])
    np.testing.assert_array_equal(seasonal_naive(X, 6, season=4), [[1, 2, 3, 4, 1, 2], [10, 8, 6, 4, 10, 8]])
    np.testing.assert_array_equal(seasonal_naive(X, 2, season=1), naive(X, 2))
    with pytest.raises(ValueError, match="season 5 is longer than lookback 4"):
        seasonal_naive(X, 2, season=5)


def test_drift_extends_first_to_last_line():
    np.testing.assert_allclose(drift(X, 3), [[5, 6, 7], [2, 0, -2]])
    np.testing.assert_allclose(drift([[7.0]], 2), [[7, 7]])  # one point: no trend


def test_mean_repeats_lookback_mean():
    np.testing.assert_allclose(mean(X, 2), [[2.5, 2.5], [7, 7]])


def test_baseline_forecast_dispatches_by_name():
    assert set(BASELINES) == {"naive", "seasonal_naive", "drift", "mean"}
    np.testing.assert_array_equal(baseline_forecast("seasonal_naive", X, 3, season=2), [[3, 4, 3], [6, 4, 6]])
    np.testing.assert_allclose(baseline_forecast("drift", X, 1), [[5], [2]])
    with pytest.raises(ForecastingError, match="unknown baseline 'arima'"):
        baseline_forecast("arima", X, 2)


def test_bad_shapes_and_horizon():
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        naive(X[0], 2)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        mean(X, 0)
