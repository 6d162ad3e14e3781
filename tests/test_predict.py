import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ForecastingError
from forecasting.predict import forecast, latest_history, write_forecasts
from tests.conftest import synthetic_frame


def test_one_finite_row_per_series_and_step(tiny_fit):
    config, frame, result = tiny_fit
    out = forecast(result.forecaster, frame)
    h = config.window.horizon
    assert len(out) == 3 * h
    assert list(out.columns) == ["series_id", "origin", "timestamp", "step", "mean"]
    assert np.isfinite(out["mean"]).all()
    for sid, group in out.groupby("series_id"):
        last = frame.loc[frame["series_id"] == sid, "timestamp"].max()
        assert (group["origin"] == last).all()
        assert list(group["step"]) == list(range(1, h + 1))
        expected = pd.date_range(last, periods=h + 1, freq="h")[1:]
        assert (group["timestamp"].to_numpy() == expected.to_numpy()).all()
    # Forecasts are in original units: each series sits at its own level (10, 20, 30).
    means = out.groupby("series_id")["mean"].mean().to_numpy()
    assert np.allclose(means, [10, 20, 30], atol=3.5)


def test_only_the_last_lookback_points_matter(tiny_fit):
    config, frame, result = tiny_fit
    full = forecast(result.forecaster, frame)
    tail = forecast(result.forecaster, latest_history(frame, config.window.lookback))
    assert np.allclose(full["mean"], tail["mean"])


def test_shorter_horizon_and_bad_horizon(tiny_fit):
    _, frame, result = tiny_fit
    assert forecast(result.forecaster, frame, horizon=3)["step"].max() == 3
    with pytest.raises(ForecastingError, match="horizon 99 is outside 1..12"):
        forecast(result.forecaster, frame, horizon=99)


def test_short_history_lists_every_short_series(tiny_fit):
    _, frame, result = tiny_fit
    short = pd.concat([latest_history(frame, 10)])
    with pytest.raises(ForecastingError) as err:
        forecast(result.forecaster, short)
    for sid in ("synthetic/s0", "synthetic/s1", "synthetic/s2"):
        assert f"series '{sid}' has 10 points" in str(err.value)


def test_unseen_series_is_scaled_on_its_own_history(tiny_fit):
    _, _, result = tiny_fit
    new = synthetic_frame(n_series=1, seed=5).assign(series_id="synthetic/new", target=lambda f: f["target"] + 100)
    out = forecast(result.forecaster, new)
    assert abs(out["mean"].mean() - 110) < 5


def test_write_is_atomic_and_rerun_replaces(tiny_fit, tmp_path):
    _, frame, result = tiny_fit
    out = forecast(result.forecaster, frame).assign(model_name="m", model_version="1", run_id="r")
    path = write_forecasts(out, tmp_path, "m")
    again = write_forecasts(out, tmp_path, "m")
    assert path == again
    files = list((tmp_path / "m").iterdir())
    assert files == [path]  # no temp files left, no second copy
    back = pd.read_parquet(path)
    assert len(back) == len(out)
    assert not back.duplicated(["series_id", "origin", "step"]).any()


def test_non_finite_forecasts_are_refused(tiny_fit, tmp_path):
    _, frame, result = tiny_fit
    out = forecast(result.forecaster, frame)
    out.loc[0, "mean"] = np.nan
    with pytest.raises(ForecastingError, match="synthetic/s0"):
        write_forecasts(out, tmp_path, "m")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def _fit(**overrides):
    from forecasting.config.model import parse_config
    from forecasting.train import fit
    from tests.conftest import tiny_config_dict

    raw = tiny_config_dict(**overrides)
    raw["training"] = {**raw["training"], "max_epochs": 2, "num_threads": 1}
    config = parse_config(raw)
    frame = synthetic_frame(covariates=("promo",))
    return config, frame, fit(config, frame).forecaster


@pytest.fixture(scope="module")
def rich():
    """Quantiles, a calendar feature, a user-supplied future covariate and short-series padding."""
    return _fit(
        data={"calendar": ["hour_of_day"], "future_covariates": ["promo"]},
        model={"quantiles": [0.1, 0.5, 0.9]},
        window={"min_length": 24},
    )


def _future_for(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    parts = []
    for sid, group in frame.groupby("series_id"):
        stamps = pd.date_range(group["timestamp"].max(), periods=horizon + 1, freq="h")[1:]
        parts.append(pd.DataFrame({"series_id": sid, "timestamp": stamps, "promo": np.cos(np.arange(horizon))}))
    return pd.concat(parts, ignore_index=True)


def test_quantile_forecast_columns_never_cross_and_mean_is_the_median(rich, tmp_path):
    config, frame, trained = rich
    out = forecast(trained, frame, future=_future_for(frame, 12))
    assert list(out.columns) == ["series_id", "origin", "timestamp", "step", "mean", "q0.1", "q0.5", "q0.9"]
    assert np.array_equal(out["mean"], out["q0.5"])
    assert (out["q0.1"] <= out["q0.5"]).all() and (out["q0.5"] <= out["q0.9"]).all()
    assert (out["q0.9"] > out["q0.1"]).any()
    short = forecast(trained, frame, horizon=4, future=_future_for(frame, 4))
    assert short["step"].max() == 4 and np.allclose(short["q0.9"], out.loc[out["step"] <= 4, "q0.9"])
    bad = out.copy()
    bad.loc[3, "q0.9"] = np.inf
    with pytest.raises(ForecastingError, match="non-finite forecasts for series"):
        write_forecasts(bad, tmp_path, "m")


def test_future_covariates_missing_or_short_name_series_and_timestamps(rich):
    _, frame, trained = rich
    with pytest.raises(ForecastingError) as err:
        forecast(trained, frame)
    for sid in ("synthetic/s0", "synthetic/s1", "synthetic/s2"):
        assert f"series '{sid}': ['promo'] missing at 12 timestamp(s)" in str(err.value)
    future = _future_for(frame, 12)
    gap = future[~((future["series_id"] == "synthetic/s1") & (future.index % 12 >= 10))]  # s1 lacks its last 2 steps
    with pytest.raises(ForecastingError) as err:
        forecast(trained, frame, future=gap)
    message = str(err.value)
    assert "series 'synthetic/s1': ['promo'] missing at 2 timestamp(s) (UTC): 2024-01-18 02:00, 2024-01-18 03:00" in message
    assert "synthetic/s0" not in message and "synthetic/s2" not in message
    with pytest.raises(ForecastingError, match=r"history for model 'tiny-synthetic' lacks column\(s\) \['promo'\]"):
        forecast(trained, frame.drop(columns="promo"), future=future)


def test_future_covariates_change_the_forecast(rich):
    _, frame, trained = rich
    future = _future_for(frame, 12)
    base = forecast(trained, frame, future=future)
    shifted = forecast(trained, frame, future=future.assign(promo=future["promo"] + 3.0))
    assert not np.allclose(base["mean"], shifted["mean"])  # the values are read, not ignored


def test_short_series_is_left_padded_above_min_length(rich):
    config, frame, trained = rich
    new = synthetic_frame(n_series=1, length=30, seed=7, covariates=("promo",)).assign(series_id="synthetic/listed")
    history = pd.concat([latest_history(frame, config.window.lookback), new])
    out = forecast(trained, history, future=_future_for(history, 12))
    listed = out[out["series_id"] == "synthetic/listed"]
    assert len(listed) == 12 and np.isfinite(listed[["mean", "q0.1", "q0.9"]].to_numpy()).all()
    assert abs(listed["mean"].mean() - 10.0) < 4.0  # in original units, near its level
    assert (listed["origin"] == new["timestamp"].max()).all()
    tiny = new.tail(20).assign(series_id="synthetic/tiny")
    with pytest.raises(ForecastingError) as err:
        forecast(trained, pd.concat([history, tiny]), future=_future_for(pd.concat([history, tiny]), 12))
    assert "series 'synthetic/tiny' has 20 points; model 'tiny-synthetic' needs at least 24 (window.min_length; series shorter than lookback 48 are left-padded)" in str(err.value)


def test_calendar_only_model_needs_no_future_input():
    config, frame, trained = _fit(data={"calendar": ["hour_of_day", "day_of_week"]})
    out = forecast(trained, frame.drop(columns="promo"))
    assert len(out) == 36 and np.isfinite(out["mean"]).all()
    # The same windows through predict_starts, as a backtest calls it, agree with forecast().
    from forecasting.inference import predict_starts
    from forecasting.prep.windows import SeriesPanel

    panel = SeriesPanel.from_frame(frame.drop(columns="promo"))
    got = predict_starts(trained, panel, panel.offsets[1:] - config.window.lookback)
    assert set(got) == {"mean"} and got["mean"].shape == (3, 12)
    assert np.allclose(got["mean"].reshape(-1), out["mean"])


def test_pyfunc_reads_rows_without_target_as_future_covariates(rich):
    from forecasting.registry.models import ForecasterModel

    config, frame, trained = rich
    history = latest_history(frame, config.window.lookback)
    future = _future_for(history, 12)
    model = ForecasterModel()
    model.trained, model.model_name, model.model_version, model.run_id = trained, "m", "1", "r"
    out = model.predict(None, pd.concat([history, future.assign(target=np.nan)], ignore_index=True))
    expected = forecast(trained, history, future=future)
    assert np.allclose(out["mean"], expected["mean"]) and np.allclose(out["q0.9"], expected["q0.9"])
    with pytest.raises(ForecastingError, match=r"missing at 12 timestamp\(s\)"):
        model.predict(None, history)


def test_differenced_model_reads_only_the_last_lookback_points():
    """The first change of a lookback has no predecessor in a lookback-long history; training treats it the same."""
    config, frame, trained = _fit(data={"target_transform": "log-return"})
    full = forecast(trained, frame)
    tail = forecast(trained, latest_history(frame, config.window.lookback))
    assert np.allclose(full["mean"], tail["mean"], rtol=1e-6)
    assert abs(full.groupby("series_id")["mean"].mean().to_numpy() - [10, 20, 30]).max() < 3.5


def _with_inference(trained, **settings):
    from dataclasses import replace

    from forecasting.config.model import InferenceConfig

    return replace(trained, config=trained.config.model_copy(update={"inference": InferenceConfig(**settings)}))


def _every_window(trained, frame):
    from forecasting.prep.windows import SeriesPanel

    panel = SeriesPanel.from_frame(frame[["series_id", "timestamp", "target"]])
    lookback = trained.spec.lookback
    starts = np.concatenate([np.arange(o, e - lookback + 1) for o, e in zip(panel.offsets[:-1], panel.offsets[1:], strict=True)])
    return panel, starts


def test_inference_chunk_size_does_not_change_forecasts(tiny_fit):
    """``inference.batch_size`` only sets speed and memory: 7-window chunks and the default ('auto': 128 on a
    CPU) forecast what 1,024-window passes do."""
    from forecasting.inference import predict_starts

    _, frame, result = tiny_fit
    assert result.forecaster.config.inference.batch_size == "auto"
    panel, starts = _every_window(result.forecaster, frame)
    assert len(starts) > 1000  # several chunks of every size
    whole = predict_starts(_with_inference(result.forecaster, batch_size=1024), panel, starts)["mean"]
    for size in ("auto", 7):
        small = predict_starts(_with_inference(result.forecaster, batch_size=size), panel, starts)["mean"]
        np.testing.assert_allclose(small, whole, rtol=0, atol=1e-5)


def test_auto_inference_batch_is_small_on_a_cpu_and_large_on_a_gpu():
    """'auto' follows the device (measured: 128 fastest on a CPU; a GPU needs thousands); a number is kept."""
    import torch

    from forecasting.hardware import resolve_inference_batch

    assert resolve_inference_batch("auto", torch.device("cpu")) == 128
    assert resolve_inference_batch("auto", torch.device("cuda")) == 4096
    assert resolve_inference_batch(300, torch.device("cuda")) == 300


def test_bf16_inference_runs_in_bfloat16_and_stays_close(tiny_fit):
    """``inference.precision: bf16`` really changes the arithmetic (results differ from float32) yet
    moves no forecast by more than a small fraction of the series' seasonal amplitude (3)."""
    from forecasting.inference import predict_starts

    _, frame, result = tiny_fit
    panel, starts = _every_window(result.forecaster, frame)
    fp32 = predict_starts(_with_inference(result.forecaster, precision="32"), panel, starts)["mean"]
    bf16 = predict_starts(_with_inference(result.forecaster, precision="bf16"), panel, starts)["mean"]
    assert bf16.dtype == np.float64 and np.isfinite(bf16).all()
    diff = np.abs(bf16 - fp32)
    assert diff.max() > 1e-6  # bfloat16 has 8 bits of mantissa: a float32 run would match to ~1e-6
    assert diff.max() < 0.05 * 3.0, diff.max()
    assert diff.mean() < 0.01 * 3.0, diff.mean()


def test_inference_settings_are_validated_with_the_config():
    from forecasting.config.model import parse_config
    from forecasting.errors import ConfigError
    from tests.conftest import tiny_config_dict

    with pytest.raises(ConfigError) as info:
        parse_config(tiny_config_dict(inference={"precision": "fp16", "batch_size": 0}))
    message = str(info.value)
    assert "inference.precision" in message and "inference.batch_size" in message


def test_bf16_model_still_serves_on_a_cpu_without_native_bf16(tiny_fit, monkeypatch, caplog):
    """oneDNN builds no bf16 LSTM on AVX2-only CPUs: there a bf16 model predicts in float32 and says so."""
    import logging

    from forecasting import hardware
    from forecasting.inference import predict_starts

    _, frame, result = tiny_fit
    panel, starts = _every_window(result.forecaster, frame)
    fp32 = predict_starts(_with_inference(result.forecaster, precision="32"), panel, starts)["mean"]
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)  # the probe of an AVX2-only CPU
    with caplog.at_level(logging.WARNING, logger="forecasting.hardware"):
        served = predict_starts(_with_inference(result.forecaster, precision="bf16"), panel, starts)["mean"]
        auto = predict_starts(_with_inference(result.forecaster, precision="auto"), panel, starts)["mean"]
    np.testing.assert_array_equal(served, fp32)
    np.testing.assert_array_equal(auto, fp32)  # 'auto' is float32 there, without a warning of its own
    assert caplog.text.count("no native bf16") == 1


def test_the_network_reads_a_block_of_columns_without_copying_the_table():
    """Prediction's peak memory: the past columns of the whole table are a view when they are one block
    (every column, in the usual layout), and still the right columns when they are not."""
    import numpy as np

    from forecasting.inference import _columns

    values = np.arange(24, dtype=np.float32).reshape(6, 4)
    block = _columns(values, [1, 2])
    assert np.shares_memory(block, values) and np.array_equal(block, values[:, 1:3])
    assert np.shares_memory(_columns(values, [0, 1, 2, 3]), values)
    picked = _columns(values, [0, 2])
    assert not np.shares_memory(picked, values) and np.array_equal(picked, values[:, [0, 2]])
