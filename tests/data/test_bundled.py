"""Bundled offline datasets load into valid canonical frames with the real data's shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from forecasting.data.schema import REQUIRED_COLUMNS, validate_observations
from forecasting.data.sources.bundled import BUNDLED_DATASETS, bundled_names, load_bundled
from forecasting.errors import ForecastingError

# (series_id, rows, first timestamp, last timestamp) as found in the installed packages.
EXPECTED = {
    "seattle_temps": [
        ("weather/seattle-hourly", 8759, "2010-01-01 08:00", "2011-01-01 07:00"),
    ],
    "seattle_weather": [("weather/seattle", 1461, "2012-01-01", "2015-12-31")],
    "stocks": [
        ("stock/AAPL", 3270, "2000-03-01", "2013-03-01"),
        ("stock/FB", 196, "2012-05-18", "2013-03-01"),
        ("stock/GOOG", 2148, "2004-08-19", "2013-03-01"),
        ("stock/IBM", 3270, "2000-03-01", "2013-03-01"),
        ("stock/MSFT", 3270, "2000-03-01", "2013-03-01"),
    ],
}
COVARIATES = {
    "seattle_temps": [],
    "seattle_weather": ["temp_min", "precipitation", "wind"],
    "stocks": ["open", "high", "low", "close", "volume"],
}


def test_registry_lists_the_three_datasets() -> None:
    assert bundled_names() == ["seattle_temps", "seattle_weather", "stocks"]
    assert {d.freq for d in BUNDLED_DATASETS.values()} == {"h", "D", "XNYS"}  # stocks: NYSE sessions
    assert "Fahrenheit" in BUNDLED_DATASETS["seattle_temps"].description


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dataset_loads_valid_with_expected_series(name: str) -> None:
    frame = load_bundled(name)

    assert list(frame.columns) == [*REQUIRED_COLUMNS, *COVARIATES[name]]
    pd.testing.assert_frame_equal(validate_observations(frame, required=COVARIATES[name]), frame)
    summary = frame.groupby("series_id")["timestamp"].agg(["size", "min", "max"])
    expected = {
        sid: (n, pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC"))
        for sid, n, first, last in EXPECTED[name]
    }
    assert {sid: tuple(row) for sid, row in summary.iterrows()} == expected
    for sid, stamps in frame.groupby("series_id")["timestamp"]:
        assert stamps.diff().iloc[1:].min() > pd.Timedelta(0), sid


def test_seattle_temps_is_hourly_utc_with_the_one_missing_source_hour() -> None:
    frame = load_bundled("seattle_temps")
    steps = frame["timestamp"].diff().value_counts()
    assert steps.to_dict() == {pd.Timedelta("1h"): 8757, pd.Timedelta("2h"): 1}
    gap_end = frame.loc[frame["timestamp"].diff() == pd.Timedelta("2h"), "timestamp"].item()
    # 2010-03-14 04:00 local standard time (UTC-8); the 03:00 reading is absent in the source.
    assert gap_end == pd.Timestamp("2010-03-14 12:00", tz="UTC")
    assert 20 < frame["target"].min() < frame["target"].max() < 90  # degrees Fahrenheit


def test_seattle_weather_is_a_complete_daily_calendar() -> None:
    frame = load_bundled("seattle_weather")
    assert (frame["timestamp"].diff().iloc[1:] == pd.Timedelta("1D")).all()
    assert frame[["temp_min", "precipitation", "wind"]].notna().all().all()
    assert (frame["target"] >= frame["temp_min"]).all()


def test_stocks_are_trading_days_with_consistent_prices() -> None:
    frame = load_bundled("stocks")
    assert (frame["timestamp"].dt.day_of_week < 5).all()
    assert (frame["high"] >= frame["low"]).all()
    assert (frame["volume"] > 0).all()
    fb = frame[frame["series_id"] == "stock/FB"]
    assert fb["timestamp"].iloc[0] == pd.Timestamp("2012-05-18", tz="UTC")  # the IPO day


def test_unknown_name_lists_known_datasets() -> None:
    with pytest.raises(ForecastingError, match="'nope'.*seattle_temps, seattle_weather, stocks"):
        load_bundled("nope")


def test_import_does_not_load_sample_data_packages() -> None:
    code = (
        "import sys, forecasting.data.sources.bundled; "
        "print(any(m.startswith(('vega_datasets', 'bokeh_sampledata')) for m in sys.modules))"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    )
    assert result.stdout.strip() == "False"


def test_bundled_source_serves_the_dataset_from_each_series_since() -> None:
    from forecasting.data.sources.bundled import BundledSource

    source = BundledSource("stocks")
    (unit,) = source.units()
    since = {"stock/AAPL": pd.Timestamp("2013-02-25", tz="UTC")}
    batch = source.fetch(unit, since, pd.Timestamp("2013-03-01", tz="UTC"))
    sizes = batch.frame.groupby("series_id").size()
    assert sizes["stock/AAPL"] == 5 and sizes["stock/IBM"] == 3270
    assert batch.request == {"package": "bokeh_sampledata", "dataset": "stocks"}
    assert (batch.frame["_reason"] == "").all()
