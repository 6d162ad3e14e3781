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
