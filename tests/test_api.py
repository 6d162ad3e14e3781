"""The Python API (forecasting/api.py, re-exported by forecasting/__init__.py): cheap to import, and the
facade forecasts exactly what the library does, after save/load and through the registry."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import forecasting
from forecasting import BacktestRun, Forecaster, backtest, fit, forecast, load_config
from forecasting.config.model import ForecasterConfig
from forecasting.errors import ConfigError, ForecastingError
from tests.conftest import REPO, synthetic_frame, tiny_config_dict

FORECAST_COLUMNS = ["series_id", "origin", "timestamp", "step", "mean"]


def test_import_loads_neither_torch_nor_mlflow():
    code = "import forecasting, sys; print('mlflow' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_using_a_name_loads_no_torch_either():
    code = (
        "import os, sys; before = dict(os.environ)\n"
        "from forecasting import Forecaster, load_config, fit, forecast, backtest\n"
        "print('mlflow' in sys.modules, 'torch' in sys.modules, 'prefect' in sys.modules, dict(os.environ) == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "False", "False", "True"]


def test_the_package_exports_the_api():
    assert set(forecasting.__all__) <= set(dir(forecasting))
    assert forecasting.Forecaster is Forecaster
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        forecasting.nope  # noqa: B018


def test_load_config_overrides_one_key_of_a_section():
    base = load_config(REPO / "configs" / "weather.yaml")
    config = load_config(REPO / "configs" / "weather.yaml", training={"max_epochs": 1}, name="renamed")
    assert config.training.max_epochs == 1 and config.name == "renamed"
    assert config.training.learning_rate == base.training.learning_rate  # the rest of the section is kept
    assert config.window == base.window


def test_a_bad_override_is_one_error_naming_it():
    with pytest.raises(ConfigError, match=r"training\.max_epoks"):
        load_config(REPO / "configs" / "weather.yaml", training={"max_epoks": 1})


def test_forecaster_takes_a_config_a_mapping_or_a_path():
    raw = tiny_config_dict()
    assert Forecaster(raw).config == Forecaster(ForecasterConfig.model_validate(raw)).config
    assert Forecaster(REPO / "configs" / "weather.yaml").config.name == "weather-seattle-hourly"
    with pytest.raises(ConfigError, match="got int"):
        Forecaster(3)  # type: ignore[arg-type]


def test_an_unfitted_forecaster_says_what_to_do():
    fc = Forecaster(tiny_config_dict())
    assert not fc.fitted and "not fitted" in repr(fc)
    with pytest.raises(ForecastingError, match=r"not fitted: call fit\(df\)"):
        fc.predict(synthetic_frame())
    with pytest.raises(ForecastingError, match="not fitted"):
        fc.save("anywhere")


def test_registry_references_are_checked_before_mlflow_is_touched():
    for bad in ("", "name/", "name/latest", "a/b/c", "name@"):
        with pytest.raises(ConfigError):
            Forecaster.from_registry(bad)


# --- Trained on tiny synthetic data ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    frame = synthetic_frame()
    fc = Forecaster(tiny_config_dict()).fit(frame, checkpoint_dir=tmp_path_factory.mktemp("ckpt"))
    return fc, frame


@pytest.mark.slow
def test_fit_predict_forecasts_every_series_from_its_last_point(fitted):
    fc, frame = fitted
    assert fc.fitted and fc.fit_result is not None and "val_mae" in fc.metrics
    horizon = fc.config.window.horizon
    out = fc.predict()
    assert list(out.columns) == FORECAST_COLUMNS
    assert len(out) == 3 * horizon and out["mean"].notna().all()
    last = frame.groupby("series_id")["timestamp"].max()
    assert (out.groupby("series_id")["origin"].first() == last).all()
    assert out.groupby("series_id")["step"].apply(list).map(lambda s: s == list(range(1, horizon + 1))).all()
    pd.testing.assert_frame_equal(fc.predict(frame), out)  # the default is the training frame
    short = fc.predict(h=5)
    assert len(short) == 3 * 5
    pd.testing.assert_frame_equal(short.reset_index(drop=True), out[out["step"] <= 5].reset_index(drop=True), check_exact=False)


@pytest.mark.slow
def test_predict_from_a_later_cut_of_the_data(fitted):
    fc, frame = fitted
    earlier = frame[frame["timestamp"] < frame["timestamp"].max() - pd.Timedelta(hours=24)]
    out = fc.predict(earlier)
    assert (out["origin"] == earlier["timestamp"].max()).all()


@pytest.mark.slow
def test_the_functions_are_the_methods(fitted):
    fc, frame = fitted
    pd.testing.assert_frame_equal(forecast(fc, frame), fc.predict(frame))
    pd.testing.assert_frame_equal(forecast(fc.fit_result, frame, 4), fc.predict(frame, h=4))
    pd.testing.assert_frame_equal(forecast(fc.trained, frame), fc.predict(frame))
    with pytest.raises(ForecastingError, match="outside 1..12"):
        fc.predict(h=13)


@pytest.mark.slow
def test_fit_is_the_same_training_as_the_method(fitted, tmp_path):
    fc, frame = fitted
    result = fit(tiny_config_dict(), frame, checkpoint_dir=tmp_path)  # same config and seed, same model on CPU
    assert result.series_ids == fc.fit_result.series_ids
    pd.testing.assert_frame_equal(forecast(result, frame), fc.predict(frame), rtol=1e-6)


@pytest.mark.slow
def test_save_load_gives_identical_forecasts(fitted, tmp_path):
    fc, frame = fitted
    path = fc.save(tmp_path / "model")
    loaded = Forecaster.load(path)
    assert loaded.config == fc.config and loaded.metrics == fc.metrics
    pd.testing.assert_frame_equal(loaded.predict(frame), fc.predict(frame), check_exact=True)
    with pytest.raises(ForecastingError, match=r"holds no training frame.*predict\(df\)"):
        loaded.predict()
    with pytest.raises(ForecastingError, match="does not exist"):
        Forecaster.load(tmp_path / "missing")


@pytest.mark.slow
def test_backtest_scores_the_model_against_the_baselines_and_writes_a_report(fitted, tmp_path):
    fc, frame = fitted
    run = fc.backtest(frame, origins=3, report_dir=tmp_path / "report")
    assert isinstance(run, BacktestRun)
    assert run.summary["forecaster"].iloc[0] == "model"
    assert {"naive", "seasonal_naive", "drift", "mean"} <= set(run.summary["forecaster"])
    assert run.result.n_windows > 0 and not run.result.in_sample.any()
    assert run.report is not None and run.report.markdown.is_file()
    again = backtest(frame, fc.trained, origins=3)
    pd.testing.assert_frame_equal(again.summary, run.summary)
    assert again.report is None


@pytest.mark.slow
def test_backtest_of_a_config_trains_per_fold(tmp_path):
    frame = synthetic_frame(n_series=2, length=300)
    config = tiny_config_dict(training={"max_epochs": 1}, baseline={"statistical": []})
    run = backtest(frame, config, origins=2)
    assert run.result.model_version is None and len(run.result.folds) == 1
    assert run.summary["forecaster"].iloc[0] == "model"


@pytest.mark.slow
def test_from_registry_serves_the_forecasts_made_in_memory(fitted, mlflow_store):
    from forecasting.predict import latest_history
    from forecasting.registry import models as registry

    fc, frame = fitted
    example = latest_history(frame, fc.config.window.lookback)
    ref = registry.log_and_register(fc.trained, history_example=example, artifacts_dir=mlflow_store / "artifacts")
    expected = fc.predict(frame)

    champion = Forecaster.from_registry(f"{ref.name}@champion")
    assert champion.ref is not None and (champion.ref.version, champion.ref.run_id) == (ref.version, ref.run_id)
    pd.testing.assert_frame_equal(champion.predict(frame), expected, check_exact=True)
    by_version = Forecaster.from_registry(f"models:/{ref.name}/{ref.version}")
    pd.testing.assert_frame_equal(by_version.predict(frame), expected, check_exact=True)
    assert Forecaster.from_registry(ref.name).ref.version == ref.version  # NAME alone is the champion

    served = registry.load(ref.name).predict(frame)  # the pyfunc adds lineage columns, same numbers
    pd.testing.assert_frame_equal(served[FORECAST_COLUMNS], expected, check_exact=True)

    with pytest.raises(ForecastingError, match="no alias 'nope'"):
        Forecaster.from_registry(f"{ref.name}@nope")
    with pytest.raises(ForecastingError, match="has no version 7"):
        Forecaster.from_registry(f"{ref.name}/7")
