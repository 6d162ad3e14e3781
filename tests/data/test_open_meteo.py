"""The Open-Meteo source against recorded (hand-made, real-format) archive answers on a local server."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from forecasting.data.sources.base import REASON, FetchUnit, SourceError
from forecasting.data.sources.http import HttpPolicy
from forecasting.data.sources.open_meteo import ARCHIVE_PATH, Location, OpenMeteoSource, parse_archive
from tests.data.replay import Answer, fixture

VARIABLES = ["temperature_2m", "relative_humidity_2m", "wind_speed_10m", "precipitation"]
BERLIN = Location("berlin", 52.52, 13.41)
UNIT = FetchUnit("weather/berlin", ("weather/berlin",))
UNTIL = pd.Timestamp("2024-01-02 23:00", tz="UTC")


def _source(replay) -> OpenMeteoSource:
    return OpenMeteoSource(
        [BERLIN], variables=VARIABLES, target="temperature_2m", start=dt.date(2024, 1, 1),
        base_url=replay.url, policy=HttpPolicy(timeout=0.5, attempts=3, backoff=0.01),
    )


def test_fetch_asks_for_the_location_and_dates_and_parses_every_hour(replay) -> None:
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-01_2024-01-02.json"))
    batch = _source(replay).fetch(UNIT, {}, UNTIL)

    (seen,) = replay.seen()
    assert seen.params == {
        "latitude": "52.52", "longitude": "13.41", "start_date": "2024-01-01", "end_date": "2024-01-02",
        "hourly": ",".join(VARIABLES), "timezone": "GMT",
    }
    frame = batch.frame
    assert list(frame.columns) == ["series_id", "timestamp", "target", *VARIABLES[1:], REASON]
    assert len(frame) == 48 and (frame[REASON] == "").all()
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert (frame["timestamp"].diff().iloc[1:] == pd.Timedelta("1h")).all()
    raw = json.loads(fixture("open_meteo/berlin_2024-01-01_2024-01-02.json"))["hourly"]
    assert frame["target"].tolist() == raw["temperature_2m"]
    assert batch.request["params"]["hourly"] == ",".join(VARIABLES)
    assert batch.request["units"]["temperature_2m"] == "°C"
    assert batch.source == "open_meteo"


def test_incremental_fetch_starts_at_the_since_date(replay) -> None:
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-02_2024-01-03.json"))
    _source(replay).fetch(UNIT, {"weather/berlin": pd.Timestamp("2024-01-02 21:00", tz="UTC")}, UNTIL + pd.Timedelta("1D"))
    assert replay.seen()[0].params["start_date"] == "2024-01-02"
    assert replay.seen()[0].params["end_date"] == "2024-01-03"


def test_nothing_is_asked_when_the_series_is_already_up_to_date(replay) -> None:
    batch = _source(replay).fetch(UNIT, {"weather/berlin": UNTIL + pd.Timedelta("2D")}, UNTIL)
    assert batch.frame.empty and replay.seen() == []


def test_local_times_are_shifted_by_utc_offset_seconds() -> None:
    payload = json.loads(fixture("open_meteo/berlin_2024-01-01_europe_berlin.json"))
    frame, _ = parse_archive(payload, series_id="weather/berlin", variables=VARIABLES, target="temperature_2m")
    assert payload["utc_offset_seconds"] == 3600
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2023-12-31 23:00", tz="UTC")


def test_unix_times_and_daily_answers_parse() -> None:
    unix = {"utc_offset_seconds": 0, "hourly": {"time": [1704067200, 1704070800], "temperature_2m": [1.0, 2.0]}}
    frame, _ = parse_archive(unix, series_id="w/x", variables=["temperature_2m"], target="temperature_2m")
    assert frame["timestamp"].tolist() == list(pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC"))
    daily = {"utc_offset_seconds": -28800, "daily": {"time": ["2024-01-01", "2024-01-02"], "temperature_2m_max": [9.5, 8.1]}}
    frame, _ = parse_archive(daily, series_id="w/x", variables=["temperature_2m_max"], target="temperature_2m_max", interval="daily")
    assert frame["timestamp"].tolist() == list(pd.date_range("2024-01-01", periods=2, freq="D", tz="UTC"))


def test_null_values_and_bad_times_stay_as_rows_for_validation() -> None:
    payload = {"utc_offset_seconds": 0, "hourly": {"time": ["2024-01-01T00:00", "yesterday"], "temperature_2m": [None, "warm"]}}
    frame, _ = parse_archive(payload, series_id="w/x", variables=["temperature_2m"], target="temperature_2m")
    assert np.isnan(frame["target"]).all()
    assert frame[REASON].tolist() == ["", "time 'yesterday' is not %Y-%m-%dT%H:%M; target 'warm' is not a number"]
    assert frame["timestamp"].isna().tolist() == [False, True]


def test_an_api_error_is_reported_with_its_reason_and_not_retried(replay) -> None:
    replay.script(ARCHIVE_PATH, Answer(400, fixture("open_meteo/error_400.json")))
    with pytest.raises(SourceError, match=r"weather/berlin.*HTTP 400.*start_date' is out of allowed range.*not retried"):
        _source(replay).fetch(UNIT, {}, UNTIL)
    assert len(replay.seen()) == 1


def test_malformed_json_is_a_clear_error_without_retries(replay) -> None:
    replay.script(ARCHIVE_PATH, Answer(body=fixture("open_meteo/berlin_2024-01-01_2024-01-02.json")[:500]))
    with pytest.raises(SourceError, match=r"series 'weather/berlin'.*not valid JSON"):
        _source(replay).fetch(UNIT, {}, UNTIL)
    assert len(replay.seen()) == 1


@pytest.mark.parametrize(
    "payload, message",
    [
        ([1, 2], "expected a JSON object, got list"),
        ({"latitude": 1.0}, r"no 'hourly.time' list \(top-level keys: \['latitude'\]\)"),
        ({"hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": [1.0]}}, r"no 'hourly' values for \['relative_humidity_2m'"),
        ({"hourly": {"time": ["2024-01-01T00:00"], **{v: [1.0, 2.0] for v in VARIABLES}}}, "differ in length"),
    ],
)
def test_unexpected_shapes_name_what_is_wrong(payload, message) -> None:
    with pytest.raises(SourceError, match=message):
        parse_archive(payload, series_id="weather/berlin", variables=VARIABLES, target="temperature_2m")


def test_an_empty_answer_is_an_empty_batch(replay) -> None:
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_empty.json"))
    batch = _source(replay).fetch(UNIT, {}, UNTIL)
    assert batch.frame.empty and list(batch.frame.columns)[:3] == ["series_id", "timestamp", "target"]


def test_trailing_unpublished_hours_are_pending_not_rows() -> None:
    payload = json.loads(fixture("open_meteo/berlin_2024-01-01_2024-01-02.json"))
    for variable in VARIABLES:
        payload["hourly"][variable][-5:] = [None] * 5  # the archive's lag: the newest hours are not out yet
    payload["hourly"]["precipitation"][10] = None  # a null inside the data is a bad row, not pending
    frame, meta = parse_archive(payload, series_id="weather/berlin", variables=VARIABLES, target="temperature_2m")
    assert meta["pending"] == 5 and len(frame) == 43
    assert frame["timestamp"].iloc[-1] == pd.Timestamp("2024-01-02 18:00", tz="UTC")
    assert np.isnan(frame["precipitation"].iloc[10])


@pytest.mark.parametrize("offset", [True, "3600", 3.5, 10**12, None])
def test_utc_offset_of_the_wrong_type_is_one_clear_error(offset):
    """Issue 19, row 21: ``utc_offset_seconds: true`` was a traceback."""
    payload = {"utc_offset_seconds": offset, "hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": [1.0]}}
    with pytest.raises(SourceError, match=r"weather/x.*utc_offset_seconds is .* not a whole number of seconds"):
        parse_archive(payload, series_id="weather/x", variables=("temperature_2m",), target="temperature_2m",
                      what="Open-Meteo data for series 'weather/x'")


def test_times_outside_the_storable_years_are_quarantined_rows_not_a_traceback():
    payload = {"utc_offset_seconds": 0, "hourly": {"time": ["0001-01-01T00:00", "9999-12-31T23:00", "2024-01-01T00:00"],
                                                   "temperature_2m": [1.0, 2.0, 3.0]}}
    frame, _ = parse_archive(payload, series_id="weather/x", variables=("temperature_2m",), target="temperature_2m")
    assert len(frame) == 3 and frame["timestamp"].isna().tolist() == [True, True, False]
    assert frame["_reason"].tolist()[:2] == ["time '0001-01-01T00:00' is outside the years 1678-2261",
                                             "time '9999-12-31T23:00' is outside the years 1678-2261"]
