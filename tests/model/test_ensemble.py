"""Ensembles as a first-class model: members by seed and lookback, combined by median, served as one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.config.model import parse_config
from forecasting.errors import ConfigError
from tests.conftest import synthetic_frame, tiny_config_dict

ENSEMBLE = {"members": 3, "lookbacks": [24, 48]}


def _config(**ensemble):
    return parse_config(
        tiny_config_dict(name="tiny-ensemble", model={"ensemble": {**ENSEMBLE, **ensemble}}, training={"max_epochs": 1})
    )


def test_members_differ_by_seed_and_take_the_lookbacks_in_turn():
    members = _config().member_configs()
    assert [m.training.seed for m in members] == [42, 43, 44]
    assert [m.window.lookback for m in members] == [24, 48, 24]
    assert all(m.model.ensemble is None for m in members)


def test_member_lookbacks_are_checked_against_the_window_and_the_season():
    raw = tiny_config_dict(model={"ensemble": {"members": 2, "lookbacks": [12, 96]}})
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    text = str(err.value)
    assert "[96] exceed window.lookback 48" in text
    assert "[12] are shorter than baseline.season_length 24" in text


@pytest.fixture(scope="module")
def ensemble_fit():
    from forecasting.train import fit

    frame = synthetic_frame()
    return frame, fit(_config(), frame)


@pytest.mark.slow
def test_the_forecast_is_the_median_of_the_members(ensemble_fit):
    from forecasting.predict import forecast

    frame, result = ensemble_fit
    trained = result.forecaster
    assert len(trained.members) == 3 and trained.is_ensemble
    combined = forecast(trained, frame)
    each = np.stack([forecast(m, frame)["mean"].to_numpy() for m in trained.members])  # (members, rows)
    np.testing.assert_allclose(combined["mean"].to_numpy(), np.median(each, axis=0), rtol=1e-6)
    assert not np.allclose(each[0], each[1])  # the members really differ
    # scored like one model, with each member's validation error on record
    assert {"val_mae", "test_mae", "member_0_val_mae", "member_2_val_mae"} <= set(trained.metrics)
    assert [m["lookback"] for m in trained.meta["ensemble"]] == [24, 48, 24]


@pytest.mark.slow
def test_an_ensemble_round_trips_through_files_and_the_registry(ensemble_fit, mlflow_store, tmp_path):
    from forecasting.model.forecaster import TrainedForecaster
    from forecasting.predict import forecast, latest_history
    from forecasting.registry import models as registry

    frame, result = ensemble_fit
    trained = result.forecaster
    expected = forecast(trained, frame)

    back = TrainedForecaster.load(trained.save(tmp_path / "saved"))
    assert len(back.members) == 3
    pd.testing.assert_frame_equal(forecast(back, frame), expected)

    history = latest_history(frame, trained.config.window.lookback)
    ref = registry.log_and_register(trained, history_example=history, artifacts_dir=mlflow_store / "a")
    served = registry.load(ref.name).pyfunc.predict(history)  # ONE version, one pyfunc
    assert ref.version == "1"
    np.testing.assert_allclose(served["mean"].to_numpy(), expected["mean"].to_numpy(), rtol=1e-6)


@pytest.mark.slow
def test_a_combination_with_statistical_members_and_a_backtest(ensemble_fit):
    from forecasting.config.backtest import BacktestConfig
    from forecasting.evaluation.backtest import backtest
    from forecasting.evaluation.report import score_backtest
    from forecasting.predict import forecast

    frame, result = ensemble_fit
    trained = result.forecaster
    comb = trained.__class__(
        config=_config(statistical=["theta"]), scaler=trained.scaler, state_dict={}, members=trained.members
    )
    nets = forecast(trained, frame)["mean"].to_numpy()
    with_theta = forecast(comb, frame)["mean"].to_numpy()
    assert not np.allclose(nets, with_theta)  # the theta forecast joined the median

    scores = score_backtest(backtest(frame, BacktestConfig(origins=3), trained=trained, model_version="1"))
    assert np.isfinite(scores.summary.set_index("forecaster").loc["model", "mae"])
