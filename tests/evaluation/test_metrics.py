"""Metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.errors import ForecastingError
from forecasting.evaluation.metrics import by_step, mae, mase, rmse, smape


def test_mae_and_rmse():
    actual, pred = [1.0, 2.0, 3.0], [2.0, 2.0, 5.0]  # errors 1, 0, 2
    assert mae(actual, pred) == pytest.approx(1.0)
    assert rmse(actual, pred) == pytest.approx(math.sqrt(5.0 / 3.0))
    assert isinstance(mae(actual, pred), float)


def test_smape_m4_definition_with_zero_terms():
    # terms: 0/0 -> 0; 200*1/3; 200*0/8 = 0; 200*1/1 (actual 0, pred 1) = 200
    assert smape([0.0, 2.0, 4.0, 0.0], [0.0, 1.0, 4.0, 1.0]) == pytest.approx((200.0 / 3.0 + 200.0) / 4.0)
    assert smape([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert smape([1.0], [-1.0]) == pytest.approx(200.0)  # the upper bound


def test_mase_against_seasonal_naive_scale():
    insample = [1.0, 3.0, 2.0, 5.0]
    # lag 1 diffs 2, 1, 3 -> scale 2; MAE of (6,7) vs (5,9) is 1.5
    assert mase([6.0, 7.0], [5.0, 9.0], insample=insample) == pytest.approx(0.75)
    # lag 2 diffs |2-1|, |5-3| -> scale 1.5
    assert mase([6.0, 7.0], [5.0, 9.0], insample=insample, season=2) == pytest.approx(1.0)


def test_mase_scales_each_row_by_its_own_history():
    insample = [[0.0, 1.0, 2.0], [0.0, 4.0, 8.0]]  # scales 1 and 4
    actual, pred = [[1.0, 1.0], [1.0, 1.0]], [[2.0, 3.0], [5.0, 5.0]]  # row MAE 1.5 and 4
    assert mase(actual, pred, insample=insample) == pytest.approx((1.5 / 1 + 4 / 4) / 2)


def test_mase_constant_insample_raises():
    with pytest.raises(ForecastingError, match="constant at lag 1"):
        mase([1.0], [2.0], insample=[3.0, 3.0, 3.0])
    with pytest.raises(ForecastingError, match=r"rows \[1\] are constant at lag 2"):
        mase([[1.0], [1.0]], [[2.0], [2.0]], insample=[[1.0, 2.0, 3.0], [1.0, 2.0, 1.0]], season=2)
    with pytest.raises(ForecastingError, match="more than season 3"):
        mase([1.0], [2.0], insample=[1.0, 2.0, 3.0], season=3)


@pytest.mark.parametrize("metric", [mae, rmse, smape])
def test_shape_mismatch_names_both_shapes(metric):
    with pytest.raises(ValueError, match=r"actual has shape \(3,\) but pred has shape \(2,\)"):
        metric([1.0, 2.0, 3.0], [1.0, 2.0])


def test_by_step_per_horizon_column():
    actual = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    pred = np.array([[1.0, 4.0, 0.0], [1.0, 2.0, 6.0]])
    np.testing.assert_allclose(by_step(mae, actual, pred), [0.0, 1.0, 3.0])
    np.testing.assert_allclose(by_step(mase, actual, pred, insample=[0.0, 2.0]), [0.0, 0.5, 1.5])
    with pytest.raises(ValueError, match="batch, horizon"):
        by_step(mae, [1.0], [1.0])


# --- pinball, coverage, rolling MASE scales and competition-style aggregation ---

from forecasting.evaluation.metrics import (  # noqa: E402
    competition_mean,
    interval_coverage,
    interval_hits,
    pinball,
    pinball_terms,
    scaled_errors,
    seasonal_naive_scale,
    series_step_mean,
    smape_terms,
)


def test_pinball_by_hand():
    # y - f = 1 (under-forecast) and -2 (over-forecast)
    # q = 0.1: max(0.1, -0.9) = 0.1 and max(-0.2, 1.8) = 1.8 -> mean 0.95
    assert pinball([1.0, 2.0], [0.0, 4.0], quantile=0.1) == pytest.approx(0.95)
    # q = 0.9: max(0.9, -0.1) = 0.9 and max(-1.8, 0.2) = 0.2 -> mean 0.55
    assert pinball([1.0, 2.0], [0.0, 4.0], quantile=0.9) == pytest.approx(0.55)
    # the median's pinball loss is half the MAE
    assert pinball([1.0, 2.0, 3.0], [2.0, 2.0, 5.0], quantile=0.5) == pytest.approx(0.5 * mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]))
    assert pinball([3.0], [3.0], quantile=0.3) == 0.0
    np.testing.assert_allclose(pinball_terms([1.0, 2.0], [0.0, 4.0], quantile=0.1), [0.1, 1.8])


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, True, "0.5"])
def test_pinball_rejects_levels_outside_0_1_naming_the_value(bad):
    with pytest.raises(ValueError, match=f"quantile must be a number in \\(0, 1\\), got {bad!r}"):
        pinball([1.0], [1.0], quantile=bad)


def test_interval_coverage_is_closed_and_counts_hits():
    actual = [1.0, 2.0, 3.0, 4.0]
    lower = [0.0, 2.0, 3.5, 0.0]  # hit (inside), hit (on the lower edge), miss (below), hit (on the upper edge)
    upper = [2.0, 3.0, 4.0, 4.0]
    assert interval_coverage(actual, lower, upper) == pytest.approx(0.75)
    np.testing.assert_array_equal(interval_hits(actual, lower, upper), [1.0, 1.0, 0.0, 1.0])
    assert interval_coverage([5.0], [5.0], [5.0]) == 1.0  # a degenerate interval still covers its point


def test_interval_coverage_refuses_crossed_bounds_and_propagates_nan():
    with pytest.raises(ValueError, match=r"interval bounds cross at 1 point\(s\), first at index \[1\]"):
        interval_coverage([1.0, 2.0], [0.0, 3.0], [2.0, 2.5])
    assert math.isnan(interval_coverage([1.0, np.nan], [0.0, 0.0], [2.0, 2.0]))


def test_smape_terms_zero_over_zero_is_a_perfect_forecast():
    np.testing.assert_allclose(smape_terms([0.0, 2.0, 0.0], [0.0, 1.0, 1.0]), [0.0, 200.0 / 3.0, 200.0])


def test_seasonal_naive_scale_matches_mase_insample_per_history():
    values = np.array([1.0, 3.0, 2.0, 5.0, 0.0, 4.0, 4.0, 7.0])
    starts, ends = np.array([0, 0, 4, 1]), np.array([4, 3, 8, 6])
    scales = seasonal_naive_scale(values, starts, ends, season=1)
    # [1,3,2,5]: diffs 2,1,3 -> 2;  [1,3,2]: 2,1 -> 1.5;  [0,4,4,7]: 4,0,3 -> 7/3;  [3,2,5,0,4]: 1,3,5,4 -> 3.25
    np.testing.assert_allclose(scales, [2.0, 1.5, 7.0 / 3.0, 3.25])
    # the same denominators MASE uses with the explicit history
    for s, a, e in zip(scales, starts, ends, strict=True):
        assert mase([9.0], [8.0], insample=values[a:e]) == pytest.approx(1.0 / s)
    # season 2 on [1,3,2,5]: |2-1|, |5-3| -> 1.5
    assert seasonal_naive_scale(values, [0], [4], season=2)[0] == pytest.approx(1.5)


def test_seasonal_naive_scale_constant_and_short_histories():
    values = np.array([2.0, 2.0, 2.0, 1.0, 5.0])
    assert seasonal_naive_scale(values, [0], [3], season=1)[0] == 0.0  # constant: 0, refused by scaled_errors
    with pytest.raises(ForecastingError, match=r"history 1 has 2 \(1 histories are that short\)"):
        seasonal_naive_scale(values, [0, 3], [4, 5], season=2)


def test_mase_with_precomputed_scale_and_zero_scale_error():
    assert mase([6.0, 7.0], [5.0, 9.0], scale=2.0) == pytest.approx(mase([6.0, 7.0], [5.0, 9.0], insample=[1.0, 3.0, 2.0, 5.0]))
    # per-row scales: row errors (1, 2) / 1 and (4, 4) / 4
    assert mase([[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [4.0, 4.0]], scale=[1.0, 4.0]) == pytest.approx((1.5 + 1.0) / 2)
    with pytest.raises(ForecastingError, match=r"scale rows \[1\] are 0"):
        scaled_errors([[1.0], [1.0]], [[2.0], [2.0]], scale=[1.0, 0.0])
    with pytest.raises(ValueError, match="exactly one of insample= or scale="):
        mase([1.0], [2.0])
    with pytest.raises(ValueError, match="exactly one of insample= or scale="):
        mase([1.0], [2.0], insample=[1.0, 2.0], scale=1.0)


def test_series_step_mean_and_competition_mean_weigh_every_series_equally():
    # series 7 has two windows, series 3 one; columns are horizon steps
    terms = np.array([[1.0, 2.0], [3.0, 6.0], [10.0, 20.0]])
    labels, table = series_step_mean(terms, [7, 7, 3])
    np.testing.assert_array_equal(labels, [3, 7])
    np.testing.assert_allclose(table, [[10.0, 20.0], [2.0, 4.0]])
    per_step, overall = competition_mean(table)
    np.testing.assert_allclose(per_step, [6.0, 12.0])  # mean over series at each step
    assert overall == pytest.approx(9.0)  # then over steps; a pooled mean would give 7.0
    assert terms.mean() == pytest.approx(7.0)
    with pytest.raises(ValueError, match="one series label per row"):
        series_step_mean(terms, [1, 2])
    with pytest.raises(ValueError, match="non-empty"):
        competition_mean(np.empty((0, 2)))


def test_seasonal_naive_scale_leaves_padding_out_and_it_poisons_no_other_history():
    from forecasting.evaluation.metrics import seasonal_naive_scale

    padded = np.r_[np.nan, np.nan, 1.0, 3.0, 2.0, 6.0]  # a left-padded series: |3-1|, |2-3|, |6-2| -> 7/3
    other = np.array([1.0, 2.0, 4.0, 7.0])  # the next series in the same array: 1, 2, 3 -> 2
    values = np.r_[padded, other]
    scale = seasonal_naive_scale(values, np.array([0, 6]), np.array([6, 10]), season=1)
    np.testing.assert_allclose(scale, [7 / 3, 2.0])
