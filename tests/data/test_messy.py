"""Messy files meet rules with safe defaults: duplicates, unused covariates, gaps, nothing landing,
out-of-range timestamps, implausible values, backfills and a full disk (issues 16 and 19)."""

from __future__ import annotations

import errno

import numpy as np
import pandas as pd
import pytest

from forecasting.config.ingest import parse_ingest_config
from forecasting.data import store as store_module
from forecasting.data.ingest import check_outcome, ingest, raise_for_failures, write_report_csv
from forecasting.data.quarantine import Quarantine
from forecasting.data.sources.files import FileSource
from forecasting.data.sources.base import SourceError
from forecasting.data.store import ObservationStore
from forecasting.errors import ConfigError, ForecastingError


@pytest.fixture
def store(tmp_path) -> ObservationStore:
    return ObservationStore(tmp_path / "store")


def _config(path, **overrides):
    raw = {"source": "files", "path": str(path), "dataset": "messy", "series_id": "x", "freq": "D", "timezone": "UTC",
           "columns": {"date": "timestamp", "value": "target"}, "limits": {"min_rows": 3}, **overrides}
    return parse_ingest_config(raw)


def _csv(path, text: str):
    path.write_text(text)
    return path


DAYS = "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 11))


@pytest.mark.parametrize("rule, kept", [("last", 99.0), ("first", 3.0)])
def test_conflicting_duplicates_follow_the_rule(tmp_path, store, rule, kept) -> None:
    path = _csv(tmp_path / "d.csv", "date,value\n" + DAYS + "2024-01-03,99\n")
    (report,) = ingest(_config(path, duplicates=rule), store)

    assert (report.added, report.quarantined) == (10, 0)
    assert store.read("messy").set_index("timestamp")["target"][pd.Timestamp("2024-01-03", tz="UTC")] == kept
    assert any(f"kept the {rule} of each (duplicates: {rule})" in p for p in report.problems)


def test_conflicting_duplicates_by_default_are_quarantined_with_the_rule_that_resolves_them(tmp_path, store) -> None:
    path = _csv(tmp_path / "d.csv", "date,value\n" + DAYS + "2024-01-03,99\n")
    (report,) = ingest(_config(path), store)

    assert (report.added, report.quarantined) == (9, 2)
    assert set(Quarantine(store).read("messy")["reason"]) == {"conflicting values for the same timestamp"}
    assert any("set 'duplicates: last'" in p for p in report.problems)


def test_a_missing_covariate_no_model_requires_never_holds_back_the_target(tmp_path, store) -> None:
    rows = "".join(f"2024-01-{d:02d},{d},{'' if d == 4 else 50 + d}\n" for d in range(1, 11))
    path = _csv(tmp_path / "c.csv", "date,value,humidity\n" + rows)
    mapping = {"date": "timestamp", "value": "target", "humidity": "humidity"}

    (report,) = ingest(_config(path, columns=mapping), store)
    assert (report.added, report.quarantined) == (10, 0)
    stored = store.read("messy").set_index("timestamp")
    assert stored["target"].notna().all() and np.isnan(stored.loc[pd.Timestamp("2024-01-04", tz="UTC"), "humidity"])
    assert any("missing humidity landed as NaN" in p for p in report.problems)

    (strict,) = ingest(_config(path, columns=mapping, dataset="strict", required=["humidity"]), store)
    assert (strict.added, strict.quarantined) == (9, 1)
    assert Quarantine(store).read("strict")["reason"].tolist() == ["humidity is missing"]


def test_open_gaps_are_listed_with_their_spans_on_local_days(tmp_path, store) -> None:
    days = [d for d in range(1, 21) if not 5 <= d <= 8]
    path = _csv(tmp_path / "g.csv", "date,value\n" + "".join(f"2024-03-{d:02d},{d}\n" for d in days))
    (report,) = ingest(_config(path, timezone="America/New_York"), store)

    assert report.open_gaps == 1 and report.gap_spans == ["2024-03-05 .. 2024-03-08 (4 missing)"]
    assert "1 open gap(s) longer than gaps.max_fill 0, left absent: 2024-03-05 .. 2024-03-08 (4 missing)" in report.problems[0]


def test_a_run_that_quarantines_everything_fails_in_one_line(tmp_path, store) -> None:
    path = _csv(tmp_path / "q.csv", "date,value\n" + DAYS)
    reports = ingest(_config(path, freq="h", ranges={"target": {"gt": 100}}), store)
    assert reports[0].status == "quarantined"
    with pytest.raises(ForecastingError) as info:
        check_outcome(reports)
    message = str(info.value)
    assert message.startswith("ingest: 0 rows landed: all 10 of 10 rows were quarantined; first problem: series 'x'")
    assert "\n" not in message


def test_a_header_only_file_lands_0_rows_and_says_so(tmp_path, store) -> None:
    path = _csv(tmp_path / "h.csv", "date,value\n")
    reports = ingest(_config(path), store)
    with pytest.raises(ForecastingError, match=r"ingest failed for series 'x' of dataset 'messy':\n.*\(0 rows landed\)") as info:
        check_outcome(reports)
    assert "the others landed" not in str(info.value)

    _csv(tmp_path / "e.csv", "")
    with pytest.raises(ForecastingError, match=r"is empty \(0 bytes of data\): 0 rows to land"):
        raise_for_failures(ingest(_config(tmp_path / "e.csv"), store))

    with_ids = _config(path, series_id=None, columns={"date": "timestamp", "value": "target", "id": "series_id"})
    _csv(tmp_path / "h.csv", "date,value,id\n")
    with pytest.raises(ForecastingError, match=r"0 rows landed: the source gave no data rows"):
        check_outcome(ingest(with_ids, store))


def test_timestamps_in_year_1_or_9999_quarantine_their_row_only(tmp_path, store) -> None:
    path = _csv(tmp_path / "y.csv", "date,value\n" + DAYS + "0001-01-01,5\n9999-12-31,6\n")
    (report,) = ingest(_config(path), store)

    assert (report.added, report.quarantined) == (10, 2)
    reasons = Quarantine(store).read("messy")["reason"].tolist()
    assert reasons == [f"timestamp '{v}' is outside the range the store holds (1677-09-21 to 2262-04-11)" for v in ("0001-01-01", "9999-12-31")]


def test_implausible_ids_values_and_series_are_flagged_with_their_limits(tmp_path, store) -> None:
    rows = ["a\x00b,2024-01-01,1", "big,2024-01-01,1e300", "big,2024-01-02,-1e300", "big,2024-01-03,1"]
    rows += [f"flat,2024-01-{d:02d},5" for d in range(1, 13)] + [f"short,2024-01-{d:02d},{d}" for d in range(1, 4)]
    path = _csv(tmp_path / "p.csv", "id,date,value\n" + "\n".join(rows) + "\n")
    config = _config(path, series_id=None, columns={"id": "series_id", "date": "timestamp", "value": "target"}, limits={"min_rows": 5})
    reports = {r.series_id: r for r in ingest(config, store)}

    assert reports["a\x00b"].quarantined == 1 and reports["a\x00b"].added == 0
    assert "series_id contains control characters" in Quarantine(store).read("messy", ["a\x00b"])["reason"].item()
    assert (reports["big"].added, reports["big"].quarantined) == (1, 2)
    assert "beyond the plausible limit +-1e+15 (limits.max_abs)" in Quarantine(store).read("messy", ["big"])["reason"].iloc[0]
    assert any("constant: all 12 target(s) are 5" in p for p in reports["flat"].problems)
    assert any("only 3 row(s), fewer than limits.min_rows 5" in p for p in reports["short"].problems)
    loose = _config(path, dataset="loose", series_id=None, columns={"id": "series_id", "date": "timestamp", "value": "target"},
                    limits={"max_abs": 1e301, "min_rows": 1, "flag_constant": False})
    relaxed = {r.series_id: r for r in ingest(loose, store)}
    assert relaxed["big"].added == 3 and relaxed["flat"].problems == [] and relaxed["short"].problems == []


def test_a_directory_is_named_as_one(tmp_path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        _config(tmp_path)
    with pytest.raises(SourceError, match="is a directory"):
        FileSource(str(tmp_path)).fetch(FileSource(str(tmp_path)).units()[0], {}, pd.Timestamp.now(tz="UTC"))


def test_a_file_backfills_older_rows_and_counts_what_was_unchanged(tmp_path, store) -> None:
    hours = pd.date_range("2024-01-01", periods=600, freq="h", tz="UTC")
    frame = pd.DataFrame({"date": hours.strftime("%Y-%m-%dT%H:%MZ"), "value": np.arange(600.0)})
    path = tmp_path / "b.csv"
    frame.iloc[200:600].to_csv(path, index=False)
    config = _config(path, freq="h", timezone=None, overlap=24)
    (first,) = ingest(config, store)
    assert first.added == 400

    frame.iloc[0:400].to_csv(path, index=False)
    (backfill,) = ingest(config, store)

    assert (backfill.fetched, backfill.added, backfill.updated, backfill.unchanged, backfill.quarantined) == (400, 200, 0, 200, 0)
    assert store.read("messy")["target"].tolist() == list(np.arange(600.0))


def test_a_full_disk_stops_the_run_says_what_landed_and_a_rerun_finishes(tmp_path, store, monkeypatch) -> None:
    rows = [f"s{k:02d},2024-01-{d:02d},{k + d}" for k in range(6) for d in range(1, 11)]
    path = _csv(tmp_path / "many.csv", "id,date,value\n" + "\n".join(rows) + "\n")
    config = _config(path, series_id=None, columns={"id": "series_id", "date": "timestamp", "value": "target"})
    real, writes = store_module.write_parquet_atomic, []

    def full_after_three(frame, path, **kwargs):  # the fourth data file finds no space, as on a full tmpfs
        if "_quarantine" not in str(path):
            writes.append(path)
            if len(writes) > 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(frame, path, **kwargs)

    monkeypatch.setattr(store_module, "write_parquet_atomic", full_after_three)
    reports = ingest(config, store)

    assert [r.status for r in reports] == ["changed"] * 3 + ["failed"] + ["not tried"] * 2
    with pytest.raises(ForecastingError) as info:
        raise_for_failures(reports)
    message = str(info.value)
    assert message.startswith("ingest failed for 1 of 6 series (3 landed, 2 never tried: rerun to finish them):")
    assert "s03: the disk holding the store" in message and "is full (No space left on device)" in message
    assert "never tried: s04, s05" in message
    assert store.series("messy") == ["s00", "s01", "s02"]

    monkeypatch.setattr(store_module, "write_parquet_atomic", real)
    rerun = ingest(config, store)
    assert [r.status for r in rerun] == ["unchanged"] * 3 + ["changed"] * 3
    assert len(store.read("messy")) == 60


def test_the_full_report_is_a_csv_beside_the_dataset(tmp_path, store) -> None:
    path = _csv(tmp_path / "d.csv", "date,value\n" + DAYS + "2024-01-03,99\n")
    reports = ingest(_config(path), store)
    (written,) = write_report_csv(reports, store, stamp=pd.Timestamp("2024-06-01 12:00", tz="UTC"))
    assert written == str(store.root / "messy" / "_reports" / "ingest-20240601T120000Z.csv")
    table = pd.read_csv(written)
    assert table[["series_id", "status", "fetched", "added", "quarantined"]].values.tolist() == [["x", "changed", 11, 9, 2]]
    assert store.series("messy") == ["x"]  # the report is not a series


def test_a_quarantined_row_never_wins_a_duplicates_rule(tmp_path, store) -> None:
    path = _csv(tmp_path / "d.csv", "date,value\n" + DAYS + "2024-01-03,99\n2024-01-03,-5\n")
    (report,) = ingest(_config(path, duplicates="last", ranges={"target": {"ge": 0}}), store)
    assert (report.added, report.quarantined) == (10, 1)
    assert store.read("messy").set_index("timestamp")["target"][pd.Timestamp("2024-01-03", tz="UTC")] == 99.0
