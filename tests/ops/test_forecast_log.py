"""The append-only forecast log on real Parquet: one copy per key, partitions, range reads."""

import pandas as pd
import pytest

from forecasting.ops import forecast_log
from forecasting.errors import ForecastingError


def batch(origin: str, version: str = "1", series=("a", "b/c"), horizon: int = 3, offset: float = 0.0) -> pd.DataFrame:
    o = pd.Timestamp(origin, tz="UTC")
    rows = [
        {"series_id": s, "origin": o, "timestamp": o + pd.Timedelta(days=h), "step": h, "mean": 10.0 + h + offset,
         "model_name": "m", "model_version": version, "run_id": "r"}
        for s in series for h in range(1, horizon + 1)
    ]
    return pd.DataFrame(rows)


def test_append_is_idempotent_and_keeps_earlier_origins(tmp_path):
    paths = forecast_log.append(tmp_path, batch("2024-01-01"))
    assert paths == [tmp_path / "model=m" / "origin_date=2024-01-01" / "1-20240101T000000Z.parquet"]
    forecast_log.append(tmp_path, batch("2024-01-01"))
    forecast_log.append(tmp_path, batch("2024-01-02"))
    log = forecast_log.read(tmp_path, "m")
    assert len(log) == 2 * 2 * 3
    assert not log.duplicated(forecast_log.KEY).any()
    assert sorted(log["origin"].dt.strftime("%Y-%m-%d").unique()) == ["2024-01-01", "2024-01-02"]
    assert set(log["series_id"]) == {"a", "b/c"}


def test_rerun_of_an_origin_replaces_its_rows_and_versions_stay_apart(tmp_path):
    forecast_log.append(tmp_path, batch("2024-01-01", offset=0.0))
    forecast_log.append(tmp_path, batch("2024-01-01", offset=5.0))
    forecast_log.append(tmp_path, batch("2024-01-01", version="2"))
    log = forecast_log.read(tmp_path, "m")
    assert len(log) == 2 * 6
    assert log.loc[log["model_version"] == "1", "mean"].min() == pytest.approx(16.0)
    assert len(forecast_log.read(tmp_path, "m", versions=["2"])) == 6


def test_read_filters_by_model_and_origin_range(tmp_path):
    for day in ("2024-01-01", "2024-01-05", "2024-01-09"):
        forecast_log.append(tmp_path, batch(day))
    other = batch("2024-01-05").assign(model_name="other")
    forecast_log.append(tmp_path, other)
    got = forecast_log.read(tmp_path, "m", start="2024-01-02", end="2024-01-08")
    assert set(got["origin"]) == {pd.Timestamp("2024-01-05", tz="UTC")}
    assert set(got["model_name"]) == {"m"}
    assert forecast_log.read(tmp_path, "nobody").empty


def test_batch_with_mixed_origins_goes_to_one_file_per_origin(tmp_path):
    mixed = pd.concat([batch("2024-01-01", series=("a",)), batch("2024-01-03", series=("b",))], ignore_index=True)
    assert len(forecast_log.append(tmp_path, mixed)) == 2


def test_bad_batches_are_refused(tmp_path):
    with pytest.raises(ForecastingError, match="lack column"):
        forecast_log.append(tmp_path, batch("2024-01-01").drop(columns=["model_version"]))
    doubled = pd.concat([batch("2024-01-01"), batch("2024-01-01")])
    with pytest.raises(ForecastingError, match="repeats"):
        forecast_log.append(tmp_path, doubled)
    assert not (tmp_path / "model=m").exists()
