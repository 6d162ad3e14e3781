"""Monitoring on synthetic actuals that arrive after the forecasts were issued."""

import numpy as np
import pandas as pd
import pytest

from forecasting.config.monitor import MonitorSettings
from forecasting.errors import ForecastingError
from forecasting.ops import forecast_log, monitor

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
SETTINGS = MonitorSettings(windows_days=(7, 30), mase_factor=1.5, coverage_band=0.15)
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


# --- Per-version settings -----------------------------------------------------------------


def test_each_version_is_held_to_its_own_season_and_interval():
    """v1 issues an 80% interval and was backtested with season 7; v2 a 90% interval and season 1."""
    v1 = issued(range(200, 230))
    v2 = issued(range(230, 260), half_width=1.645 * NOISE).rename(columns={"q0.1": "q0.05", "q0.9": "q0.95"})
    log = pd.concat([v1, v2.assign(model_version="2")], ignore_index=True)  # v1 rows have NaN q0.05/q0.95
    obs = actuals()
    report = monitor.evaluate(log, obs, season={"1": SEASON, "2": 1}, promised={"1": 0.75, "2": 0.75},
                              settings=MonitorSettings(windows_days=(60,)))
    assert not any("coverage" in a for a in report.alerts), report.alerts
    nominal = report.versions.drop_duplicates("model_version").set_index("model_version")["nominal"]
    assert nominal.to_dict() == {"1": pytest.approx(0.8), "2": pytest.approx(0.9)}
    coverage = report.versions.set_index("model_version")["coverage"]
    assert abs(coverage["1"] - 0.8) < 0.12 and abs(coverage["2"] - 0.9) < 0.12
    row = report.scored[(report.scored["model_version"] == "2") & (report.scored["series_id"] == "s0")].iloc[0]
    history = obs.loc[(obs["series_id"] == "s0") & (obs["timestamp"] <= row["origin"]), "target"].to_numpy()
    assert row["scaled"] == pytest.approx(row["abs_error"] / np.mean(np.abs(np.diff(history))))  # season 1: naive
    assert set(report.scored.groupby("model_version")["season"].first().items()) == {("1", SEASON), ("2", 1)}


def test_a_version_without_a_season_is_an_error():
    with pytest.raises(ForecastingError, match="no season length given for model version 1"):
        monitor.score_forecasts(issued(range(200, 201)), actuals(), season={"2": 7})


# --- Season-aware drift -------------------------------------------------------------------

YEARS = pd.date_range("2012-01-01", "2015-12-31", freq="D", tz="UTC")


def yearly(shift_last_days: int = 0, shift: float = 0.0, seed: int = 1) -> pd.DataFrame:
    """Daily temperature-like series: a yearly cycle of +/-8 around 15, noise 1.5."""
    rng = np.random.default_rng(seed)
    doy = YEARS.day_of_year.to_numpy()
    y = 15.0 - 8.0 * np.cos(2 * np.pi * (doy - 15) / 365.25) + 1.5 * rng.standard_normal(len(YEARS))
    if shift_last_days:
        y[-shift_last_days:] += shift
    return pd.DataFrame({"series_id": "city", "timestamp": YEARS, "target": y})


def december_drift(frame: pd.DataFrame, *, reference: str = "same_season",
                   train: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> tuple[pd.DataFrame, list[str]]:
    settings = MonitorSettings(drift_reference=reference)
    start, end = train or (YEARS[0], YEARS[-1])
    return monitor.drift(frame, train_start=start, train_end=end, recent_days=30, now=YEARS[-1], freq="D",
                         settings=settings)


def test_normal_winter_is_no_drift_against_the_same_season():
    table, reasons = december_drift(yearly())
    assert reasons == []
    row = table.iloc[0]
    assert row["reference"].startswith("same season, 4 earlier years")  # Decembers 2012-2014 (+ early Jan 2012)
    assert abs(row["level_shift"]) < 0.5
    # The whole training window (summers included) calls the same December a level shift: what this replaces.
    _, whole = december_drift(yearly(), reference="training_window")
    assert any("level moved" in r and "whole training window" in r for r in whole)


def test_a_genuine_level_shift_in_the_same_season_still_trips():
    table, reasons = december_drift(yearly(shift_last_days=30, shift=3.0))  # two noise std
    assert any(r.startswith("drift in city: level moved +") and "same season" in r for r in reasons), reasons
    assert table.iloc[0]["level_shift"] > 1.0


def test_drift_falls_back_to_the_whole_window_without_an_earlier_season():
    frame = yearly()
    short = (YEARS[-200], YEARS[-1])  # training spans 200 days: no December a year earlier
    table, _ = december_drift(frame, train=short)
    assert table.iloc[0]["reference"] == monitor.WHOLE_WINDOW
    assert table.iloc[0]["reference_points"] == 200


def test_alert_key_names_model_version_and_period():
    end = pd.Timestamp("2015-12-28", tz="UTC")
    assert monitor.alert_key("m", "3", end) == "monitor-alert/m/v3/2015-12-28T00:00Z"
    assert monitor.alert_key("m", "3", end) != monitor.alert_key("m", "3", end + pd.Timedelta(days=1))


def test_summary_markdown_shows_drift_reference_and_notes():
    report = run(issued(range(200, 260)), actuals(shift_from=250, shift=8.0))
    text = monitor.markdown("m", report, notes=["Retrain started: flow run x"])
    assert "compared with" in text and "same season" not in text  # 300 days of training: whole window
    assert text.rstrip().endswith("Retrain started: flow run x")
    assert "Period ends 2024-09-23" in text


def test_the_retrain_policy_is_once_per_alert_and_only_when_switched_on():
    import pandas as pd

    from forecasting.ops.monitor import MonitorReport, retrain_decision

    empty = pd.DataFrame()

    def report(alerts):
        return MonitorReport(scored=empty, versions=empty, detail=empty, drift=empty, alerts=alerts)

    key = "monitor-alert/m/v1/2024-01-01T00:00Z"
    assert retrain_decision(report([]), key=key, retrain_on_alert=True).status == "no-alert"
    alerting = report(["mase ratio 1.8 > 1.5"])
    assert retrain_decision(alerting, key=key, retrain_on_alert=False).status == "off"
    assert retrain_decision(alerting, key=key, retrain_on_alert=True).start
    again = retrain_decision(alerting, key=key, retrain_on_alert=True, started_key=key, started_run="run-7")
    assert (again.start, again.status) == (False, "already-started") and "run-7" in again.message
    assert retrain_decision(alerting, key=key, retrain_on_alert=True, started_key="monitor-alert/m/v1/older").start
