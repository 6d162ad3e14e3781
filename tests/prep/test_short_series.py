"""Short series train on what they have: test dropped first, then validation; one summary line says how."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from forecasting.config.model import parse_config
from forecasting.errors import ForecastingError
from forecasting.evaluation.origins import holdout_start
from forecasting.prep.windows import SeriesPanel
from forecasting.train import fit
from forecasting.prep.prepare import select_training_frame
from tests.conftest import synthetic_frame, tiny_config_dict


def _tiny(**overrides) -> dict:
    """tiny_config_dict on one thread (the test machine is shared) with two epochs."""
    raw = tiny_config_dict(**overrides)
    raw["training"] = {**raw["training"], "max_epochs": 2, "num_threads": 1, **overrides.get("training", {})}
    return raw


def _series(name: str, length: int, seed: int) -> pd.DataFrame:
    return synthetic_frame(n_series=1, length=length, seed=seed).assign(series_id=name)


# lookback 48 + horizon 12 = 60 points make one training window; validation and test take 12 points each
# at these lengths. 75 points: 51 left with both parts, 63 with validation alone -> train+val.
# 65 points: 53 left with validation -> train only.
LENGTHS = {
    **{f"synthetic/long{i}": 400 for i in range(5)},
    "synthetic/mid": 75,
    "synthetic/short0": 65,
    "synthetic/short1": 65,
}


@pytest.fixture(scope="module")
def mixed_fit():
    frame = pd.concat([_series(name, n, seed) for seed, (name, n) in enumerate(LENGTHS.items())], ignore_index=True)
    config = parse_config(_tiny())
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, logger = Keep(level=logging.INFO), logging.getLogger("forecasting")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = fit(config, frame)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return config, frame, result, records


@pytest.mark.slow
def test_a_quarter_too_short_for_validation_trains_and_is_summarised_once(mixed_fit):
    _, _, result, records = mixed_fit
    expected = "8 series: 5 train+val+test, 1 train+val, 2 train only"
    assert result.split_summary == expected
    meta = result.forecaster.meta
    assert meta["split_summary"] == expected
    assert meta["split_usage"]["counts"] == {"train+val+test": 5, "train+val": 1, "train only": 2}
    assert meta["split_usage"]["series"] == {"train+val": ["synthetic/mid"], "train only": ["synthetic/short0", "synthetic/short1"]}
    # Logged once at INFO, and no line per short series.
    summaries = [r for r in records if expected in r.getMessage()]
    assert len(summaries) == 1 and summaries[0].levelno == logging.INFO
    assert not [r for r in records if "synthetic/short" in r.getMessage()]
    # Validation (early stopping) and test windows come from the series long enough for them.
    ids = result.series_ids
    val_series = {ids[i] for i in np.unique(result.validation.series)}
    test_series = {ids[i] for i in np.unique(result.test.series)}
    assert val_series == {f"synthetic/long{i}" for i in range(5)} | {"synthetic/mid"}
    assert test_series == {f"synthetic/long{i}" for i in range(5)}
    assert np.isfinite(result.forecaster.metrics["val_mae"]) and np.isfinite(result.forecaster.metrics["test_mae"])
    assert "best_val_loss" in result.forecaster.metrics  # early stopping watched validation


@pytest.mark.slow
def test_short_series_contribute_training_windows(mixed_fit):
    config, _, result, _ = mixed_fit
    stride, n_win = config.window.stride, result.forecaster.meta["windows"]["train"]
    # long: 400 - 40 - 40 = 320 training points -> (320 - 60) // 2 + 1 windows; mid: 63 -> 2; short: 65 -> 3.
    assert n_win == 5 * ((320 - 60) // stride + 1) + 2 + 2 * 3


@pytest.mark.slow
def test_backtests_count_a_series_without_test_part_as_in_sample(mixed_fit):
    config, frame, result, _ = mixed_fit
    frame = select_training_frame(config, frame)  # as the backtest reads it
    panel = SeriesPanel.from_frame(frame)
    holdout, _, note = holdout_start(result.forecaster, frame, panel)
    assert "hash matches" in note
    expected = {**{f"synthetic/long{i}": 360 for i in range(5)}, "synthetic/mid": 75, "synthetic/short0": 65, "synthetic/short1": 65}
    assert dict(zip(panel.series_ids, holdout.tolist(), strict=True)) == expected


def test_series_too_short_even_to_train_are_one_capped_error():
    config = parse_config(_tiny())
    parts = [_series("synthetic/long", 400, 0)] + [_series(f"synthetic/tiny{k:02d}", 30 + k, k) for k in range(14)]
    with pytest.raises(ForecastingError) as err:
        fit(config, pd.concat(parts, ignore_index=True))
    message = str(err.value)
    assert message.startswith("14 of 15 series are too short for one training window")
    assert "series 'synthetic/tiny00' has 30 points; lookback 48 + horizon 12 needs 60" in message
    assert message.count("  - series '") == 10
    assert message.rstrip().endswith("... and 4 more")


@pytest.mark.slow
def test_all_long_data_reports_every_series_fully_used(tiny_fit):
    config, frame, result = tiny_fit
    assert result.split_summary == "3 series: 3 train+val+test"
    assert result.forecaster.meta["split_usage"] == {"counts": {"train+val+test": 3}, "series": {}}
    n = 400  # synthetic_frame's length: the split is the same as before, n - test, n - test - val
    val_points = test_points = max(config.window.horizon, round(0.1 * n))
    windows = result.forecaster.meta["windows"]
    assert windows["val"] == 3 * (val_points - config.window.horizon + 1)
    assert windows["test"] == 3 * (test_points - config.window.horizon + 1)
