"""The Stooq source against recorded (hand-made, real-format) daily CSV answers on a local server."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from forecasting.data.sources.base import REASON, FetchUnit, SourceError
from forecasting.data.sources.http import HttpPolicy
from forecasting.data.sources.stooq import DOWNLOAD_PATH, StooqSource, parse_daily_csv
from tests.data.replay import Answer, fixture

UNIT = FetchUnit("stock/AAPL", ("stock/AAPL",))
UNTIL = pd.Timestamp("2012-07-10", tz="UTC")


def _source(replay) -> StooqSource:
    return StooqSource(["AAPL"], start=dt.date(2012, 6, 25), base_url=replay.url, policy=HttpPolicy(timeout=0.5, attempts=3, backoff=0.01))


def test_fetch_asks_for_the_symbol_and_range_and_parses_sessions(replay) -> None:
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/aapl_2012-06-25_2012-07-10.csv"))
    batch = _source(replay).fetch(UNIT, {}, UNTIL)

    assert replay.seen()[0].params == {"s": "aapl.us", "i": "d", "d1": "20120625", "d2": "20120710"}
    frame = batch.frame
    assert list(frame.columns) == ["series_id", "timestamp", "target", "open", "high", "low", "close", "volume", REASON]
    assert len(frame) == 11 and (frame[REASON] == "").all()
    assert (frame["target"] == frame["close"]).all()
    assert pd.Timestamp("2012-07-04", tz="UTC") not in set(frame["timestamp"])  # Independence Day
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2012-06-25", tz="UTC")
    assert frame["volume"].iloc[0] == 289585216.0


def test_incremental_fetch_starts_at_the_since_date(replay) -> None:
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/aapl_2012-07-03_2012-07-17.csv"))
    _source(replay).fetch(UNIT, {"stock/AAPL": pd.Timestamp("2012-07-03", tz="UTC")}, pd.Timestamp("2012-07-17", tz="UTC"))
    assert replay.seen()[0].params["d1"] == "20120703"


def test_unreadable_cells_become_notes_on_their_rows() -> None:
    frame = parse_daily_csv(fixture("stooq/aapl_2012-06-25_2012-07-10_bad_rows.csv").decode(), series_id="stock/AAPL")
    noted = frame[frame[REASON] != ""]
    assert noted["timestamp"].tolist() == [pd.Timestamp("2012-06-29", tz="UTC")]
    assert noted[REASON].item() == "volume 'n/a' is not a number"


@pytest.mark.parametrize("body", ["No data", "", "\ufeffNo data\r\n"])
def test_no_data_is_an_empty_batch(body) -> None:
    assert parse_daily_csv(body, series_id="stock/AAPL").empty


def test_a_csv_with_a_ragged_row_is_malformed_and_not_retried(replay) -> None:
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/malformed.csv"))
    with pytest.raises(SourceError, match=r"stock/AAPL.*malformed CSV: .*Expected 6 fields in line 5, saw 8"):
        _source(replay).fetch(UNIT, {}, UNTIL)
    assert len(replay.seen()) == 1


@pytest.mark.parametrize(
    "body, message",
    [
        ("<html><body>Service unavailable</body></html>", "expected a header starting Date,Open,High,Low,Close"),
        ("Exceeded the daily hits limit", "Stooq refused the request: 'Exceeded the daily hits limit'"),
    ],
)
def test_answers_that_are_not_price_csv_say_so(body, message) -> None:
    with pytest.raises(SourceError, match=message):
        parse_daily_csv(body, series_id="stock/AAPL")


def test_an_index_without_volume_has_no_volume_column() -> None:
    frame = parse_daily_csv("Date,Open,High,Low,Close\n2012-07-02,1362.33,1374.81,1362.33,1374.02\n", series_id="stock/^SPX")
    assert "volume" not in frame.columns and frame["target"].item() == 1374.02
