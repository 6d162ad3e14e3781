"""Long loops say how far they are (issue 20): a line every few seconds with count, ETA; short loops stay silent."""

from __future__ import annotations

import logging

import numpy as np

from forecasting import progress
from forecasting.progress import Progress, track


def test_a_loop_reports_count_share_and_time_left_then_closes(caplog) -> None:
    caplog.set_level(logging.INFO, logger="forecasting.progress")
    assert list(track(range(4), "ingest weather", 4, every=0)) == [0, 1, 2, 3]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("ingest weather: 1/4 series (25%), elapsed 0:00, ETA ")
    assert [line.split(":")[1].split()[0] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "ETA" not in lines[-1]  # the closing line: all done


def test_a_loop_shorter_than_the_interval_says_nothing(caplog) -> None:
    caplog.set_level(logging.INFO, logger="forecasting.progress")
    steps = Progress("predict m", 3, "chunks", every=3600)
    for _ in range(3):
        steps.advance()
    steps.finish()
    assert caplog.records == []


def test_statistical_fits_and_a_many_series_ingest_report_progress(caplog, monkeypatch, tmp_path) -> None:
    """The loops that take minutes on thousands of series go through it: ETS fits, per-series ingest."""
    from forecasting.config.ingest import parse_ingest_config
    from forecasting.data.ingest import ingest
    from forecasting.data.store import ObservationStore
    from forecasting.evaluation.statistical import statistical_forecasts

    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="forecasting.progress")
    rng = np.random.default_rng(0)
    statistical_forecasts([rng.normal(size=40) for _ in range(3)], horizon=2, season=1, models=["ets"])
    assert any(r.getMessage().startswith("statistical baselines: 2/3 fits") for r in caplog.records)

    caplog.clear()
    rows = "\n".join(f"s{k},2024-01-{d:02d},{k + d}" for k in range(5) for d in range(1, 15))
    path = tmp_path / "many.csv"
    path.write_text("id,date,value\n" + rows + "\n")
    config = parse_ingest_config({"source": "files", "path": str(path), "dataset": "many", "freq": "D", "timezone": "UTC",
                                  "columns": {"id": "series_id", "date": "timestamp", "value": "target"}})
    ingest(config, ObservationStore(tmp_path / "store"))
    messages = [r.getMessage() for r in caplog.records]
    assert "ingest many: 3/5 series (60%)" in " ".join(messages)
    assert messages[-1].startswith("ingest many: 5/5 series (100%)")
