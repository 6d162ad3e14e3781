"""The big-file ingest benchmark runs end to end on a tiny file and reports what it promises."""

from __future__ import annotations

import json

from benchmarks import ingest_memory


def test_the_benchmark_ingests_every_row_in_a_child_and_reports_rss_and_rate(capsys) -> None:
    (result,) = ingest_memory.main(["--rows", "3000", "--series", "7", "--batch-rows", "500", "--json"])

    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["rows"] == 3000 and result["series"] == 7 and result["file_bytes"] > 3000 * 20
    streamed, reference = result["streamed"], result["reference"]
    assert streamed["rows"] == 3000 and streamed["series"] == 7 and streamed["quarantined"] == 0  # all landed, in 7 series
    assert streamed["read_batch_rows"] == 500
    assert reference["rows"] == 3000
    for r in (streamed, reference):
        assert r["peak_rss"] >= r["rss_after_imports"] > 10 << 20  # a real child's RSS, in bytes
        assert r["rows_per_s"] > 0 and r["peak_over_file"] == r["peak_rss"] / result["file_bytes"]
    assert result["cpu_flags"]


def test_the_generated_file_interleaves_hourly_series(tmp_path) -> None:
    path = tmp_path / "f.csv"
    ingest_memory.write_csv(path, 7, 3)
    lines = path.read_text().splitlines()
    assert lines[0] == "series_id,timestamp,target"
    assert [line.split(",")[0] for line in lines[1:]] == ["s00000", "s00001", "s00002"] * 2 + ["s00000"]
    assert lines[4].split(",")[1] == "2020-01-01 01:00:00"
