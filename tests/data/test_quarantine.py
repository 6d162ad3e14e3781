"""Quarantined rows are kept per series with their reasons; re-quarantining the same row adds nothing."""

from __future__ import annotations

import hashlib

import pandas as pd

from forecasting.data.quarantine import Quarantine
from forecasting.data.store import ObservationStore


def _rows(series_id: str, hours: list[int], reason: str = "target is missing") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": series_id,
            "timestamp": pd.to_datetime([f"2024-01-01 {h:02d}:00" for h in hours], utc=True),
            "reason": reason,
            "record": [f'{{"target": {h}}}' for h in hours],
        }
    )


def test_rows_are_kept_per_series_with_source_and_reason(tmp_path) -> None:
    quarantine = Quarantine(ObservationStore(tmp_path))
    rows = pd.concat([_rows("weather/a", [1, 2]), _rows("weather/b", [5], "rh 130 is not <= 100"), _rows("", [7])])
    added = quarantine.add("weather", rows, source="open_meteo", fetched_at=pd.Timestamp("2024-01-03", tz="UTC"))

    assert added == {"weather/a": 2, "weather/b": 1, "_no_series_id": 1}
    out = quarantine.read("weather", ["weather/b"])
    assert out[["reason", "source", "fetched_at"]].iloc[0].tolist() == ["rh 130 is not <= 100", "open_meteo", "2024-01-03T00:00:00+00:00"]
    assert len(quarantine.read("weather")) == 4
    assert (tmp_path / "weather" / "_quarantine" / "weather%2Fa.parquet").is_file()


def test_adding_the_same_rows_again_changes_nothing(tmp_path) -> None:
    quarantine = Quarantine(ObservationStore(tmp_path))
    quarantine.add("weather", _rows("weather/a", [1, 2]), source="s", fetched_at=pd.Timestamp("2024-01-03", tz="UTC"))
    path = tmp_path / "weather" / "_quarantine" / "weather%2Fa.parquet"
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    again = quarantine.add("weather", _rows("weather/a", [2, 1]), source="s", fetched_at=pd.Timestamp("2024-01-04", tz="UTC"))
    assert again == {"weather/a": 0}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    more = quarantine.add("weather", _rows("weather/a", [2, 3]), source="s", fetched_at=pd.Timestamp("2024-01-04", tz="UTC"))
    assert more == {"weather/a": 1} and len(quarantine.read("weather")) == 3


def test_reading_an_empty_quarantine_gives_the_columns(tmp_path) -> None:
    out = Quarantine(ObservationStore(tmp_path)).read("nothing")
    assert out.empty and list(out.columns) == ["series_id", "timestamp", "reason", "record", "source", "fetched_at"]
