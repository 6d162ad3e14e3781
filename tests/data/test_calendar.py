"""Grids, the NYSE trading calendar, the gap policy and gap breaks for windowing."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from forecasting.data.calendar import GapPolicy, Grid, gap_breaks, nyse_closures, offset_for, regularize
from forecasting.data.sources.bundled import load_bundled
from forecasting.errors import ForecastingError
from forecasting.prep.windows import SeriesPanel


def _utc(*days: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(d, tz="UTC") for d in days]


@pytest.mark.parametrize(
    "day, why",
    [
        ("2001-09-11", "September 11"), ("2001-09-12", "September 11"), ("2001-09-13", "September 11"),
        ("2001-09-14", "September 11"), ("2012-10-29", "Hurricane Sandy"), ("2012-10-30", "Hurricane Sandy"),
        ("2004-06-11", "Reagan funeral"), ("2007-01-02", "Ford funeral"), ("2018-12-05", "Bush funeral"),
        ("2012-04-06", "Good Friday"), ("2012-07-04", "Independence Day"), ("2010-07-05", "July 4 on a Sunday"),
        ("2015-07-03", "July 4 on a Saturday"), ("2010-12-24", "Christmas on a Saturday"), ("2012-01-02", "New Year on a Sunday"),
        ("2012-01-16", "Martin Luther King Jr. Day"), ("2012-02-20", "Washington's Birthday"), ("2012-05-28", "Memorial Day"),
        ("2012-09-03", "Labor Day"), ("2012-11-22", "Thanksgiving"), ("2022-06-20", "Juneteenth on a Sunday"),
    ],
)
def test_known_nyse_closures_are_not_sessions(day, why) -> None:
    stamp = pd.Timestamp(day, tz="UTC")
    assert not Grid("XNYS").on_grid(pd.DatetimeIndex([stamp]))[0], why
    assert pd.Timestamp(day) in nyse_closures()


@pytest.mark.parametrize(
    "day, why",
    [
        ("2010-12-31", "New Year 2011 on a Saturday closes no Friday"), ("1997-01-20", "MLK Day before NYSE observed it (1998)"),
        ("2012-10-31", "reopened after Sandy"), ("2001-09-17", "reopened after September 11"), ("2012-11-23", "day after Thanksgiving"),
        ("2021-06-18", "Juneteenth before 2022"),
    ],
)
def test_days_that_look_like_holidays_but_traded_are_sessions(day, why) -> None:
    assert Grid("XNYS").on_grid(pd.DatetimeIndex(_utc(day)))[0], why


def test_sessions_match_the_bundled_real_stock_data_2000_to_2013() -> None:
    stocks = load_bundled("stocks")
    aapl = pd.DatetimeIndex(stocks.loc[stocks["series_id"] == "stock/AAPL", "timestamp"])
    sessions = Grid("XNYS").points(aapl[0], aapl[-1])
    assert len(aapl) == 3270
    assert sessions.equals(aapl)


def test_offset_for_steps_over_holidays_and_accepts_pandas_aliases() -> None:
    day = offset_for("XNYS")
    assert pd.Timestamp("2012-07-03", tz="UTC") + day == pd.Timestamp("2012-07-05", tz="UTC")
    assert pd.Timestamp("2012-10-26", tz="UTC") + day == pd.Timestamp("2012-10-31", tz="UTC")
    assert pd.Timestamp("2012-07-03", tz="UTC") + 3 * day == pd.Timestamp("2012-07-09", tz="UTC")
    assert offset_for("h") == pd.tseries.frequencies.to_offset("h")
    with pytest.raises(ForecastingError, match="freq 'fortnightly' is neither a pandas offset alias.*XNYS"):
        offset_for("fortnightly")


def test_on_grid_rejects_off_grid_times_and_nat() -> None:
    hourly = pd.DatetimeIndex([*_utc("2024-01-01 01:00", "2024-01-01 01:30"), pd.NaT])
    assert Grid("h").on_grid(hourly).tolist() == [True, False, False]
    days = pd.DatetimeIndex(_utc("2012-07-05", "2012-07-05 12:00", "2012-07-07", "2012-07-04"))
    assert Grid("XNYS").on_grid(days).tolist() == [True, False, False, False]


def test_steps_count_missing_grid_points() -> None:
    stamps = np.array(["2024-01-01T00", "2024-01-01T01", "2024-01-01T05"], dtype="datetime64[ns]")
    assert Grid("h").steps(stamps).tolist() == [1.0, 4.0]
    fri_to_thu = pd.DatetimeIndex(_utc("2012-07-02", "2012-07-03", "2012-07-05", "2012-07-09"))
    assert Grid("XNYS").steps(fri_to_thu.to_numpy()).tolist() == [1.0, 1.0, 2.0]  # 07-06 missing
    assert Grid("B").steps(fri_to_thu.to_numpy()).tolist() == [1.0, 2.0, 2.0]  # July 4 is a business day


def _hourly(values: list[float], start: str = "2024-01-01", drop: tuple[int, ...] = (), **covariates) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"series_id": "w/x", "timestamp": pd.date_range(start, periods=len(values), freq="h", tz="UTC"), "target": values, **covariates}
    )
    return frame.drop(index=list(drop)).reset_index(drop=True)


def test_short_gaps_are_interpolated_and_long_ones_stay_open() -> None:
    frame = _hourly([float(i) for i in range(20)], drop=(3, 4, 10, 11, 12, 13, 14), rh=[50.0 + i for i in range(20)])
    out, report = regularize(frame, Grid("h"), GapPolicy(max_fill=3))

    assert out["timestamp"].diff().iloc[1:].value_counts().to_dict() == {pd.Timedelta("1h"): 13, pd.Timedelta("6h"): 1}
    assert out.loc[out["timestamp"].isin(report.filled), "target"].tolist() == [3.0, 4.0]
    assert out.loc[out["timestamp"].isin(report.filled), "rh"].tolist() == [53.0, 54.0]
    assert report.open_gaps == [(*_utc("2024-01-01 09:00", "2024-01-01 15:00"), 5)]
    assert out["series_id"].eq("w/x").all()


def test_existing_rows_are_never_changed_and_ffill_repeats() -> None:
    frame = _hourly([1.0, 2.0, 3.0, 4.0], drop=(2,), rh=[np.nan, 1.0, 2.0, 3.0])
    out, report = regularize(frame, Grid("h"), GapPolicy(max_fill=1, method="ffill"))
    assert out["target"].tolist() == [1.0, 2.0, 2.0, 4.0]
    assert np.isnan(out["rh"].iloc[0])  # an existing NaN covariate is not the gap policy's business
    assert len(report.filled) == 1


def test_holidays_are_not_gaps_on_the_trading_calendar() -> None:
    days = Grid("XNYS").points(*_utc("2012-06-25", "2012-11-09"))
    frame = pd.DataFrame({"series_id": "stock/X", "timestamp": days, "target": np.arange(len(days), dtype=float)})
    out, report = regularize(frame, Grid("XNYS"), GapPolicy(max_fill=0))
    assert len(out) == len(frame) and report.open_gaps == []


def _panel(frame: pd.DataFrame) -> SeriesPanel:
    return SeriesPanel.from_frame(frame.sort_values(["series_id", "timestamp"]).reset_index(drop=True))


def test_gap_breaks_mark_the_point_after_each_open_gap_only() -> None:
    a = _hourly([1.0] * 10, drop=(4, 5))
    b = _hourly([2.0] * 5, start="2023-06-01")  # a series boundary is not a gap
    panel = _panel(pd.concat([a.assign(series_id="w/a"), b.assign(series_id="w/b")]))
    breaks = gap_breaks(panel, "h")
    assert np.flatnonzero(breaks).tolist() == [4]  # w/a's 06:00 follows the missing 04:00 and 05:00
    assert gap_breaks(panel, "h", max_missing=2).sum() == 0


def test_holidays_break_a_business_day_grid_but_not_the_trading_calendar() -> None:
    days = Grid("XNYS").points(*_utc("2012-06-25", "2012-11-09"))
    panel = _panel(pd.DataFrame({"series_id": "stock/X", "timestamp": days, "target": 1.0}))
    assert gap_breaks(panel, "XNYS").sum() == 0
    broken = panel.timestamps[gap_breaks(panel, "B")].astype("datetime64[D]").astype(str).tolist()
    assert broken == ["2012-07-05", "2012-09-04", "2012-10-31"]  # after July 4, Labor Day, Sandy


@pytest.mark.parametrize("freq", ["h", "D", "B", "XNYS", "MS"])
def test_next_points_equal_stepping_by_the_offset(freq) -> None:
    from forecasting.data.calendar import next_points

    origins = Grid(freq).points(*_utc("2012-06-01", "2012-12-31"))[::7]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # the per-element loop next_points avoids
        expected = np.stack([(origins + offset_for(freq) * h).tz_localize(None).to_numpy() for h in range(1, 9)], axis=1)
    np.testing.assert_array_equal(next_points(origins.tz_localize(None).to_numpy(), freq, 8), expected)
    np.testing.assert_array_equal(next_points(origins, freq, 8), expected)
    assert next_points(np.array([], dtype="datetime64[ns]"), freq, 3).shape == (0, 3)
