"""The files source: CSV or Parquet, local or over HTTP, canonical or mapped columns."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from forecasting.data.sources.base import REASON, Batch, SourceError
from forecasting.data.sources.files import FileSource
from forecasting.data.sources.http import HttpPolicy
from forecasting.errors import DataValidationError
from tests.data.replay import Answer, fixture

UNTIL = pd.Timestamp("2030-01-01", tz="UTC")
STOOQ_CSV = "stooq/aapl_2012-06-25_2012-07-10.csv"


def _fetch(source: FileSource, since: dict | None = None) -> Batch:
    """The fetch with its rows in ``frame`` (the source spills them to per-series parts on disk)."""
    batch = source.fetch(source.units()[0], since or {}, UNTIL)
    try:
        return Batch(batch.source, batch.unit, batch.read_all(), batch.request, batch.fetched_at)
    finally:
        batch.close()


def test_a_mapped_single_series_csv_with_naive_dates_in_a_zone(tmp_path) -> None:
    path = tmp_path / "aapl.csv"
    path.write_bytes(fixture(STOOQ_CSV))
    source = FileSource(
        str(path), columns={"Date": "timestamp", "Close": "target", "Volume": "volume"}, series_id="stock/AAPL", timezone="UTC"
    )
    batch = _fetch(source)
    frame = batch.frame
    assert list(frame.columns) == ["series_id", "timestamp", "target", "volume", REASON]
    assert len(frame) == 11 and frame["series_id"].eq("stock/AAPL").all()
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2012-06-25", tz="UTC")
    assert batch.request == {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


def test_a_file_hands_on_every_row_whatever_is_stored(tmp_path) -> None:
    # Files have no 'since' cut (issue 19 row 16): older rows backfill, the upsert counts the unchanged ones.
    frame = pd.DataFrame(
        {
            "series_id": ["a", "a", "a", "b", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-02"], utc=True),
            "target": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    path = tmp_path / "obs.parquet"
    frame.to_parquet(path)
    batch = _fetch(FileSource(str(path)), {"a": pd.Timestamp("2024-01-02", tz="UTC")})
    assert batch.frame.groupby("series_id")["target"].apply(list).to_dict() == {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0]}


def test_offsets_in_timestamps_are_respected_and_naive_ones_need_a_zone(tmp_path) -> None:
    path = tmp_path / "obs.csv"
    path.write_text("series_id,timestamp,target\nx,2024-07-01T09:00:00-07:00,1\nx,2024-07-01T17:00:00Z,2\n")
    frame = _fetch(FileSource(str(path))).frame
    assert frame["timestamp"].tolist() == [pd.Timestamp("2024-07-01 16:00", tz="UTC"), pd.Timestamp("2024-07-01 17:00", tz="UTC")]

    path.write_text("series_id,timestamp,target\nx,2024-07-01 09:00,1\n")
    with pytest.raises(DataValidationError, match=r"'2024-07-01 09:00' have no time zone; set 'timezone'"):
        _fetch(FileSource(str(path)))
    local = _fetch(FileSource(str(path), timezone="America/Los_Angeles")).frame
    assert local["timestamp"].item() == pd.Timestamp("2024-07-01 16:00", tz="UTC")


def test_unreadable_cells_and_times_are_noted_per_row(tmp_path) -> None:
    path = tmp_path / "obs.csv"
    path.write_text("series_id,timestamp,target,rh\nx,2024-01-01T00:00Z,1,50\nx,soon,2,50\nx,2024-01-01T02:00Z,3,wet\n")
    frame = _fetch(FileSource(str(path))).frame
    assert frame[REASON].tolist() == ["", "timestamp 'soon' is unreadable or does not exist in its zone", "rh 'wet' is not a number"]


def test_layout_problems_are_listed_together(tmp_path) -> None:
    path = tmp_path / "obs.csv"
    path.write_text("when,value\n2024-01-01,1\n")
    with pytest.raises(DataValidationError) as info:
        _fetch(FileSource(str(path)))
    assert len(info.value.problems) == 3 and all("column" in p for p in info.value.problems)
    with pytest.raises(DataValidationError, match=r"mapped column\(s\) \['Close'\] not in the file"):
        _fetch(FileSource(str(path), columns={"when": "timestamp", "Close": "target"}, series_id="x"))
    with pytest.raises(SourceError, match="does not exist"):
        _fetch(FileSource(str(tmp_path / "nope.csv")))


def test_a_file_at_a_url_is_fetched_with_retries(replay) -> None:
    replay.script("/data/aapl.csv", Answer(503, b"busy"), Answer.file(STOOQ_CSV))
    source = FileSource(
        f"{replay.url}/data/aapl.csv", columns={"Date": "timestamp", "Close": "target"}, series_id="stock/AAPL",
        timezone="UTC", policy=HttpPolicy(attempts=3, backoff=0.01),
    )
    assert len(_fetch(source).frame) == 11
    assert len(replay.seen()) == 2
