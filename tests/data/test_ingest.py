"""Incremental ingestion end to end against a local server replaying recorded answers.

The recorded answers under tests/fixtures/ are hand-made in the sources' real
formats (Open-Meteo archive JSON, Stooq daily CSV), not captured traffic.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.data.calendar import Grid, gap_breaks
from forecasting.data.ingest import ingest, raise_for_failures, summary_markdown
from forecasting.data.quarantine import Quarantine
from forecasting.data.sources.open_meteo import ARCHIVE_PATH
from forecasting.data.sources.stooq import DOWNLOAD_PATH
from forecasting.data.store import ObservationStore
from forecasting.errors import ForecastingError
from forecasting.config.ingest import parse_ingest_config
from forecasting.prep.windows import SeriesPanel, WindowSpec, build_index, chronological_split, gather
from tests.data.conftest import FAST_HTTP
from tests.data.replay import Answer, fixture

BERLIN = {"latitude": "52.52"}
SEATTLE = {"latitude": "47.6"}
DAY_1_2 = "open_meteo/berlin_2024-01-01_2024-01-02.json"


def weather(replay, *, locations=("berlin",), **overrides):
    coordinates = {"berlin": (52.52, 13.41), "seattle": (47.6, -122.33)}
    raw = {
        "source": "open_meteo", "dataset": "weather_test", "start": "2024-01-01", "end": "2024-01-02", "overlap": 2,
        "base_url": replay.url, "http": FAST_HTTP, "gaps": {"max_fill": 3},
        "locations": [{"name": n, "latitude": coordinates[n][0], "longitude": coordinates[n][1]} for n in locations],
        "ranges": {"relative_humidity_2m": {"ge": 0, "le": 100}, "wind_speed_10m": {"ge": 0}, "precipitation": {"ge": 0}},
    }
    return parse_ingest_config({**raw, **overrides})


def stocks(replay, **overrides):
    raw = {
        "source": "stooq", "dataset": "stocks_test", "start": "2012-06-25", "end": "2012-11-09", "tickers": ["AAPL", "IBM"],
        "base_url": replay.url, "http": FAST_HTTP, "ranges": {c: {"gt": 0} for c in ("target", "open", "high", "low", "close")} | {"volume": {"ge": 0}},
    }
    return parse_ingest_config({**raw, **overrides})


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".lock"}


@pytest.fixture
def store(tmp_path) -> ObservationStore:
    return ObservationStore(tmp_path / "store")


def by_series(reports):
    return {r.series_id: r for r in reports}


def test_ingesting_twice_changes_nothing_and_asks_only_from_the_last_hour_minus_overlap(replay, store) -> None:
    replay.script(ARCHIVE_PATH, Answer.file(DAY_1_2))
    (first,) = ingest(weather(replay), store)
    assert (first.status, first.fetched, first.added, first.quarantined) == ("changed", 48, 48, 0)
    before = snapshot(store.root)

    (second,) = ingest(weather(replay), store)

    assert (second.status, second.added, second.updated, second.unchanged) == ("unchanged", 0, 0, 48)
    assert snapshot(store.root) == before
    assert [r.params["start_date"] for r in replay.seen()] == ["2024-01-01", "2024-01-02"]  # 23:00 - 2 h overlap
    assert len(store.lineage("weather_test", "weather/berlin")) == 1


def test_the_overlap_picks_up_a_revised_value_and_lineage_records_each_fetch(replay, store) -> None:
    replay.script(ARCHIVE_PATH, Answer.file(DAY_1_2))
    ingest(weather(replay), store)
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-02_2024-01-03.json"))

    (report,) = ingest(weather(replay, end="2024-01-03"), store)

    assert (report.added, report.updated, report.unchanged) == (24, 1, 23)
    stored = store.read("weather_test").set_index("timestamp")["target"]
    revised = json.loads(fixture("open_meteo/berlin_2024-01-02_2024-01-03.json"))["hourly"]["temperature_2m"][5]
    original = json.loads(fixture(DAY_1_2))["hourly"]["temperature_2m"][29]
    assert stored[pd.Timestamp("2024-01-02 05:00", tz="UTC")] == revised != original
    assert len(stored) == 72
    lineage = store.lineage("weather_test", "weather/berlin")
    assert [e["request"]["params"]["start_date"] for e in lineage] == ["2024-01-01", "2024-01-02"]
    assert lineage[1]["source"] == "open_meteo" and lineage[1]["request"]["url"] == f"{replay.url}{ARCHIVE_PATH}"
    assert (lineage[1]["added"], lineage[1]["updated"]) == (24, 1)
    assert pd.Timestamp(lineage[1]["fetched_at"]) > pd.Timestamp(lineage[0]["fetched_at"])


def test_bad_rows_are_quarantined_with_reasons_while_good_rows_land(replay, store) -> None:
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-01_bad_rows.json"))
    (report,) = ingest(weather(replay, end="2024-01-01", gaps={"max_fill": 0}), store)

    assert (report.status, report.fetched, report.added, report.quarantined) == ("changed", 24, 20, 4)
    quarantined = Quarantine(store).read("weather_test")
    assert dict(zip(quarantined["timestamp"].dt.hour, quarantined["reason"])) == {
        5: "relative_humidity_2m 130 is not >= 0 and <= 100",
        7: "wind_speed_10m -3.2 is not >= 0",
        10: "target is missing",
        12: "precipitation is missing",
    }
    assert set(quarantined["source"]) == {"open_meteo"}
    assert json.loads(quarantined["record"].iloc[0])["relative_humidity_2m"] == 130.0
    stored = store.read("weather_test")
    assert len(stored) == 20 and stored["relative_humidity_2m"].between(0, 100).all()
    rows, gaps = report.problems[:4], report.problems[4:]
    assert all(p.startswith("series 'weather/berlin': 1 row(s)") for p in rows)
    assert gaps == [
        "series 'weather/berlin': 4 open gap(s) longer than gaps.max_fill 0, left absent: "
        "2024-01-01 05:00 (1 missing), 2024-01-01 07:00 (1 missing), 2024-01-01 10:00 (1 missing), 2024-01-01 12:00 (1 missing)"
    ]
    assert "relative_humidity_2m" in summary_markdown([report])

    before = snapshot(store.root)
    (again,) = ingest(weather(replay, end="2024-01-01", gaps={"max_fill": 0}), store)
    assert again.quarantined == 4 and snapshot(store.root) == before  # reported again, stored once


def test_quarantined_hours_are_gaps_the_policy_may_fill(replay, store) -> None:
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-01_bad_rows.json"))
    (report,) = ingest(weather(replay, end="2024-01-01"), store)  # max_fill 3
    stored = store.read("weather_test").set_index("timestamp")
    assert (report.quarantined, report.filled, len(stored)) == (4, 4, 24)
    five = stored.loc[pd.Timestamp("2024-01-01 05:00", tz="UTC"), "relative_humidity_2m"]
    neighbours = stored.loc[pd.to_datetime(["2024-01-01 04:00", "2024-01-01 06:00"], utc=True), "relative_humidity_2m"]
    assert five == neighbours.mean()  # interpolated, not the quarantined 130
    assert store.lineage("weather_test", "weather/berlin")[0]["filled"] == 4


RECOVERABLE = {
    "500 then success": [Answer(500, b"Internal Server Error")],
    "timeout then success": [Answer(body=b"{}", delay=1.0)],
    "truncated body then success": [Answer(body=fixture(DAY_1_2), truncate=700)],
    "429 with Retry-After then success": [Answer(429, b"Too many requests", headers={"Retry-After": "0"})],
}


@pytest.mark.parametrize("fault", sorted(RECOVERABLE))
def test_transient_faults_are_retried_into_success(replay, store, fault) -> None:
    replay.script(ARCHIVE_PATH, *RECOVERABLE[fault], Answer.file(DAY_1_2))
    (report,) = ingest(weather(replay), store)
    assert (report.status, report.added) == ("changed", 48)
    assert len(replay.seen()) == 2


PERSISTENT = {
    "500 every time": (Answer(500, b"Internal Server Error"), r"failed after 3 attempt\(s\); last: HTTP 500"),
    "timeout every time": (Answer(body=b"{}", delay=1.0), r"failed after 3 attempt\(s\); last: ReadTimeout"),
    "truncated every time": (Answer(body=fixture(DAY_1_2), truncate=700), "last: RemoteProtocolError"),
    "malformed JSON": (Answer(body=fixture(DAY_1_2)[:-40]), "is not valid JSON"),
    "JSON of another shape": (Answer(body=b'{"daily": {}}'), r"unexpected answer format: no 'hourly.time' list"),
    "an API error": (Answer(400, fixture("open_meteo/error_400.json")), r"HTTP 400 .*out of allowed range.*not retried"),
    "429 asking to wait an hour": (Answer(429, b"", headers={"Retry-After": "3600"}), "more than max_retry_after"),
}


@pytest.mark.parametrize("fault", sorted(PERSISTENT))
def test_lasting_faults_end_in_a_clear_error_and_never_a_partial_store(replay, store, fault) -> None:
    replay.script(ARCHIVE_PATH, Answer.file(DAY_1_2), when=BERLIN)
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/seattle_2024-01-01_2024-01-02.json"), when=SEATTLE)
    ingest(weather(replay, locations=("berlin",), end="2024-01-01"), store)  # Berlin has day 1 stored
    berlin_files = {k: v for k, v in snapshot(store.root).items() if "berlin" in k}
    answer, message = PERSISTENT[fault]
    replay.script(ARCHIVE_PATH, answer, when=BERLIN)

    reports = by_series(ingest(weather(replay, locations=("berlin", "seattle")), store))

    assert reports["weather/berlin"].status == "failed"
    assert "series 'weather/berlin'" in reports["weather/berlin"].error
    assert pd.Series([reports["weather/berlin"].error]).str.contains(message).item(), reports["weather/berlin"].error
    assert {k: v for k, v in snapshot(store.root).items() if "berlin" in k} == berlin_files
    assert not list(store.root.rglob("*.tmp"))
    assert (reports["weather/seattle"].status, reports["weather/seattle"].added) == ("changed", 48)
    with pytest.raises(ForecastingError, match=r"ingest failed for 1 of 2 series \(the others landed\):\n  - weather_test / weather/berlin: "):
        raise_for_failures(list(reports.values()))


def test_an_empty_result_is_no_news_for_a_stored_series_but_an_error_for_a_new_one(replay, store) -> None:
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_empty.json"))
    (new,) = ingest(weather(replay), store)
    assert new.status == "failed" and "returned no rows for series 'weather/berlin' and nothing is stored" in new.error
    assert store.datasets() == []

    replay.script(ARCHIVE_PATH, Answer.file(DAY_1_2))
    ingest(weather(replay), store)
    before = snapshot(store.root)
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_empty.json"))
    (stored,) = ingest(weather(replay), store)
    assert stored.status == "empty" and snapshot(store.root) == before


def test_a_gap_longer_than_the_policy_is_never_inside_a_training_window(replay, store) -> None:
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-01_2024-01-02_gaps.json"))
    (report,) = ingest(weather(replay), store)  # nulls at 02-03 h (filled) and 8 h on day 2 (left open)
    assert (report.quarantined, report.filled, report.open_gaps) == (10, 2, 1)

    frame = store.read("weather_test")
    assert len(frame) == 40 and frame["target"].notna().all()
    panel = SeriesPanel.from_frame(frame, covariates=["relative_humidity_2m"])
    spec = WindowSpec(lookback=4, horizon=2)
    bounds = chronological_split(panel, spec, val_fraction=0.1, test_fraction=0.1)
    breaks = gap_breaks(panel, "h")
    for part in ("train", "val", "test", "all"):
        index = build_index(panel, spec, None if part == "all" else bounds, part, breaks=breaks)
        spans = panel.timestamps[index.starts + spec.length - 1] - panel.timestamps[index.starts]
        assert (spans == np.timedelta64(spec.length - 1, "h")).all(), part
    unguarded = build_index(panel, spec, bounds, "train")
    spans = panel.timestamps[unguarded.starts + spec.length - 1] - panel.timestamps[unguarded.starts]
    assert (spans > np.timedelta64(spec.length - 1, "h")).any()  # without breaks a window would cross it


def test_market_holidays_are_not_rows_so_windows_have_no_nan(replay, store) -> None:
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/aapl_2012-10-15_2012-11-09.csv", content_type="text/csv"), when={"s": "aapl.us"})
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/ibm_2012-06-25_2012-07-10.csv", content_type="text/csv"), when={"s": "ibm.us"})
    reports = ingest(stocks(replay), store)
    assert {r.series_id: (r.status, r.quarantined, r.open_gaps) for r in reports} == {
        "stock/AAPL": ("changed", 0, 0), "stock/IBM": ("changed", 0, 0)
    }

    frame = store.read("stocks_test")
    days = set(frame["timestamp"].dt.strftime("%Y-%m-%d"))
    assert {"2012-07-03", "2012-07-05", "2012-10-26", "2012-10-31"} <= days
    assert not {"2012-07-04", "2012-10-29", "2012-10-30"} & days
    for sid, rows in frame.groupby("series_id"):
        stamps = pd.DatetimeIndex(rows["timestamp"])
        assert stamps.equals(Grid("XNYS").points(stamps[0], stamps[-1])), sid  # every session, nothing else

    panel = SeriesPanel.from_frame(frame, covariates=["volume"])
    spec = WindowSpec(lookback=5, horizon=2)
    index = build_index(panel, spec, None, "all", breaks=gap_breaks(panel, "XNYS"))
    assert len(index) == len(build_index(panel, spec, None, "all"))  # a holiday is not a gap
    import torch

    windows = gather(torch.from_numpy(panel.values), torch.from_numpy(index.starts), spec.length)
    assert torch.isfinite(windows).all()
    crossing = panel.timestamps[index.starts] < np.datetime64("2012-07-04")
    crossing &= panel.timestamps[index.starts + spec.length - 1] > np.datetime64("2012-07-04")
    assert crossing.any()  # windows do span the holiday, without a NaN row for it


def test_stock_rows_off_the_calendar_or_impossible_are_quarantined(replay, store) -> None:
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/aapl_2012-06-25_2012-07-10_bad_rows.csv", content_type="text/csv"))
    (report,) = ingest(stocks(replay, tickers=["AAPL"], end="2012-07-10"), store)

    assert (report.fetched, report.added, report.quarantined) == (13, 9, 4)
    reasons = Quarantine(store).read("stocks_test").set_index(Quarantine(store).read("stocks_test")["timestamp"].dt.strftime("%m-%d"))["reason"]
    assert reasons.to_dict() == {
        "06-27": "low -0.5 is not > 0",
        "06-29": "volume 'n/a' is not a number; volume is missing",
        "07-04": "timestamp is off the XNYS trading calendar",
        "07-07": "timestamp is off the XNYS trading calendar",
    }
    assert report.open_gaps == 2  # 06-27 and 06-29 are sessions now missing: max_fill 0 never invents prices


def test_concurrent_ingests_of_different_series_do_not_interfere(replay, store) -> None:
    replay.script(ARCHIVE_PATH, Answer.file(DAY_1_2, delay=0.2), when=BERLIN)
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/seattle_2024-01-01_2024-01-02.json", delay=0.2), when=SEATTLE)
    configs = [weather(replay, locations=(name,)) for name in ("berlin", "seattle")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: ingest(c, store), configs))

    assert [r.added for (r,) in results] == [48, 48]
    frame = store.read("weather_test")
    assert frame.groupby("series_id").size().to_dict() == {"weather/berlin": 48, "weather/seattle": 48}
    seattle = json.loads(fixture("open_meteo/seattle_2024-01-01_2024-01-02.json"))["hourly"]["temperature_2m"]
    assert frame.loc[frame["series_id"] == "weather/seattle", "target"].tolist() == seattle
    assert store.lineage("weather_test", "weather/seattle")[0]["request"]["params"]["latitude"] == "47.6"


def test_hours_not_published_yet_are_pending_and_land_on_a_later_run(replay, store) -> None:
    payload = json.loads(fixture(DAY_1_2))
    for variable in ("temperature_2m", "relative_humidity_2m", "wind_speed_10m", "precipitation"):
        payload["hourly"][variable][-6:] = [None] * 6
    replay.script(ARCHIVE_PATH, Answer(body=json.dumps(payload).encode()))
    (early,) = ingest(weather(replay), store)
    assert (early.added, early.pending, early.quarantined) == (42, 6, 0)
    assert Quarantine(store).read("weather_test").empty

    replay.script(ARCHIVE_PATH, Answer.file(DAY_1_2))
    (later,) = ingest(weather(replay), store)
    assert (later.added, later.pending) == (6, 0)
    assert replay.seen()[-1].params["start_date"] == "2024-01-02"  # 17:00 - 2 h overlap
    assert len(store.read("weather_test")) == 48


@pytest.mark.parametrize(
    "answer, message",
    [
        (Answer.file("stooq/malformed.csv", content_type="text/csv"), "malformed CSV: .*Expected 6 fields in line 5, saw 8"),
        (Answer(body=b"<html>Service unavailable</html>", content_type="text/html"), "expected a header starting Date,Open"),
        (Answer(body=fixture("stooq/aapl_2012-07-03_2012-07-17.csv"), truncate=200, content_type="text/csv"), "RemoteProtocolError"),
    ],
    ids=["ragged CSV", "not CSV at all", "truncated every time"],
)
def test_a_broken_csv_fails_its_ticker_only_and_leaves_its_partition_intact(replay, store, answer, message) -> None:
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/aapl_2012-06-25_2012-07-10.csv", content_type="text/csv"), when={"s": "aapl.us"})
    replay.script(DOWNLOAD_PATH, Answer.file("stooq/ibm_2012-06-25_2012-07-10.csv", content_type="text/csv"), when={"s": "ibm.us"})
    ingest(stocks(replay, end="2012-07-10"), store)
    aapl_before = {k: v for k, v in snapshot(store.root).items() if "AAPL" in k}
    replay.script(DOWNLOAD_PATH, answer, when={"s": "aapl.us"})

    reports = by_series(ingest(stocks(replay, end="2012-07-17"), store))

    assert reports["stock/AAPL"].status == "failed"
    assert pd.Series([reports["stock/AAPL"].error]).str.contains(message).item(), reports["stock/AAPL"].error
    assert {k: v for k, v in snapshot(store.root).items() if "AAPL" in k} == aapl_before
    assert reports["stock/IBM"].status == "unchanged"
