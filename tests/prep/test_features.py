"""Calendar features, the input layout, padding fill and known-future inputs."""

import numpy as np
import pandas as pd
import pytest

from forecasting.config.model import parse_config
from forecasting.errors import ForecastingError
from forecasting.prep.features import (
    InputLayout,
    calendar_columns,
    calendar_features,
    future_block,
    horizon_timestamps,
    model_values,
)
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import SeriesPanel, left_pad
from tests.conftest import synthetic_frame, tiny_config_dict


def _stamps(*values: str) -> np.ndarray:
    return pd.DatetimeIndex(list(values)).to_numpy(dtype="datetime64[ns]")


def test_calendar_values_on_known_dates():
    names = ["hour_of_day", "day_of_week", "day_of_year", "weekend", "holiday", "trading_day"]
    columns = calendar_columns(names)
    assert len(columns) == 9
    stamps = _stamps("2024-07-04 06:00", "2024-07-05 18:00", "2024-07-06 00:00", "2024-01-01 00:00", "2024-03-29 12:00")
    f = pd.DataFrame(calendar_features(stamps, names), columns=columns)
    assert np.allclose(f["hour_of_day_sin"], [1, -1, 0, 0, 0], atol=1e-12)  # 06:00 is a quarter turn
    assert np.allclose(f["hour_of_day_cos"], [0, 0, 1, 1, -1], atol=1e-12)
    assert list(f["weekend"]) == [0, 0, 1, 0, 0]  # 2024-07-06 is a Saturday
    assert list(f["holiday"]) == [1, 0, 0, 1, 0]  # Independence Day, New Year's Day (US federal)
    # NYSE: closed on July 4th, Saturdays, New Year's Day and Good Friday (2024-03-29, not a federal holiday).
    assert list(f["trading_day"]) == [0, 1, 0, 0, 0]
    assert np.allclose(f["day_of_year_sin"].iloc[3], 0.0) and np.allclose(f["day_of_year_cos"].iloc[3], 1.0)
    # Monday (Jan 1st 2024) is day 0 of the week: angle 0.
    assert np.allclose([f["day_of_week_sin"].iloc[3], f["day_of_week_cos"].iloc[3]], [0.0, 1.0])


def test_calendar_timezone_moves_the_clock_and_the_date():
    stamps = _stamps("2024-07-05 02:00")  # UTC: July 5th, 02:00; Seattle: July 4th, 19:00
    utc = calendar_features(stamps, ["hour_of_day", "holiday"])
    local = calendar_features(stamps, ["hour_of_day", "holiday"], timezone="America/Los_Angeles")
    assert utc[0, 2] == 0 and local[0, 2] == 1
    angle = 2 * np.pi * 19 / 24
    assert np.allclose(local[0, :2], [np.sin(angle), np.cos(angle)])


def test_unknown_calendar_feature_is_a_clear_error():
    with pytest.raises(ForecastingError, match=r"unknown calendar feature\(s\) \['moon'\]"):
        calendar_columns(["hour_of_day", "moon"])


def test_layout_columns_for_every_input_kind():
    config = parse_config(
        tiny_config_dict(
            data={"covariates": ["humidity"], "future_covariates": ["promo"], "calendar": ["hour_of_day", "weekend"]},
            window={"min_length": 24},
        )
    )
    layout = InputLayout.from_config(config)
    assert layout.columns == ("target", "humidity", "promo", "hour_of_day_sin", "hour_of_day_cos", "weekend", "observed")
    assert layout.past_columns == [0, 1, 2, 3, 4, 5, 6]
    assert layout.future_columns == [2, 3, 4, 5]
    assert layout.data_covariate_positions == [1, 2]
    unpadded = InputLayout.from_config(parse_config(tiny_config_dict()))
    assert unpadded.past_columns == [0] and unpadded.future_columns == []


def _panel_with_promo(lengths=(30, 12)):
    frames = []
    for i, n in enumerate(lengths):
        frame = synthetic_frame(n_series=1, length=n, seed=i).assign(series_id=f"s{i}")
        frame["promo"] = np.arange(n, dtype=float) + 100 * i
        frames.append(frame)
    return SeriesPanel.from_frame(pd.concat(frames, ignore_index=True), covariates=["promo"])


def test_padding_rows_repeat_the_first_value_and_are_masked():
    layout = InputLayout((), ("promo",), ("hour_of_day",), masked=True)
    raw = _panel_with_promo()
    panel, pad = left_pad(raw, 20, pd.tseries.frequencies.to_offset("h"))
    scaler = SeriesScaler.fit(panel)
    values = model_values(panel, layout, scaler, transform="none")
    assert pad.tolist() == [0, 8]
    rows = slice(panel.offsets[1], panel.offsets[1] + 8)
    first = panel.offsets[1] + 8
    assert (values[rows, -1] == 0).all() and (values[first:, -1] == 1).all()
    assert np.allclose(values[rows, 0], values[first, 0])  # target: the first observed value, flat
    assert (values[rows, 1] == 0).all()  # covariate: the scaled mean
    # Padded timestamps continue the grid backwards, so calendar features stay defined.
    assert panel.timestamps[panel.offsets[1]] == np.datetime64("2023-12-31T16:00")
    assert np.isfinite(values).all()
    diff = model_values(panel, layout, SeriesScaler.fit(panel), transform="difference")
    assert (diff[rows, 0] == 0).all() and diff[first, 0] == 0  # "no change" before the first real change


def test_future_block_reads_rows_inside_and_the_grid_past_the_end():
    layout = InputLayout((), ("promo",), ("hour_of_day",), masked=False)
    panel = _panel_with_promo()
    scaler = SeriesScaler.fit(panel)
    values = model_values(panel, layout, scaler, transform="none")
    lookback, horizon = 6, 4
    inside = panel.offsets[0] + 3  # horizon rows 9..12 of series 0
    last = panel.offsets[1] - lookback  # origin = last point of series 0
    future = pd.DataFrame(
        {
            "series_id": "s0",
            "timestamp": pd.date_range("2024-01-02 06:00", periods=horizon, freq="h", tz="UTC"),
            "promo": [7.0, 8.0, 9.0, 10.0],
        }
    )
    block = future_block(
        panel, values, np.array([inside, last]), layout=layout, scaler=scaler,
        lookback=lookback, horizon=horizon, freq="h", future=future,
    )
    assert block.shape == (2, horizon, 3)
    assert np.allclose(block[0], values[inside + lookback : inside + lookback + horizon][:, [1, 2, 3]])
    expected_times = horizon_timestamps(panel.timestamps[[panel.offsets[1] - 1]], "h", horizon)[0]
    assert expected_times[0] == np.datetime64("2024-01-02T06:00")
    assert np.allclose(block[1, :, 1:], calendar_features(expected_times, ["hour_of_day"]))
    promo_scaled = (np.array([7.0, 8.0, 9.0, 10.0]) - scaler.mean[0, 1]) / scaler.scale[0, 1]
    assert np.allclose(block[1, :, 0], promo_scaled, atol=1e-6)


def test_missing_future_covariates_name_series_and_timestamps():
    layout = InputLayout((), ("promo",), (), masked=False)
    panel = _panel_with_promo()
    scaler = SeriesScaler.fit(panel)
    values = model_values(panel, layout, scaler, transform="none")
    lookback, horizon = 6, 3
    ends = panel.offsets[1:] - lookback  # the last window of each series
    partial = pd.DataFrame(
        {"series_id": ["s0"], "timestamp": [pd.Timestamp("2024-01-02 06:00", tz="UTC")], "promo": [1.0]}
    )
    with pytest.raises(ForecastingError) as err:
        future_block(panel, values, ends, layout=layout, scaler=scaler, lookback=lookback, horizon=horizon, freq="h", future=partial)
    message = str(err.value)
    assert "series 's0': ['promo'] missing at 2 timestamp(s) (UTC): 2024-01-02 07:00, 2024-01-02 08:00" in message
    assert "series 's1': ['promo'] missing at 3 timestamp(s) (UTC): 2024-01-01 12:00, 2024-01-01 13:00, 2024-01-01 14:00" in message
    with pytest.raises(ForecastingError, match=r"pass them as future=DataFrame"):
        future_block(panel, values, ends, layout=layout, scaler=scaler, lookback=lookback, horizon=horizon, freq="h")


def test_horizon_steps_follow_the_trading_calendar():
    origins = _stamps("2012-07-03", "2012-07-04", "2013-03-01")  # the middle one is a holiday: off the grid
    steps = horizon_timestamps(origins, "XNYS", 3)
    assert [str(d)[:10] for d in steps[0]] == ["2012-07-05", "2012-07-06", "2012-07-09"]  # skips July 4th
    assert [str(d)[:10] for d in steps[1]] == ["2012-07-05", "2012-07-06", "2012-07-09"]
    assert [str(d)[:10] for d in steps[2]] == ["2013-03-04", "2013-03-05", "2013-03-06"]
    hourly = horizon_timestamps(origins[:1], "h", 2)
    assert list(hourly[0]) == list(_stamps("2012-07-03 01:00", "2012-07-03 02:00"))
