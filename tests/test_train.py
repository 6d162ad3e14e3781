import numpy as np
import pytest
import torch

from forecasting.config import parse_config
from forecasting.errors import DataValidationError, ForecastingError
from forecasting.train import fit, resolve_precision
from tests.conftest import synthetic_frame, tiny_config_dict


def test_training_loss_falls_on_a_learnable_series(tiny_fit):
    _, _, result = tiny_fit
    losses = [e["train_loss"] for e in result.forecaster.history]
    assert len(losses) >= 2
    assert losses[-1] < 0.5 * losses[0]


def test_metrics_are_in_original_units_and_finite(tiny_fit):
    _, frame, result = tiny_fit
    m = result.forecaster.metrics
    for key in ("val_mae", "val_rmse", "val_baseline_mae", "test_mae"):
        assert np.isfinite(m[key]), key
    # The series swing by +-3 around levels 10..30: errors in scaled units would be tiny fractions.
    assert 0.01 < m["val_mae"] < 3.0
    assert m["val_rmse"] >= m["val_mae"]
    # The validation forecasts really are in original units.
    assert abs(result.validation.actual.mean() - frame["target"].mean()) < 5.0


def test_seeded_training_is_reproducible(tiny_fit):
    config, frame, result = tiny_fit
    again = fit(config, frame)
    for key, value in result.forecaster.state_dict.items():
        assert torch.equal(value, again.forecaster.state_dict[key]), key


def test_held_out_windows_score_only_later_targets(tiny_fit):
    config, frame, result = tiny_fit
    n = frame.groupby("series_id").size().iloc[0]
    windows = result.forecaster.meta["windows"]
    val_points = max(config.window.horizon, round(config.split.val_fraction * n))
    assert windows["val"] == 3 * (val_points - config.window.horizon + 1)


def test_missing_covariate_is_one_clear_error():
    config = parse_config(tiny_config_dict(data={"covariates": ["humidity", "pressure"]}))
    with pytest.raises(ForecastingError) as err:
        fit(config, synthetic_frame())
    assert "['humidity', 'pressure']" in str(err.value)
    assert "tiny-synthetic" in str(err.value)


def test_short_series_and_nan_targets_are_named():
    config = parse_config(tiny_config_dict())
    frame = synthetic_frame(n_series=2, length=400)
    short = synthetic_frame(n_series=1, length=50).assign(series_id="synthetic/short")
    with pytest.raises(ForecastingError, match=r"series 'synthetic/short' has 50 points"):
        fit(config, __import__("pandas").concat([frame, short]))
    frame.loc[5, "target"] = np.nan
    with pytest.raises(DataValidationError, match=r"synthetic/s0.*NaN"):
        fit(config, frame)


def test_precision_auto_is_float32_on_cpu():
    config = parse_config(tiny_config_dict())
    assert resolve_precision(config) == ("bf16-mixed" if torch.cuda.is_available() else "32-true")
    explicit = parse_config(tiny_config_dict(training={"precision": "64-true"}))
    assert resolve_precision(explicit) == "64-true"
