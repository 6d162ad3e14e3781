"""Big files are streamed (issue 19 item 5): read a few rows at a time, spilled per series, stored per series,
and the store ends up exactly as if the file had been read whole."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forecasting.config.ingest import parse_ingest_config
from forecasting.data.ingest import ingest
from forecasting.data.quarantine import Quarantine
from forecasting.data.sources.base import REASON, SourceError
from forecasting.data.sources.files import FileSource
from forecasting.data.store import ObservationStore
from forecasting.errors import ConfigError

WHOLE = 10_000_000  # one read batch holds the whole file: the whole-file reference
SERIES = [f"s{k}" for k in range(9)]


def _messy_csv(path) -> None:
    """Nine series interleaved row by row, with the awkward cases placed so 7-row batches split them."""
    lines = ["station,date,value,humidity"]
    for day in range(1, 21):
        for k, sid in enumerate(SERIES):
            lines.append(f"{sid},2024-01-{day:02d},{day * 10 + k},{50 + k}")
    lines.insert(9, "s1,2024-01-01,11,51")  # an exact repeat of a row in the first batch, six rows on
    lines.insert(40, " s2,2024-01-03,999,52")  # a conflicting repeat (leading space: the same series) in a later batch
    lines.insert(95, "s3,2024-01-05,oops,53")  # an unreadable value in a later batch: quarantined, others land
    lines.insert(120, "s4,9999-01-01,1,54")  # a placeholder year: quarantined, not the file
    lines.insert(150, "s5,2024-01-09")  # a short row: missing cells are blank, so the row is quarantined
    lines.append("s6,2031-01-01,1,56")  # after the ingest's end: quarantined with the reason
    lines.append(",2024-01-02,5,5")  # no series id
    path.write_text("\n".join(lines) + "\n")


def _config(path, rows: int, **overrides):
    raw = {
        "source": "files", "path": str(path), "dataset": "big", "freq": "D", "timezone": "UTC", "end": "2030-01-01",
        "columns": {"station": "series_id", "date": "timestamp", "value": "target", "humidity": "humidity"},
        "duplicates": "last", "limits": {"min_rows": 3}, "read_batch_rows": rows, **overrides,
    }
    return parse_ingest_config(raw)


def _state(store: ObservationStore, reports) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    data = store.read("big").sort_values(["series_id", "timestamp"]).reset_index(drop=True)
    quarantined = Quarantine(store).read("big")
    quarantined = quarantined[["series_id", "timestamp", "reason", "record"]].sort_values(["series_id", "reason"]).reset_index(drop=True)
    return data, quarantined, [r.as_dict() for r in reports]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_read_7_rows_at_a_time_lands_exactly_as_read_whole(tmp_path, fmt) -> None:
    path = tmp_path / "big.csv"
    _messy_csv(path)
    if fmt == "parquet":
        frame = pd.read_csv(path, dtype="str", keep_default_na=False)
        path = tmp_path / "big.parquet"
        frame.to_parquet(path)

    small, whole = ObservationStore(tmp_path / "small"), ObservationStore(tmp_path / "whole")
    source = _config(path, 7).build_source()
    batch = source.fetch(source.units()[0], {}, pd.Timestamp("2030-01-02", tz="UTC"))
    assert len(batch.parts) > 1 and batch.rows == 187  # streamed and spilled into several parts
    batch.close()

    streamed = _state(small, ingest(_config(path, 7), small))
    reference = _state(whole, ingest(_config(path, WHOLE), whole))

    pd.testing.assert_frame_equal(streamed[0], reference[0])
    pd.testing.assert_frame_equal(streamed[1], reference[1])
    assert streamed[2] == reference[2]
    data, quarantined, reports = streamed
    assert sorted(data["series_id"].unique()) == SERIES
    assert data.set_index(["series_id", "timestamp"]).loc[("s2", pd.Timestamp("2024-01-03", tz="UTC")), "target"] == 999.0
    by_series = {r["series_id"]: r for r in reports}
    assert by_series["s1"]["duplicates"] == 1 and by_series["s1"]["added"] == 20
    assert {"s3", "s4", "s6", ""} <= set(quarantined["series_id"])
    assert any("9999" in r for r in quarantined["reason"])
    assert any("after the ingest's end" in r for r in quarantined["reason"])
    if fmt == "csv":  # Parquet keeps the short row's blank as a blank string, the same outcome
        assert by_series["s5"]["quarantined"] == 1


def test_a_rerun_of_a_streamed_file_changes_nothing_and_leaves_no_spill(tmp_path) -> None:
    path = tmp_path / "big.csv"
    _messy_csv(path)
    store = ObservationStore(tmp_path / "store")
    ingest(_config(path, 5), store)
    again = ingest(_config(path, 5), store)
    assert sum(r.added + r.updated for r in again) == 0 and sum(r.unchanged for r in again) > 0
    source = _config(path, 5).build_source()
    batch = source.fetch(source.units()[0], {}, pd.Timestamp("2030-01-02", tz="UTC"))
    directory = batch.directory
    batch.close()
    assert not pd.io.common.file_exists(directory)


def test_the_batch_size_is_checked_with_the_config(tmp_path) -> None:
    with pytest.raises(ConfigError, match="read_batch_rows"):
        _config(tmp_path / "x.csv", 0)


def _rows(path, rows: int, **kwargs) -> pd.DataFrame:
    source = FileSource(str(path), read_batch_rows=rows, **kwargs)
    batch = source.fetch(source.units()[0], {}, pd.Timestamp("2030-01-01", tz="UTC"))
    try:
        return batch.read_all().sort_values(["series_id", "timestamp", "target"]).reset_index(drop=True)
    finally:
        batch.close()


@pytest.mark.parametrize("later", ["", "x,2024-09-20 13:00,1\n"])
def test_a_midnight_dst_skips_is_read_as_the_whole_file_decides(tmp_path, later) -> None:
    # In Santiago 2024-09-08 has no midnight. A file of dates alone means that day (it starts at 01:00);
    # a file with times of day marks the row unreadable. Only the file's end says which, so 2-row batches must agree.
    days = "".join(f"x,2024-09-{d:02d},{d}\n" for d in range(1, 16))
    path = tmp_path / "santiago.csv"
    path.write_text("series_id,timestamp,target\n" + days + later)
    streamed, whole = _rows(path, 2, timezone="America/Santiago"), _rows(path, WHOLE, timezone="America/Santiago")
    pd.testing.assert_frame_equal(streamed, whole)
    skipped = whole.loc[whole["target"] == 8.0].iloc[0]
    if later:
        assert pd.isna(skipped["timestamp"]) and "does not exist in its zone" in skipped[REASON]
    else:
        assert skipped["timestamp"] == pd.Timestamp("2024-09-08 01:00", tz="America/Santiago") and skipped[REASON] == ""


def test_a_file_broken_part_way_is_one_clear_error_and_leaves_no_spill(tmp_path) -> None:
    lines = "".join(f"s{k % 3},2024-01-{k % 28 + 1:02d},{k}\n" for k in range(40))
    csv_path = tmp_path / "ragged.csv"
    csv_path.write_text("series_id,timestamp,target\n" + lines + "s1,2024-02-01,1,extra\n")
    before = set(Path(tempfile.gettempdir()).glob("forecasting-file-*"))
    with pytest.raises(SourceError, match=r"ragged.csv: cannot read it as csv: .*Expected 3 columns, got 4"):
        _rows(csv_path, 7, timezone="UTC")
    table = pa.table({"series_id": [f"s{k % 3}" for k in range(400)], "timestamp": ["2024-01-01"] * 400, "target": [1.0] * 400})
    good = tmp_path / "good.parquet"
    pq.write_table(table, good, row_group_size=50)
    broken = tmp_path / "broken.parquet"
    data = good.read_bytes()
    broken.write_bytes(data[:4] + data[4:-200].replace(b"s1", b"\xff\xff", 3) + data[-200:])  # values damaged, footer intact
    with pytest.raises(SourceError, match=r"broken.parquet: cannot read it as parquet"):
        _rows(broken, 7, timezone="UTC")
    assert set(Path(tempfile.gettempdir()).glob("forecasting-file-*")) == before


def test_the_grid_is_inferred_from_the_longest_series_without_reading_the_file_whole(tmp_path) -> None:
    from forecasting.data.calendar import infer_freq

    path = tmp_path / "big.csv"
    lines = [f"a,2024-01-{d:02d}" for d in range(1, 6)] + [f"b,2024-02-01 {h:02d}:00" for h in range(9)] + ["c,2024-03-01"]
    path.write_text("series_id,timestamp,target\n" + "".join(f"{line},1\n" for line in lines))
    source = FileSource(str(path), timezone="UTC", read_batch_rows=2)
    longest = source.longest_series()
    assert set(longest["series_id"]) == {"b"} and len(longest) == 9
    assert infer_freq(longest) == infer_freq(source.read_frame()) == "h"
