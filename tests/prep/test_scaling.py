"""Per-series scaler: fitted on train only, matched by id, reversible, serialisable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ForecastingError
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import SeriesPanel


def make_panel(lengths: dict[str, int], seed: int = 0) -> SeriesPanel:
    rng = np.random.default_rng(seed)
    parts = []
    for k, (sid, n) in enumerate(lengths.items()):
        parts.append(
            pd.DataFrame(
                {
                    "series_id": sid,
                    "timestamp": pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC"),
                    "target": rng.normal(10.0 ** (k + 1), 3.0 * (k + 1), n),  # very different levels per series
                    "humidity": rng.uniform(0.0, 100.0, n),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True).sort_values(["series_id", "timestamp"], ignore_index=True)
    return SeriesPanel.from_frame(frame, ["humidity"])


def test_fit_matches_nan_aware_moments_of_train_part():
    panel = make_panel({"a": 30, "b": 20})
    values = panel.values.copy()
    values[[2, 5, 31], 1] = np.nan  # missing covariates in both series
    panel = panel.with_values(values)
    train_end = np.array([25, 12])
    scaler = SeriesScaler.fit(panel, train_end)
    for i in range(2):
        part = panel.series_values(i)[: train_end[i]]
        np.testing.assert_allclose(scaler.mean[i], np.nanmean(part, axis=0), rtol=1e-12)
        np.testing.assert_allclose(scaler.scale[i], np.nanstd(part, axis=0), rtol=1e-12)


def test_values_after_train_end_do_not_change_the_fit():
    panel = make_panel({"a": 30, "b": 20})
    train_end = np.array([25, 12])
    before = SeriesScaler.fit(panel, train_end)
    values = panel.values.copy()
    for i, end in enumerate(train_end):
        values[panel.offsets[i] + end : panel.offsets[i + 1]] = 1e9  # wild validation/test data
    after = SeriesScaler.fit(panel.with_values(values), train_end)
    assert np.array_equal(before.mean, after.mean) and np.array_equal(before.scale, after.scale)
    assert not np.array_equal(SeriesScaler.fit(panel).mean, SeriesScaler.fit(panel.with_values(values)).mean)


def test_constant_columns_get_unit_scale():
    panel = make_panel({"a": 7, "b": 9})
    values = panel.values.copy()
    values[:7, 0] = 0.1  # constant, but its float mean is not exactly 0.1
    values[7:, 1] = 0.0
    scaler = SeriesScaler.fit(panel.with_values(values))
    assert scaler.scale[0, 0] == 1.0 and scaler.scale[1, 1] == 1.0
    scaled = scaler.transform(panel.with_values(values), dtype=np.float64)
    assert np.all(np.abs(scaled[:7, 0]) < 1e-12) and np.all(scaled[7:, 1] == 0.0)
    assert np.all(np.isfinite(scaled))


def test_unobserved_covariate_is_identity_and_missing_target_raises():
    panel = make_panel({"a": 6, "b": 6})
    values = panel.values.copy()
    values[:3, 1] = np.nan
    scaler = SeriesScaler.fit(panel.with_values(values), np.array([3, 6]))
    assert scaler.mean[0, 1] == 0.0 and scaler.scale[0, 1] == 1.0
    values[6:8, 0] = np.nan
    with pytest.raises(ForecastingError, match="series 'b': no target value in its first 2 points"):
        SeriesScaler.fit(panel.with_values(values), np.array([6, 2]))


def test_transform_then_inverse_round_trips():
    panel = make_panel({"a": 40, "b": 25, "c": 33})
    scaler = SeriesScaler.fit(panel, np.array([30, 20, 25]))
    scaled = scaler.transform(panel, dtype=np.float64)
    # The scaled target of each series sits near 0/1, whatever its level.
    assert abs(scaled[: panel.offsets[1], 0].mean()) < 1.0
    restored = np.empty(len(panel.values))
    for i, sid in enumerate(panel.series_ids):
        rows = slice(panel.offsets[i], panel.offsets[i + 1])
        restored[rows] = scaler.inverse_target(scaled[None, rows, 0], [sid])[0]  # (1, n_i) -> (n_i,)
    np.testing.assert_allclose(restored, panel.values[:, 0], rtol=1e-9)
    default = scaler.transform(panel)
    assert default.dtype == np.float32
    np.testing.assert_allclose(default, scaled, rtol=1e-5, atol=1e-6)


def test_inverse_target_batches_rows_by_series_id():
    panel = make_panel({"a": 10, "b": 10})
    scaler = SeriesScaler.fit(panel)
    y = np.array([[0.0, 1.0], [0.0, -1.0], [2.0, 0.0]])  # (B=3, H=2)
    out = scaler.inverse_target(y, ["b", "a", "b"])
    mean, scale = scaler.mean[:, 0], scaler.scale[:, 0]
    expected = np.array(
        [[mean[1], mean[1] + scale[1]], [mean[0], mean[0] - scale[0]], [mean[1] + 2 * scale[1], mean[1]]]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    with pytest.raises(ValueError, match="expected 2 rows"):
        scaler.inverse_target(y, ["a", "b"])


def test_subset_in_other_order_is_matched_by_id():
    panel = make_panel({"a": 12, "b": 8, "c": 10})
    scaler = SeriesScaler.fit(panel)
    full = scaler.transform(panel)
    subset = panel.select(["c", "a"])
    part = scaler.transform(subset)
    assert np.array_equal(part[:10], full[panel.offsets[2] :])
    assert np.array_equal(part[10:], full[: panel.offsets[1]])


def test_unknown_series_named_in_error():
    scaler = SeriesScaler.fit(make_panel({"a": 12}))
    other = make_panel({"a": 5, "stock/NEW": 6, "weather/x": 4})
    with pytest.raises(ForecastingError, match=r"does not know series 'stock/NEW', 'weather/x'"):
        scaler.transform(other)
    with pytest.raises(ForecastingError, match="'zz'"):
        scaler.inverse_target(np.zeros((1, 2)), ["zz"])


def test_extended_fits_only_unknown_series_on_all_their_data():
    train = make_panel({"a": 20, "b": 15})
    scaler = SeriesScaler.fit(train, np.array([10, 10]))
    later = make_panel({"b": 30, "new": 12}, seed=5)
    wider = scaler.extended(later)
    assert wider.series_ids == ("a", "b", "new")
    assert np.array_equal(wider.mean[:2], scaler.mean) and np.array_equal(wider.scale[:2], scaler.scale)
    new_values = later.series_values(1)
    np.testing.assert_allclose(wider.mean[2], new_values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(wider.scale[2], new_values.std(axis=0), rtol=1e-12)
    assert wider.transform(later).shape == later.values.shape
    assert scaler.extended(train) is scaler  # nothing new: nothing to fit


def test_dict_round_trip_is_exact_through_json():
    scaler = SeriesScaler.fit(make_panel({"a": 17, "b": 23, "c": 9}), np.array([11, 20, 9]))
    restored = SeriesScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert restored.series_ids == scaler.series_ids and restored.features == scaler.features
    assert np.array_equal(restored.mean, scaler.mean) and np.array_equal(restored.scale, scaler.scale)
    with pytest.raises(ForecastingError, match="lacks key"):
        SeriesScaler.from_dict({"series_ids": ["a"]})


def test_feature_mismatch_is_reported():
    scaler = SeriesScaler.fit(make_panel({"a": 12}))
    frame = pd.DataFrame(
        {
            "series_id": "a",
            "timestamp": pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC"),
            "target": np.arange(4.0),
        }
    )
    with pytest.raises(ForecastingError, match=r"fitted on features \['target', 'humidity'\]; panel has \['target'\]"):
        scaler.transform(SeriesPanel.from_frame(frame))
