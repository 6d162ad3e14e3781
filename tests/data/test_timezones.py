"""Daily series recorded in a zone live on that zone's calendar: ingest, gaps, windows and forecasts agree.

A Kolkata day starts at 18:30 UTC the day before; a New York session starts at
05:00 UTC in winter and 04:00 UTC after the March DST change. Storage stays UTC.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from forecasting.config.ingest import parse_ingest_config
from forecasting.data.calendar import Grid, gap_breaks, infer_freq, next_points
from forecasting.data.ingest import check_outcome, ingest
from forecasting.data.quarantine import Quarantine
from forecasting.data.store import ObservationStore
from forecasting.errors import ConfigError, ForecastingError
from forecasting.prep.features import horizon_timestamps
from forecasting.prep.windows import SeriesPanel


def _files(path, **overrides) -> object:
    raw = {"source": "files", "path": str(path), "dataset": "local", "series_id": "x", "freq": "D",
           "columns": {"date": "timestamp", "value": "target"}, **overrides}
    return parse_ingest_config(raw)


def _kolkata_csv(path, days: pd.DatetimeIndex):
    values = 20 + np.sin(np.arange(len(days)) / 7)
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "value": values}).to_csv(path, index=False)
    return path


def _nyse_csv(path, start: str, end: str):
    sessions = Grid("XNYS").points(pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"))
    frame = pd.DataFrame({"Date": sessions.strftime("%Y-%m-%d"), "Close": 100 + np.arange(len(sessions)) * 0.1})
    frame.to_csv(path, index=False)
    return path, len(sessions)


def test_kolkata_days_land_without_a_single_quarantined_row(tmp_path) -> None:
    days = pd.date_range("2013-01-01", "2016-12-31", freq="D")
    store = ObservationStore(tmp_path / "store")
    config = _files(_kolkata_csv(tmp_path / "kolkata.csv", days), timezone="Asia/Kolkata")

    (report,) = ingest(config, store)
    check_outcome([report])

    assert (report.fetched, report.added, report.quarantined, report.open_gaps) == (1461, 1461, 0, 0)
    assert Quarantine(store).read("local").empty
    stored = store.read("local")["timestamp"]
    assert stored.iloc[0] == pd.Timestamp("2012-12-31 18:30", tz="UTC")  # local midnight, stored as UTC
    assert config.grid().on_grid(stored).all() and not Grid("D").on_grid(stored).any()


def test_nyse_closes_in_new_york_land_on_the_trading_calendar_across_dst(tmp_path) -> None:
    path, n = _nyse_csv(tmp_path / "nyse.csv", "2023-01-03", "2024-12-31")
    store = ObservationStore(tmp_path / "store")
    config = _files(path, timezone="America/New_York", freq="XNYS", columns={"Date": "timestamp", "Close": "target"})

    (report,) = ingest(config, store)

    assert (report.added, report.quarantined, report.open_gaps, report.problems) == (n, 0, 0, [])
    stamps = store.read("local").set_index("timestamp")
    assert pd.Timestamp("2024-03-08 05:00", tz="UTC") in stamps.index  # Friday, EST
    assert pd.Timestamp("2024-03-11 04:00", tz="UTC") in stamps.index  # Monday, EDT
    panel = SeriesPanel.from_frame(store.read("local"))
    assert not gap_breaks(panel, "XNYS", timezone="America/New_York").any()  # weekends, holidays, DST: no gap


def test_the_utc_grid_still_rejects_local_midnights_with_the_fix_in_the_reason(tmp_path) -> None:
    days = pd.date_range("2024-01-01", periods=20, freq="D")
    config = _files(_kolkata_csv(tmp_path / "k.csv", days), timezone="Asia/Kolkata")
    frame = config.build_source().read_frame()
    assert not Grid("D").on_grid(frame["timestamp"]).any()
    assert Grid("D", "Asia/Kolkata").describe() == "'D' grid in Asia/Kolkata"


def test_grid_points_steps_and_shift_follow_the_local_calendar_over_dst() -> None:
    grid = Grid("D", "America/New_York")
    points = grid.points(pd.Timestamp("2024-03-09 05:00", tz="UTC"), pd.Timestamp("2024-03-12 04:00", tz="UTC"))
    assert [p.strftime("%d %H") for p in points] == ["09 05", "10 05", "11 04", "12 04"]
    assert grid.steps(points.tz_localize(None).to_numpy()).tolist() == [1.0, 1.0, 1.0]
    assert grid.shift(points[0], 2) == points[2]
    assert [str(d.date()) for d in grid.local_dates(points)] == ["2024-03-09", "2024-03-10", "2024-03-11", "2024-03-12"]
    hours = Grid("h", "Asia/Kolkata")  # a Kolkata hour starts at :30 UTC
    assert hours.on_grid(pd.DatetimeIndex(["2024-01-01 00:30Z", "2024-01-01 01:00Z"])).tolist() == [True, False]


def test_horizon_and_next_points_are_local_days() -> None:
    friday = np.array([np.datetime64("2024-03-08T05:00")])  # 2024-03-08 in New York
    days = horizon_timestamps(friday, "D", 4, timezone="America/New_York")
    assert pd.DatetimeIndex(days[0]).strftime("%d %H").tolist() == ["09 05", "10 05", "11 04", "12 04"]
    sessions = horizon_timestamps(friday, "XNYS", 2, timezone="America/New_York")
    assert pd.DatetimeIndex(sessions[0]).strftime("%d %H").tolist() == ["11 04", "12 04"]
    assert (next_points(friday, "XNYS", 2, timezone="America/New_York") == sessions).all()
    kolkata = np.array([np.datetime64("2024-03-09T18:30")])  # 2024-03-10 in Kolkata
    assert pd.DatetimeIndex(horizon_timestamps(kolkata, "D", 1, timezone="Asia/Kolkata")[0])[0] == pd.Timestamp("2024-03-10 18:30")


@pytest.mark.parametrize(
    "freq, zone, expected",
    [("D", "Asia/Kolkata", "D"), ("XNYS", "America/New_York", "XNYS"), ("B", "UTC", "B"), ("MS", "Europe/Berlin", "MS"), ("h", "UTC", "h")],
)
def test_the_grid_is_inferred_on_the_local_calendar(freq, zone, expected) -> None:
    grid = Grid(freq, zone)
    stamps = grid.points(pd.Timestamp("2023-01-01", tz="UTC"), pd.Timestamp("2024-12-31", tz="UTC"))
    if freq == "h":
        stamps = stamps[:500]
    assert infer_freq(pd.DataFrame({"series_id": "a", "timestamp": stamps}), zone) == expected


def test_an_unknown_zone_is_a_config_error_at_load_time(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"(?s)timezone: 'Mars/Olympus_Mons' is not an IANA time zone.*timezone: America/New_York"):
        _files(tmp_path / "x.csv", timezone="Mars/Olympus_Mons")
    with pytest.raises(ForecastingError, match="is not an IANA time zone"):
        Grid("D", "Mars/Olympus_Mons")


@pytest.mark.slow  # forecasts with the session's tiny model
@pytest.mark.parametrize(
    "zone, freq, last_local, first_utc, dates",
    [
        ("Asia/Kolkata", "D", "2024-03-10", "2024-03-10 18:30", ["2024-03-11", "2024-03-12", "2024-03-13"]),
        ("America/New_York", "XNYS", "2024-03-08", "2024-03-11 04:00", ["2024-03-11", "2024-03-12", "2024-03-13"]),
    ],
)
def test_forecasts_of_zoned_data_are_dated_on_local_days(tiny_fit, tmp_path, zone, freq, last_local, first_utc, dates) -> None:
    from forecasting.predict import forecast, write_forecasts

    _, _, result = tiny_fit
    trained = getattr(result, "forecaster", result)
    data = trained.config.data.model_copy(update={"freq": freq, "calendar_timezone": zone})
    zoned = dataclasses.replace(trained, config=trained.config.model_copy(update={"data": data}))
    grid = Grid(freq, zone)
    end = pd.Timestamp(last_local, tz=zone).tz_convert("UTC")
    stamps = grid.points(grid.shift(end, -(zoned.config.window.lookback + 10)), end)
    history = pd.DataFrame({"series_id": "x", "timestamp": stamps, "target": np.linspace(10.0, 12.0, len(stamps))})

    out = forecast(zoned, history)

    assert out["timestamp"].iloc[0] == pd.Timestamp(first_utc, tz="UTC")
    assert out["date"].dt.strftime("%Y-%m-%d").tolist()[:3] == dates
    assert grid.on_grid(out["timestamp"]).all() and np.isfinite(out["mean"]).all()
    assert list(out.columns[:5]) == ["series_id", "origin", "timestamp", "step", "mean"]  # consumers keep their columns
    written = pd.read_parquet(write_forecasts(out, tmp_path, "zoned"))
    assert written["date"].dt.strftime("%Y-%m-%d").tolist()[:3] == dates

    shifted = history.assign(timestamp=history["timestamp"] + pd.Timedelta(hours=1))  # off the local calendar
    with pytest.raises(ForecastingError, match="is not on its"):
        forecast(zoned, shifted)
    utc_model = dataclasses.replace(trained, config=trained.config.model_copy(update={"data": data.model_copy(update={"calendar_timezone": "UTC"})}))
    with pytest.raises(ForecastingError, match=r"(?s)calendar_timezone: America/New_York"):
        forecast(utc_model, history)


def test_monitoring_counts_missing_sessions_on_the_local_trading_calendar() -> None:
    from forecasting.config.monitor import MonitorSettings
    from forecasting.ops.monitor import drift

    grid = Grid("XNYS", "America/New_York")
    stamps = grid.points(pd.Timestamp("2023-01-01", tz="UTC"), pd.Timestamp("2024-03-15", tz="UTC"))
    history = pd.DataFrame({"series_id": "x", "timestamp": stamps, "target": 100 + np.sin(np.arange(len(stamps)))})
    now = stamps[-1]
    kwargs = dict(train_start=stamps[0], train_end=stamps[-60], recent_days=28, now=now, freq="XNYS",
                  settings=MonitorSettings(drift_reference="training_window"), timezone="America/New_York")

    table, reasons = drift(history, **kwargs)
    assert table["missing"].item() == 0.0 and reasons == []  # weekends, holidays and the DST change are not missing
    table, reasons = drift(history[history["timestamp"] < stamps[-10]], **kwargs)
    assert 0.4 < table["missing"].item() < 0.6 and "missing" in reasons[0]
