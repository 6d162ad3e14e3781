"""Validation of the canonical observation frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data.schema import REQUIRED_COLUMNS, validate_observations
from forecasting.errors import DataValidationError


def _frame(**overrides: object) -> pd.DataFrame:
    columns = {
        "series_id": ["b", "a", "b", "a"],
        "timestamp": pd.to_datetime(
            ["2024-01-02", "2024-01-02", "2024-01-01", "2024-01-01"], utc=True
        ),
        "target": [4.0, 2.0, 3.0, 1.0],
        "temp": [40.0, 20.0, 30.0, 10.0],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def _problems(frame: pd.DataFrame, **kwargs: object) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        validate_observations(frame, **kwargs)
    return info.value.problems


def test_every_problem_is_reported_in_one_error() -> None:
    frame = pd.DataFrame(
        {
            "series_id": ["stock/FB"] * 5 + [None],
            "timestamp": pd.to_datetime(
                ["2012-05-18", "2012-05-21", "2012-05-21"]
                + ["2012-05-22", "2012-05-23", "2012-05-24"],
                utc=True,
            ),
            "target": [np.nan, np.inf, 1.0, np.nan, 2.0, 3.0],
            "weather": ["rain"] * 6,
            "wind": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate_observations(frame, required=["wind", "humidity"], name="upload.csv")
    problems = info.value.problems
    message = str(info.value)

    assert message.startswith("upload.csv:")
    assert any("'humidity'" in p and "available columns" in p and "'wind'" in p for p in problems)
    assert any("series_id" in p and "1 null" in p for p in problems)
    assert any("'weather'" in p and "not numeric" in p for p in problems)
    target = "series 'stock/FB': 3 NaN/inf target values, first at 2012-05-18 00:00:00+00:00"
    assert target in problems
    assert any("'stock/FB'" in p and "'wind'" in p and "2012-05-22" in p for p in problems)
    assert any("'stock/FB'" in p and "repeat" in p and "2012-05-21" in p for p in problems)
    assert len(problems) == 6
    assert all(p in message for p in problems)


def test_naive_timestamps_are_rejected() -> None:
    frame = _frame(timestamp=pd.to_datetime(["2024-01-02"] * 2 + ["2024-01-01"] * 2))
    problems = _problems(frame)
    assert len(problems) == 1
    assert "'timestamp'" in problems[0] and "timezone-aware UTC" in problems[0]


def test_non_datetime_timestamps_are_rejected() -> None:
    problems = _problems(_frame(timestamp=["2024-01-02", "2024-01-02", "2024-01-01", "2024-01-01"]))
    assert any("'timestamp'" in p and "dtype" in p for p in problems)


def test_non_utc_timestamps_are_converted_to_utc() -> None:
    local = pd.to_datetime(["2024-07-01 09:00"] * 2 + ["2024-07-01 08:00"] * 2).tz_localize(
        "America/Los_Angeles"
    )
    out = validate_observations(_frame(timestamp=local))
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert out["timestamp"].iloc[0] == pd.Timestamp("2024-07-01 15:00", tz="UTC")


def test_output_is_canonical_sorted_and_typed() -> None:
    frame = _frame(series_id=[2, 1, 2, 1], target=[4, 2, 3, 1])
    frame.index = [10, 11, 12, 13]
    out = validate_observations(frame)

    assert list(out.columns) == [*REQUIRED_COLUMNS, "temp"]
    assert out["series_id"].tolist() == ["1", "1", "2", "2"]
    assert out["series_id"].dtype == "str"
    assert out["target"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert out["target"].dtype == np.float64 and out["temp"].dtype == np.float64
    assert out["timestamp"].is_monotonic_increasing is False  # sorted per series, not globally
    assert out.groupby("series_id")["timestamp"].apply(lambda s: s.is_monotonic_increasing).all()
    assert list(out.index) == [0, 1, 2, 3]


def test_input_is_not_mutated() -> None:
    oslo = pd.to_datetime(["2024-01-02"] * 2 + ["2024-01-01"] * 2).tz_localize("Europe/Oslo")
    frame = _frame(timestamp=oslo)
    before = frame.copy(deep=True)
    validate_observations(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_nan_in_optional_covariate_is_allowed_but_required_is_not() -> None:
    frame = _frame(temp=[np.nan, 1.0, 2.0, 3.0])
    assert validate_observations(frame)["temp"].isna().sum() == 1
    problems = _problems(frame, required=["temp"])
    assert problems == [
        "series 'b': 1 NaN/inf values in covariate 'temp', first at 2024-01-02 00:00:00+00:00"
    ]


def test_missing_required_columns_list_what_is_available() -> None:
    problems = _problems(pd.DataFrame({"ts": [1], "value": [1.0]}))
    assert {p.split("'")[1] for p in problems} == set(REQUIRED_COLUMNS)
    assert all("['ts', 'value']" in p for p in problems)


def test_duplicates_are_counted_per_series() -> None:
    stamps = pd.to_datetime(["2024-01-01"] * 3 + ["2024-01-02"], utc=True)
    frame = pd.DataFrame({"series_id": "x", "timestamp": stamps, "target": [1.0, 2.0, 3.0, 4.0]})
    assert _problems(frame) == [
        "series 'x': 2 rows repeat an earlier timestamp, first at 2024-01-01 00:00:00+00:00"
    ]
