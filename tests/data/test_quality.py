"""Row-level validation of a fetched batch: good rows pass, bad rows are quarantined with every reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.data.calendar import Grid
from forecasting.data.quality import Bounds, QualityRules, check_batch
from forecasting.data.sources.base import REASON
from forecasting.errors import DataValidationError

RULES = QualityRules(
    grid=Grid("h"),
    ranges={"relative_humidity_2m": Bounds(ge=0, le=100), "precipitation": Bounds(ge=0)},
    optional=frozenset({"precipitation"}),
)


def _batch(n: int = 6, series_id: str = "weather/berlin") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": series_id,
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "target": np.linspace(1.0, 2.0, n),
            "relative_humidity_2m": np.full(n, 80.0),
            "precipitation": np.zeros(n),
            REASON: "",
        }
    )


def test_a_clean_batch_is_all_good_and_canonical() -> None:
    checked = check_batch(_batch(), RULES)
    assert len(checked.good) == 6 and checked.quarantine.empty and checked.problems == {}
    assert list(checked.good.columns) == ["series_id", "timestamp", "target", "relative_humidity_2m", "precipitation"]
    assert str(checked.good["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_every_problem_of_every_series_is_reported_and_good_rows_survive() -> None:
    berlin, tokyo = _batch(), _batch(series_id="weather/tokyo")
    berlin.loc[1, "relative_humidity_2m"] = 130.0
    berlin.loc[2, "target"] = np.nan
    berlin.loc[3, ["target", "relative_humidity_2m"]] = [np.inf, -5.0]  # two reasons on one row
    berlin.loc[4, "precipitation"] = np.nan  # optional: a missing value is fine
    tokyo.loc[0, "timestamp"] = pd.Timestamp("2024-01-01 00:30", tz="UTC")
    tokyo.loc[5, REASON] = "target 'warm' is not a number"
    tokyo.loc[5, "target"] = np.nan
    checked = check_batch(pd.concat([berlin, tokyo], ignore_index=True), RULES)

    assert checked.good.groupby("series_id").size().to_dict() == {"weather/berlin": 3, "weather/tokyo": 4}
    reasons = dict(zip(checked.quarantine["timestamp"].astype(str) + " " + checked.quarantine["series_id"], checked.quarantine["reason"]))
    assert reasons == {
        "2024-01-01 01:00:00+00:00 weather/berlin": "relative_humidity_2m 130 is not >= 0 and <= 100",
        "2024-01-01 02:00:00+00:00 weather/berlin": "target is missing",
        "2024-01-01 03:00:00+00:00 weather/berlin": "target is infinite; relative_humidity_2m -5 is not >= 0 and <= 100",
        "2024-01-01 00:30:00+00:00 weather/tokyo": "timestamp is off the 'h' grid",
        "2024-01-01 05:00:00+00:00 weather/tokyo": "target 'warm' is not a number; target is missing",
    }
    assert checked.problems["weather/berlin"] == [
        "series 'weather/berlin': 1 row(s) with infinite target, first at 2024-01-01 03:00:00+00:00",
        "series 'weather/berlin': 1 row(s) with missing target, first at 2024-01-01 02:00:00+00:00",
        "series 'weather/berlin': 2 row(s) with relative_humidity_2m not >= 0 and <= 100, first at 2024-01-01 01:00:00+00:00 (value 130)",
    ]
    assert len(checked.problems["weather/tokyo"]) == 3
    record = json.loads(checked.quarantine.iloc[0]["record"])
    assert record == {"target": 1.2, "relative_humidity_2m": 130.0, "precipitation": 0.0}


def test_exact_repeats_collapse_but_conflicting_ones_are_quarantined() -> None:
    batch = _batch()
    repeated = pd.concat([batch, batch.iloc[[1]], batch.iloc[[4]].assign(target=9.0)], ignore_index=True)
    checked = check_batch(repeated, RULES)

    assert checked.duplicates == {"weather/berlin": 1}
    assert "series 'weather/berlin': 1 row(s) exactly repeating another were collapsed" in checked.problems["weather/berlin"]
    assert len(checked.good) == 5 and checked.good["timestamp"].is_unique
    assert checked.quarantine["reason"].tolist() == ["conflicting values for the same timestamp"] * 2
    assert sorted(json.loads(r)["target"] for r in checked.quarantine["record"]) == [1.8, 9.0]


def test_off_calendar_days_are_quarantined_on_the_trading_calendar() -> None:
    days = pd.to_datetime(["2012-07-03", "2012-07-04", "2012-07-05", "2012-07-07"], utc=True)
    batch = pd.DataFrame({"series_id": "stock/AAPL", "timestamp": days, "target": [18.3, 18.8, 18.4, 18.9], REASON: ""})
    checked = check_batch(batch, QualityRules(grid=Grid("XNYS"), ranges={"target": Bounds(gt=0)}))
    assert checked.good["timestamp"].dt.strftime("%m-%d").tolist() == ["07-03", "07-05"]
    assert checked.quarantine["reason"].unique().tolist() == ["timestamp is off the XNYS trading calendar"]


def test_missing_series_ids_and_timestamps_are_quarantined() -> None:
    batch = _batch(3)
    batch.loc[0, "series_id"] = ""
    batch.loc[1, "timestamp"] = pd.NaT
    checked = check_batch(batch, RULES)
    assert checked.quarantine["reason"].tolist() == ["series_id is missing", "timestamp is missing"]
    assert len(checked.good) == 1


def test_a_batch_that_cannot_be_read_row_by_row_lists_every_problem() -> None:
    batch = _batch().drop(columns=["target"]).assign(timestamp=lambda f: f["timestamp"].dt.tz_localize(None), note="x")
    with pytest.raises(DataValidationError) as info:
        check_batch(batch, RULES, name="stooq batch stock/X")
    assert info.value.name == "stooq batch stock/X"
    assert len(info.value.problems) == 3
    assert any("missing required column 'target'" in p for p in info.value.problems)
    assert any("'timestamp'" in p and "timezone-aware" in p for p in info.value.problems)
    assert any("'note' is not numeric" in p for p in info.value.problems)
