"""Monitoring on synthetic actuals that arrive after the forecasts were issued."""

import numpy as np
import pandas as pd
import pytest

from forecasting import forecast_log, monitor

SEASON = 7
NOISE = 1.0
START = pd.Timestamp("2024-01-01", tz="UTC")


def signal(t: np.ndarray, level: float) -> np.ndarray:
    return level + 5.0 * np.sin(2 * np.pi * t / SEASON)


def actuals(length: int = 300, *, shift_from: int | None = None, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for i, level in enumerate((20.0, 50.0)):
        t = np.arange(length)
        y = signal(t, level) + NOISE * rng.standard_normal(length)
        if shift_from is not None:
            y[t >= shift_from] += shift
        frames.append(pd.DataFrame({"series_id": f"s{i}", "timestamp": START + pd.to_timedelta(t, "D"), "target": y}))
    return pd.concat(frames, ignore_index=True)


def issued(origins: range, *, horizon: int = 7, half_width: float = 1.2816 * NOISE) -> pd.DataFrame:
    """What a model that knows the signal would issue: the signal, with a nominal 80% interval."""
    rows = []
    for i, level in enumerate((20.0, 50.0)):
        for o in origins:
            t = o + np.arange(1, horizon + 1)
            mean = signal(t, level)
            rows.append(pd.DataFrame({
                "series_id": f"s{i}", "origin": START + pd.Timedelta(days=o), "timestamp": START + pd.to_timedelta(t, "D"),
                "step": np.arange(1, horizon + 1), "mean": mean, "q0.1": mean - half_width, "q0.9": mean + half_width,
                "model_name": "m", "model_version": "1", "run_id": "r",
            }))
    return pd.concat(rows, ignore_index=True)


PROMISED = {"1": 0.75}  # E|noise| / seasonal-naive MAE of noise ~ 0.80 / 1.13
SETTINGS = monitor.MonitorSettings(windows_days=(7, 30), mase_factor=1.5, coverage_band=0.15)
TRAIN = (START, START + pd.Timedelta(days=199))


def run(log: pd.DataFrame, obs: pd.DataFrame) -> monitor.MonitorReport:
    return monitor.evaluate(log, obs, season=SEASON, promised=PROMISED, settings=SETTINGS,
                            training_window=TRAIN, freq="D")


def test_well_behaved_model_stays_quiet():
    report = run(issued(range(200, 260)), actuals())
    assert report.alerts == []
    thirty = report.versions.set_index("window_days").loc[30]
    assert 0.5 < thirty["mase"] / PROMISED["1"] < 1.3
    assert abs(thirty["coverage"] - 0.8) < 0.1
    assert abs(thirty["bias"]) < 0.3
    assert set(report.detail["step"]) == set(range(1, 8))
    assert set(report.detail["series_id"]) == {"s0", "s1"}


def test_mase_uses_the_backtest_scale():
    obs = actuals()
    report = run(issued(range(200, 201), horizon=1), obs)
    row = report.scored[report.scored["series_id"] == "s0"].iloc[0]
    history = obs.loc[(obs["series_id"] == "s0") & (obs["timestamp"] <= row["origin"]), "target"].to_numpy()
    scale = np.mean(np.abs(history[SEASON:] - history[:-SEASON]))
    assert row["scaled"] == pytest.approx(abs(row["mean"] - row["actual"]) / scale)


def test_level_shift_in_actuals_raises_the_alert():
    report = run(issued(range(200, 260)), actuals(shift_from=250, shift=8.0))
    assert report.alert
    text = " ".join(report.alerts)
    assert "realised MASE" in text and "last 7 days" in text
    assert "drift in s0: level moved" in text
    seven = report.versions.set_index("window_days").loc[7]
    assert seven["bias"] < -5  # forecasts now far too low


def test_too_narrow_intervals_raise_the_alert():
    report = run(issued(range(200, 260), half_width=0.2 * NOISE), actuals())
    assert any("interval coverage" in a for a in report.alerts)
    assert not any("realised MASE" in a for a in report.alerts)  # the point forecasts are as good as ever
    assert report.versions["coverage"].max() < 0.4


def test_forecasts_whose_actuals_have_not_arrived_are_not_scored():
    log = issued(range(200, 260))
    obs = actuals(length=240)  # actuals through day 239 only
    report = run(log, obs)
    last_actual = obs["timestamp"].max()
    assert report.scored["timestamp"].max() == last_actual
    assert len(report.scored) == int((log["timestamp"] <= last_actual).sum())
    assert len(report.scored) < len(log)
    obs.loc[obs["timestamp"] == last_actual, "target"] = np.nan  # a late value counts as not arrived
    assert run(log, obs).scored["timestamp"].max() < last_actual


def test_rerun_over_the_same_period_is_idempotent(tmp_path):
    forecast_log.append(tmp_path, issued(range(200, 230)))
    forecast_log.append(tmp_path, issued(range(200, 230)))  # the same batches logged again
    obs = actuals()
    first = run(forecast_log.read(tmp_path, "m"), obs)
    second = run(forecast_log.read(tmp_path, "m"), obs)
    assert len(first.scored) == 2 * 30 * 7
    pd.testing.assert_frame_equal(first.versions, second.versions)
    pd.testing.assert_frame_equal(first.detail, second.detail)


def test_missing_values_feed_the_drift_alert():
    obs = actuals()
    recent = obs["timestamp"] > obs["timestamp"].max() - pd.Timedelta(days=30)
    obs = obs[~(recent & (obs["series_id"] == "s1") & (obs.index % 2 == 0))]
    report = run(issued(range(200, 260)), obs)
    assert [a for a in report.alerts if a.startswith("drift")] == [a for a in report.alerts if "s1" in a and "missing" in a]
    assert report.drift.set_index("series_id").loc["s1", "missing"] == pytest.approx(0.5, abs=0.05)


def test_no_promise_means_no_ratio_alert():
    report = monitor.evaluate(issued(range(200, 260)), actuals(shift_from=250, shift=8.0), season=SEASON,
                              promised={}, settings=SETTINGS)
    assert report.versions["promised_mase"].isna().all()
    assert not any("realised MASE" in a for a in report.alerts)


def test_promised_mase_from_tags():
    assert monitor.promised_mase({"monitor.promised_mase": "0.9"}) == 0.9
    assert monitor.promised_mase({"promotion.metric": "mase", "promotion.challenger_score": "0.8"}) == 0.8
    assert np.isnan(monitor.promised_mase({"promotion.metric": "mae", "promotion.challenger_score": "3.1"}))
