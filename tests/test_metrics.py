"""Metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.errors import ForecastingError
from forecasting.metrics import by_step, mae, mase, rmse, smape


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
