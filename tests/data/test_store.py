"""The Parquet observation store: round trips, idempotent upserts, atomic writes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from forecasting.data.schema import validate_observations
from forecasting.data.store import ObservationStore, write_parquet_atomic
from forecasting.errors import DataValidationError, ForecastingError


def _observations(
    series_id: str, start: str, values: list[float], **covariates: list[float]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": series_id,
            "timestamp": pd.date_range(start, periods=len(values), freq="D", tz="UTC"),
            "target": values,
            **covariates,
        }
    )


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file under ``root``."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def store(tmp_path: Path) -> ObservationStore:
    return ObservationStore(tmp_path / "store")


@pytest.fixture
def two_series() -> pd.DataFrame:
    return pd.concat(
        [
            _observations("stock/FB", "2012-05-18", [38.23, 34.03, 31.0], volume=[57e7, 17e7, 1e8]),
            _observations("stock/IBM", "2012-05-18", [1.5, 2.5, 3.5], volume=[1.0, 2.0, 3.0]),
        ],
        ignore_index=True,
    )


def test_round_trip_preserves_values_and_dtypes(
    store: ObservationStore, two_series: pd.DataFrame
) -> None:
    summary = store.upsert("prices", two_series)

    assert summary.added == {"stock/FB": 3, "stock/IBM": 3}
    assert summary.total_added == 6 and summary.total_updated == 0
    assert (store.root / "prices" / "stock%2FFB.parquet").is_file()
    assert store.datasets() == ["prices"]
    assert store.series("prices") == ["stock/FB", "stock/IBM"]
    out = store.read("prices")
    pd.testing.assert_frame_equal(out, validate_observations(two_series))
    assert out["target"].tolist() == two_series["target"].tolist()
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert out["series_id"].dtype == "str" and out["volume"].dtype == np.float64


def test_read_selects_series_and_cuts_at_end(
    store: ObservationStore, two_series: pd.DataFrame
) -> None:
    store.upsert("prices", two_series)
    out = store.read("prices", ["stock/IBM"], end=pd.Timestamp("2012-05-19", tz="UTC"))
    assert out["series_id"].unique().tolist() == ["stock/IBM"]
    assert out["target"].tolist() == [1.5, 2.5]
    with pytest.raises(ForecastingError, match="naive"):
        store.read("prices", end=pd.Timestamp("2012-05-19"))


def test_repeating_an_upsert_changes_nothing(
    store: ObservationStore, two_series: pd.DataFrame
) -> None:
    store.upsert("prices", two_series)
    before = _snapshot(store.root)

    summary = store.upsert("prices", two_series.sample(frac=1, random_state=0))

    assert summary.total_added == 0 and summary.total_updated == 0
    assert summary.unchanged == {"stock/FB": 3, "stock/IBM": 3}
    assert summary.changed_series == []
    assert _snapshot(store.root) == before


def test_overlapping_upsert_counts_updates_and_newest_wins(
    store: ObservationStore, two_series: pd.DataFrame
) -> None:
    store.upsert("prices", two_series)
    ibm_before = _snapshot(store.root)["prices/stock%2FIBM.parquet"]
    revision = _observations("stock/FB", "2012-05-20", [31.91, 28.0], volume=[1.0e8, 9.0e7])

    summary = store.upsert("prices", revision)

    assert summary.added == {"stock/FB": 1}
    assert summary.updated == {"stock/FB": 1}  # 2012-05-20 target 31.0 -> 31.91
    assert summary.unchanged == {"stock/FB": 0}
    fb = store.read("prices", ["stock/FB"])
    assert fb["target"].tolist() == [38.23, 34.03, 31.91, 28.0]
    assert _snapshot(store.root)["prices/stock%2FIBM.parquet"] == ibm_before


def test_covariates_union_and_columns_the_upsert_lacks_are_kept(store: ObservationStore) -> None:
    store.upsert("mixed", _observations("a", "2024-01-01", [1.0, 2.0], wind=[5.0, 6.0]))
    store.upsert("mixed", _observations("b", "2024-01-01", [3.0], rain=[0.5]))
    summary = store.upsert("mixed", _observations("a", "2024-01-02", [2.5]))

    assert summary.updated == {"a": 1}
    out = store.read("mixed")
    assert list(out.columns) == ["series_id", "timestamp", "target", "wind", "rain"]
    a = out[out["series_id"] == "a"]
    assert a["target"].tolist() == [1.0, 2.5]
    assert a["wind"].tolist() == [5.0, 6.0]  # not erased by an upsert without 'wind'
    assert a["rain"].isna().all()
    assert out.loc[out["series_id"] == "b", "wind"].isna().all()


def test_invalid_frame_raises_and_writes_nothing(
    store: ObservationStore, two_series: pd.DataFrame
) -> None:
    store.upsert("prices", two_series)
    before = _snapshot(store.root)
    new = _observations("stock/NEW", "2013-01-01", [1.0, np.nan])
    bad = pd.concat([two_series, new], ignore_index=True)
    bad.loc[0, "target"] = 99.0  # a valid change that must not land either

    with pytest.raises(DataValidationError, match="stock/NEW"):
        store.upsert("prices", bad)

    assert _snapshot(store.root) == before
    assert store.series("prices") == ["stock/FB", "stock/IBM"]


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", "a\\b"])
def test_dataset_names_with_path_parts_are_rejected(
    store: ObservationStore, two_series: pd.DataFrame, name: str
) -> None:
    with pytest.raises(ForecastingError, match="invalid dataset name"):
        store.upsert(name, two_series)
    assert not store.root.exists()


def test_unknown_dataset_and_series_are_named(
    store: ObservationStore, two_series: pd.DataFrame
) -> None:
    store.upsert("prices", two_series)
    with pytest.raises(ForecastingError, match="unknown dataset 'weather'.*'prices'"):
        store.read("weather")
    missing = "'stock/AAPL', 'stock/MSFT'.*available series: 'stock/FB'"
    with pytest.raises(ForecastingError, match=missing):
        store.read("prices", ["stock/FB", "stock/AAPL", "stock/MSFT"])


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out" / "forecast.parquet"
    good = pd.DataFrame({"x": [1.0, 2.0]})
    write_parquet_atomic(good, path)
    original = path.read_bytes()

    unserialisable = pd.DataFrame({"x": [1.0, 2.0], "mixed": [1, "a"]})
    with pytest.raises(pa.ArrowException, match="column mixed"):
        write_parquet_atomic(unserialisable, path)

    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == ["forecast.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(path), good)


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "f.parquet"
    write_parquet_atomic(pd.DataFrame({"x": [1.0]}), path)
    write_parquet_atomic(pd.DataFrame({"x": [2.0]}), path)
    assert pd.read_parquet(path)["x"].tolist() == [2.0]
    assert [p.name for p in path.parent.iterdir()] == ["f.parquet"]


def test_lineage_is_appended_per_changed_partition_only(store: ObservationStore, two_series: pd.DataFrame) -> None:
    first = {"source": "stooq", "fetched_at": "2012-05-21T22:00:00+00:00", "request": {"url": "http://x/q/d/l/", "params": {"s": "fb.us"}}}
    store.upsert("prices", two_series, lineage=first)
    second = {**first, "fetched_at": "2012-05-22T22:00:00+00:00"}
    store.upsert("prices", _observations("stock/FB", "2012-05-20", [31.91]), lineage=second)

    fb, ibm = store.lineage("prices", "stock/FB"), store.lineage("prices", "stock/IBM")
    assert [e["fetched_at"] for e in fb] == ["2012-05-21T22:00:00+00:00", "2012-05-22T22:00:00+00:00"]
    assert fb[1]["request"]["params"] == {"s": "fb.us"} and (fb[1]["added"], fb[1]["updated"]) == (0, 1)
    assert len(ibm) == 1 and ibm[0]["added"] == 3
    before = _snapshot(store.root)
    store.upsert("prices", two_series.iloc[3:], lineage={**first, "fetched_at": "later"})  # nothing changes
    assert _snapshot(store.root) == before
    assert store.read("prices", ["stock/FB"]).attrs == {}  # lineage stays in the file, not in frames


def test_last_timestamps_per_series(store: ObservationStore, two_series: pd.DataFrame) -> None:
    assert store.last_timestamps("prices") == {}
    store.upsert("prices", two_series)
    assert store.last_timestamps("prices") == {
        "stock/FB": pd.Timestamp("2012-05-20", tz="UTC"),
        "stock/IBM": pd.Timestamp("2012-05-20", tz="UTC"),
    }


def test_describe_reads_rows_columns_and_time_range_from_the_footers(store: ObservationStore, two_series: pd.DataFrame) -> None:
    store.upsert("prices", two_series)
    store.upsert("prices", _observations("stock/IBM", "2012-05-21", [4.5, 5.5], volume=[4.0, 5.0]))
    footers = {f.series_id: f for f in store.describe("prices")}
    assert sorted(footers) == ["stock/FB", "stock/IBM"]
    ibm = footers["stock/IBM"]
    assert ibm.rows == 5 and {"series_id", "timestamp", "target", "volume"} <= set(ibm.columns)
    assert (ibm.first, ibm.last) == (pd.Timestamp("2012-05-18", tz="UTC"), pd.Timestamp("2012-05-22", tz="UTC"))
    assert footers["stock/FB"].rows == 3
    with pytest.raises(ForecastingError, match="unknown dataset 'nope'.*prices"):
        store.describe("nope")


def test_concurrent_upserts_of_one_series_lose_nothing(store: ObservationStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    days = [_observations("stock/X", f"2020-01-{d:02d}", [float(d)]) for d in range(1, 25)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda f: store.upsert("prices", f), days))
    assert store.read("prices")["target"].tolist() == [float(d) for d in range(1, 25)]


def test_concurrent_upserts_of_different_series_do_not_interfere(store: ObservationStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    frames = [_observations(f"stock/S{i}", "2020-01-01", list(np.arange(200.0) + i)) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        summaries = list(pool.map(lambda f: store.upsert("prices", f), frames))
    assert [s.total_added for s in summaries] == [200] * 6
    out = store.read("prices")
    assert out.groupby("series_id")["target"].first().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert not list((store.root / "prices").glob(".*.tmp"))


def test_a_killed_writers_temporary_is_removed_by_the_next_write_and_a_live_ones_is_kept(tmp_path):
    """kill -9 skips write_parquet_atomic's cleanup; the next write of that path removes what is stale."""
    import time

    from forecasting.data.store import STALE_TEMPORARY_SECONDS, write_parquet_atomic

    path = tmp_path / "origin=2024.parquet"
    stale = tmp_path / ".origin=2024.parquet.abc123.tmp"
    fresh = tmp_path / ".origin=2024.parquet.def456.tmp"
    other = tmp_path / ".other.parquet.ghi789.tmp"
    for f in (stale, fresh, other):
        f.write_bytes(b"half a file")
    old = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    write_parquet_atomic(pd.DataFrame({"a": [1, 2]}), path)
    assert pd.read_parquet(path)["a"].tolist() == [1, 2]
    assert not stale.exists()
    assert fresh.exists()  # a live writer's, still being written
    assert other.exists()  # another file's: its own next write cleans it


def test_a_temporary_of_a_dead_writer_on_this_host_goes_at_once(tmp_path):
    """A rerun right after kill -9 leaves nothing behind: the temporary names its writer's host and pid."""
    import subprocess
    import sys

    from forecasting.data.store import _host, write_parquet_atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    path = tmp_path / "origin=2024.parquet"
    orphan = tmp_path / f".origin=2024.parquet.{_host()}-{dead.stdout.strip()}.abc123.tmp"
    mine = tmp_path / f".origin=2024.parquet.{_host()}-{os.getpid()}.def456.tmp"
    for f in (orphan, mine):
        f.write_bytes(b"half a file")
    write_parquet_atomic(pd.DataFrame({"a": [1]}), path)
    assert not orphan.exists()
    assert mine.exists()  # this live process's: not stale
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, mine.name])
