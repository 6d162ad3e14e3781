"""Rolling-origin backtests on real tiny models: origins, alignment, leakage, refit folds and the report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml

from forecasting.evaluation.backtest import FORECASTERS, backtest
from forecasting.config.backtest import BacktestConfig, parse_model_ref
from forecasting.config.model import check_model_fits, load_backtest_config
from forecasting.config.model import parse_config
from forecasting.errors import ConfigError, ForecastingError
from forecasting.evaluation.metrics import mase
from forecasting.predict import forecast
from forecasting.evaluation.report import forecasts_frame, score_backtest, write_report
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import SeriesPanel, chronological_split
from tests.conftest import synthetic_frame, tiny_config_dict

# tiny_fit: 3 series x 400 hourly points, lookback 48, horizon 12, season 24, val/test 10% each,
# so each series' test part starts at position 360 and the last origin with 12 actuals is 387.
TEST_START, LAST_ORIGIN = 360, 387


@pytest.fixture(scope="module")
def no_refit(tiny_fit):
    _, frame, fitted = tiny_fit
    return backtest(frame, BacktestConfig(), trained=fitted.forecaster, model_version="7")


def _positions(result, frame):
    """Local position of every window's origin within its series."""
    first = frame.groupby("series_id")["timestamp"].min()
    ids = np.asarray(result.series_ids)[result.series]
    hours = (pd.to_datetime(result.origin) - pd.to_datetime(first.loc[ids].to_numpy()).tz_localize(None)).total_seconds()
    return (np.asarray(hours) / 3600).astype(int)


def test_default_skips_in_sample_origins_and_anchors_at_the_end(no_refit, tiny_fit):
    _, frame, _ = tiny_fit
    # Origins step back from the last full horizon by the horizon; the first target of each
    # must lie in the test part, which neither the weights nor early stopping saw.
    pos = _positions(no_refit, frame)
    assert pos.reshape(3, -1).tolist() == [[363, 375, 387]] * 3
    assert (pos + 1 >= TEST_START).all() and not no_refit.in_sample.any()
    assert no_refit.n_windows == 9 and no_refit.n_origins == 3
    assert any("hash matches" in n for n in no_refit.notes)
    assert len(no_refit.folds) == 1 and no_refit.folds[0].trained is not None


def test_batched_forecasts_equal_forecasting_from_the_truncated_history(no_refit, tiny_fit):
    _, frame, fitted = tiny_fit
    pos = _positions(no_refit, frame)
    for row in (0, 4, 8):  # one window per series, different origins
        sid = no_refit.series_ids[no_refit.series[row]]
        history = frame[frame["series_id"] == sid].iloc[: pos[row] + 1]
        expected = forecast(fitted.forecaster, history)["mean"].to_numpy()
        np.testing.assert_allclose(no_refit.forecasts["model"][row], expected, rtol=1e-6, atol=1e-6)


def test_actuals_baselines_and_mase_scale_line_up_with_the_raw_series(no_refit, tiny_fit):
    _, frame, _ = tiny_fit
    pos = _positions(no_refit, frame)
    for row in range(no_refit.n_windows):
        y = frame.loc[frame["series_id"] == no_refit.series_ids[no_refit.series[row]], "target"].to_numpy()
        o = pos[row]
        np.testing.assert_array_equal(no_refit.actual[row], y[o + 1 : o + 13])
        np.testing.assert_array_equal(no_refit.forecasts["seasonal_naive"][row], y[o - 23 : o - 11])  # one day back
        np.testing.assert_array_equal(no_refit.forecasts["naive"][row], np.full(12, y[o]))
        np.testing.assert_allclose(no_refit.forecasts["mean"][row], np.full(12, y[o - 47 : o + 1].mean()))
        slope = (y[o] - y[o - 47]) / 47
        np.testing.assert_allclose(no_refit.forecasts["drift"][row], y[o] + slope * np.arange(1, 13))
        # MASE denominator: seasonal-naive MAE of the whole history up to the origin
        assert mase([1.0], [0.0], insample=y[: o + 1], season=24) == pytest.approx(1.0 / no_refit.scale[row])


def test_include_in_sample_flags_the_origins_the_model_learned_from(tiny_fit):
    _, frame, fitted = tiny_fit
    result = backtest(frame, BacktestConfig(origins=None, in_sample="include"), trained=fitted.forecaster)
    pos = _positions(result, frame)
    # every 12 steps from 51 (the first with a 48-point lookback and a 24-point history) to 387
    assert sorted(set(pos.tolist())) == list(range(51, 388, 12))
    np.testing.assert_array_equal(result.in_sample, pos + 1 < TEST_START)
    assert int(result.in_sample.sum()) == 3 * 26
    assert any("78 of 87 windows are in-sample" in n for n in result.notes)


def test_new_data_extends_the_origins_and_unknown_series_are_scored_without_look_ahead(tiny_fit):
    config, frame, fitted = tiny_fit
    extra = []
    for sid, rows in frame.groupby("series_id"):
        last = rows.iloc[-1]
        stamps = pd.date_range(last["timestamp"], periods=49, freq="h")[1:]
        extra.append(pd.DataFrame({"series_id": sid, "timestamp": stamps, "target": rows["target"].iloc[-48:].to_numpy()}))
    stranger = synthetic_frame(n_series=1, seed=9).assign(series_id="synthetic/stranger")
    longer = pd.concat([frame, *extra, stranger], ignore_index=True).sort_values(["series_id", "timestamp"])
    result = backtest(longer, BacktestConfig(origins=None), trained=fitted.forecaster)
    # The recorded rows still hash the same, so the split is rebuilt exactly: 48 new hours add 4 origins.
    ids = np.asarray(result.series_ids)[result.series]
    pos = _positions(result, longer)
    assert pos[ids != "synthetic/stranger"].reshape(3, -1).tolist() == [list(range(363, 436, 12))] * 3
    # The model never learned from the stranger: every origin with a full lookback and horizon is scored.
    assert pos[ids == "synthetic/stranger"].tolist() == list(range(51, 388, 12))
    assert any("1 series the model was not trained on are scaled on their history up to their first origin" in n for n in result.notes)

    # No look-ahead: the stranger's scaler reads nothing after its first origin, so a later spike changes
    # nothing before it (with a scaler fitted on the whole series, as prediction does, it would).
    spiked = longer.copy()
    late = (spiked["series_id"] == "synthetic/stranger") & (spiked["timestamp"] > stranger["timestamp"].iloc[51 + 12])
    spiked.loc[late, "target"] *= 50.0
    again = backtest(spiked, BacktestConfig(origins=None), trained=fitted.forecaster)
    first = np.flatnonzero(ids == "synthetic/stranger")[0]
    assert again.forecasts["model"][first] == pytest.approx(result.forecasts["model"][first])
    assert again.actual[first] == pytest.approx(result.actual[first])


def test_changed_training_data_makes_every_recorded_point_in_sample(tiny_fit):
    _, frame, fitted = tiny_fit
    edited = frame.copy()
    edited.loc[10, "target"] += 1.0
    with pytest.raises(ForecastingError, match=r"no origin to backtest 'tiny-synthetic'.*in_sample: skip"):
        backtest(edited, BacktestConfig(), trained=fitted.forecaster)
    result = backtest(edited, BacktestConfig(in_sample="include"), trained=fitted.forecaster)
    assert result.in_sample.all()
    assert any("hash differs" in n for n in result.notes)


def test_bad_settings_give_one_clear_error(tiny_fit):
    config, frame, fitted = tiny_fit
    with pytest.raises(ForecastingError, match="refit 'always' trains a new model per fold: use --train"):
        backtest(frame, BacktestConfig(refit="always"), trained=fitted.forecaster)
    with pytest.raises(ForecastingError, match="backtest.horizon 13 exceeds the horizon 12"):
        backtest(frame, BacktestConfig(horizon=13), trained=fitted.forecaster)
    with pytest.raises(ForecastingError, match="train_size 20 is too small"):
        backtest(frame, BacktestConfig(window="sliding", train_size=20, refit="always"), config=config)
    with pytest.raises(ForecastingError, match="exactly one of"):
        backtest(frame, BacktestConfig())


def test_shorter_horizon_scores_the_first_steps_only(tiny_fit, no_refit):
    _, frame, fitted = tiny_fit
    result = backtest(frame, BacktestConfig(horizon=6, origins=1), trained=fitted.forecaster)
    assert result.actual.shape == (3, 6)
    assert _positions(result, frame).tolist() == [393] * 3  # the last origin with 6 actuals
    assert result.forecasts["model"].shape == (3, 6)


# --- refit folds: trained per fold on data up to the cut-off only ---

REFIT_CONFIG = tiny_config_dict(
    name="tiny-refit",
    window={"lookback": 24, "horizon": 6, "stride": 3},
    model={"hidden_size": 8, "num_layers": 1},
    training={"max_epochs": 1, "batch_size": 128},
)


def _refit_run(frame, **settings):
    return backtest(frame, BacktestConfig(**settings), config=parse_config(REFIT_CONFIG))


def test_a_spike_after_the_cut_off_changes_nothing_in_that_fold():
    frame = synthetic_frame(n_series=2, length=240)
    # two folds: cut-offs at positions 173 and 233 (origins every 60 steps from the end)
    settings = {"refit": "always", "origins": 2, "stride": 60}
    clean = _refit_run(frame, **settings)
    spiked_frame = frame.copy()
    first = frame.groupby("series_id").cumcount()
    spiked_frame.loc[first == 176, "target"] += 100.0  # after fold 0's cut-off, inside its targets
    spiked = _refit_run(spiked_frame, **settings)

    cutoff = frame["timestamp"].iloc[173]
    assert [f.cutoff for f in clean.folds] == [cutoff, frame["timestamp"].iloc[233]]
    f0_clean, f0_spiked = clean.folds[0].trained.scaler, spiked.folds[0].trained.scaler
    np.testing.assert_array_equal(f0_clean.mean, f0_spiked.mean)
    np.testing.assert_array_equal(f0_clean.scale, f0_spiked.scale)
    fold0 = clean.fold == 0
    for name in FORECASTERS:
        np.testing.assert_array_equal(clean.forecasts[name][fold0], spiked.forecasts[name][fold0])
    assert not np.array_equal(clean.actual[fold0], spiked.actual[fold0])  # the spike is among the scored targets

    # The later fold trains on the spike: its scaler moves, which shows the test can fail.
    assert not np.allclose(clean.folds[1].trained.scaler.mean, spiked.folds[1].trained.scaler.mean)

    # And fold 0's scaler is exactly one fitted on the training part of the rows up to its cut-off.
    seen = frame[frame["timestamp"] <= cutoff].reset_index(drop=True)
    panel = SeriesPanel.from_frame(seen)
    bounds = chronological_split(panel, clean.folds[0].trained.spec, val_fraction=0.1, test_fraction=0.0)
    expected = SeriesScaler.fit(panel, bounds.train_end)
    np.testing.assert_array_equal(f0_clean.mean, expected.mean)
    np.testing.assert_array_equal(f0_clean.scale, expected.scale)


def test_sliding_window_refit_every_two_origins():
    frame = synthetic_frame(n_series=2, length=240)
    result = _refit_run(frame, refit=2, window="sliding", train_size=60, origins=3, stride=12)
    # origins 209, 221, 233 per series: the first two share fold 0 (cut-off 209), the last gets fold 1
    assert result.fold.tolist() == [0, 0, 1, 0, 0, 1]
    assert [f.cutoff for f in result.folds] == [frame["timestamp"].iloc[209], frame["timestamp"].iloc[233]]
    assert [f.train_rows for f in result.folds] == [2 * 60, 2 * 60]
    assert result.model_version is None and result.label == "tiny-refit (trained per fold)"
    assert np.isfinite(result.forecasts["model"]).all()


# --- settings and references ---


def test_backtest_section_and_forecaster_problems_are_reported_together(tmp_path):
    raw = tiny_config_dict(window={"lookback": 0})
    raw["backtest"] = {"window": "sliding", "stride": 0, "refit": "sometimes"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_backtest_config(path)
    message = str(err.value)
    assert "window.lookback" in message
    assert "backtest.stride: Input should be greater than or equal to 1 (got 0)" in message
    assert "'sometimes'" in message


def test_backtest_section_overrides_and_defaults(tmp_path):
    raw = tiny_config_dict()
    raw["backtest"] = {"origins": 5, "stride": 6, "start": "2024-01-10 00:00"}
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(raw))
    config, settings = load_backtest_config(path, {"origins": None, "refit": 3})
    assert config.name == "tiny-synthetic"
    assert settings.origins is None and settings.stride == 6 and settings.refit_every == 3
    assert settings.start == pd.Timestamp("2024-01-10", tz="UTC")
    assert BacktestConfig().origins == 30 and BacktestConfig().refit_every is None
    with pytest.raises(ConfigError, match="train_size: a sliding window needs train_size"):
        load_backtest_config(path, {"window": "sliding"})


@pytest.mark.parametrize(
    "ref, expected",
    [("m", ("m", "champion")), ("m@challenger", ("m", "challenger")), ("models:/m@champion", ("m", "champion"))],
)
def test_model_references(ref, expected):
    assert parse_model_ref(ref) == expected


@pytest.mark.parametrize("ref", ["", "m@", "models:/m/3", "@x"])
def test_bad_model_reference_names_the_value(ref):
    with pytest.raises(ConfigError, match=f"model reference {ref!r} is not"):
        parse_model_ref(ref)


def test_model_for_another_dataset_is_refused(tiny_fit):
    config, _, _ = tiny_fit
    other = parse_config(tiny_config_dict(data={"dataset": "stocks", "freq": "B"}))
    with pytest.raises(ConfigError, match="trained on dataset 'synthetic', but the backtest config names dataset 'stocks'"):
        check_model_fits(other, config)


# --- scores and report ---


def test_the_tiny_model_is_flagged_against_seasonal_naive(no_refit, tmp_path):
    scores = score_backtest(no_refit)
    summary = scores.summary.set_index("forecaster")
    assert list(summary.index) == [*FORECASTERS, "ets", "theta"]  # the statistical baselines follow by default
    assert set(scores.beats) == {"naive", "seasonal_naive", "drift", "mean", "ets", "theta"}
    assert not scores.beats["seasonal_naive"]
    # a noisy sine with period 24: repeating yesterday is nearly perfect, and the 4-epoch model is not
    assert summary.loc["model", "mae"] > summary.loc["seasonal_naive", "mae"]
    assert not scores.beats_reference
    files = write_report(no_refit, tmp_path / "report", scores)
    text = files.markdown.read_text()
    assert "FLAG: the model does not beat seasonal naive" in text
    for name in ("summary.csv", "by_step.csv", "by_series.csv", "forecasts.parquet", "error_by_step.png", "forecasts.png"):
        path = tmp_path / "report" / name
        assert path.stat().st_size > 0, name
    assert (tmp_path / "report" / "forecasts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_csv(tmp_path / "report" / "summary.csv")
    np.testing.assert_allclose(back["mae"], scores.summary["mae"], rtol=1e-5)
    frame = pd.read_parquet(tmp_path / "report" / "forecasts.parquet")
    assert len(frame) == 9 * 12
    assert {"series_id", "origin", "timestamp", "step", "actual", *FORECASTERS, "ets", "theta"} <= set(frame.columns)
    # the step-1 target is one hour after the origin
    assert ((frame["timestamp"] - frame["origin"]) == pd.Timedelta(hours=1) * frame["step"]).all()


def test_scores_aggregate_per_series_then_step(no_refit):
    scores = score_backtest(no_refit)
    model = scores.by_series[scores.by_series["forecaster"] == "model"]
    steps = scores.by_step[scores.by_step["forecaster"] == "model"]
    overall = scores.summary.set_index("forecaster").loc["model"]
    assert model["mae"].mean() == pytest.approx(overall["mae"])
    assert steps["mae"].mean() == pytest.approx(overall["mae"])
    # RMSE is rooted per series and step before averaging, so it is below the pooled RMSE here
    pooled = np.sqrt(np.mean((no_refit.actual - no_refit.forecasts["model"]) ** 2))
    assert overall["rmse"] <= pooled + 1e-12
    assert overall["skill"] == pytest.approx(1 - overall["mae"] / scores.summary.set_index("forecaster").loc["seasonal_naive", "mae"])


def test_a_perfect_model_beats_seasonal_naive_and_quantiles_are_scored(no_refit):
    y = no_refit.actual
    perfect = dataclasses.replace(
        no_refit,
        forecasts={**no_refit.forecasts, "model": y.copy()},
        quantiles={0.1: y - 1.0, 0.5: y.copy(), 0.9: y - 0.5},
    )
    scores = score_backtest(perfect)
    row = scores.summary.set_index("forecaster").loc["model"]
    assert scores.beats_reference and row["mae"] == 0.0 and row["skill"] == pytest.approx(1.0)
    # pinball: q0.1 under by 1 -> 0.1; q0.5 exact -> 0; q0.9 under by 0.5 -> 0.45; mean over levels 0.55 / 3
    assert row["pinball"] == pytest.approx(0.55 / 3)
    assert row["coverage_80"] == 0.0  # every actual is above the 0.9 quantile
    assert "model_q0.1" in forecasts_frame(perfect).columns
    assert np.isnan(scores.summary.set_index("forecaster").loc["naive", "pinball"])


def test_constant_histories_are_left_out_of_mase_with_a_note(no_refit):
    scale = no_refit.scale.copy()
    scale[no_refit.series == 0] = 0.0  # as if series 0 had been constant at lag 24
    scores = score_backtest(dataclasses.replace(no_refit, scale=scale))
    assert any("MASE leaves out 3 windows" in n and "synthetic/s0" in n for n in scores.notes)
    model = scores.by_series[scores.by_series["forecaster"] == "model"].set_index("series_id")
    assert np.isnan(model.loc["synthetic/s0", "mase"])
    overall = scores.summary.set_index("forecaster").loc["model", "mase"]
    assert overall == pytest.approx(model["mase"].iloc[1:].mean())


def test_rmse_pools_squared_errors_per_series(no_refit):
    # With errors 1 and 3 on one series' two steps, MAE is 2 and the pooled RMSE sqrt(5), not the MAE again.
    import dataclasses

    one = dataclasses.replace(
        no_refit,
        series=np.array([0]), origin=no_refit.origin[:1], target_time=no_refit.target_time[:1, :2],
        actual=np.array([[10.0, 10.0]]), horizon=2,
        forecasts={name: np.array([[11.0, 13.0]]) for name in no_refit.forecasts},
        quantiles={}, scale=np.array([1.0]), in_sample=np.array([False]), fold=np.array([0]),
    )
    row = score_backtest(one).summary.set_index("forecaster").loc["model"]
    assert row["mae"] == pytest.approx(2.0)
    assert row["rmse"] == pytest.approx(np.sqrt(5.0))


# --- judging a model on another dataset: what the store's file footers tell before any row loads ---


def test_a_dataset_that_does_not_fit_the_model_is_refused_with_every_reason(tmp_path):
    from forecasting.data.store import ObservationStore
    from forecasting.evaluation.dataset_fit import check_dataset_fits, fit_problems, profile_dataset

    store = ObservationStore(tmp_path)
    store.upsert("hourly", synthetic_frame(n_series=2, length=300, freq="h", covariates=("humidity",)))
    stocks = parse_config(tiny_config_dict(name="nyse", data={"dataset": "stocks", "freq": "XNYS", "covariates": ["volume"]},
                                           baseline={"season_length": 1}))
    profile = profile_dataset(store, "hourly")
    assert [s.rows for s in profile.series] == [300, 300] and "humidity" in profile.columns
    with pytest.raises(ConfigError, match=r"cannot be judged on dataset 'hourly': 2 problem\(s\)") as caught:
        check_dataset_fits(stocks, profile)
    message = str(caught.value)
    assert "column 'volume' (data.covariates of the model) is not in dataset 'hourly'; it has ['humidity']" in message
    assert "forecasts on the 'XNYS' grid" in message
    # The same grid and columns fit; so does data with a few gaps.
    hourly = parse_config(tiny_config_dict(data={"dataset": "other", "freq": "h", "covariates": ["humidity"]}))
    assert fit_problems(hourly, profile) == []
    gappy = synthetic_frame(n_series=1, length=300, freq="h", covariates=("humidity",)).drop(index=range(100, 150))
    store.upsert("gappy", gappy)
    assert fit_problems(hourly, profile_dataset(store, "gappy")) == []
    daily = parse_config(tiny_config_dict(data={"dataset": "other", "freq": "D"}, window={"lookback": 28, "horizon": 7}))
    assert "0.04 rows per 'h' grid point" in " ".join(fit_problems(hourly, _daily_profile(store)))
    assert fit_problems(daily, _daily_profile(store)) == []
    with pytest.raises(ForecastingError, match="unknown dataset 'nope'"):
        profile_dataset(store, "nope")


def _daily_profile(store):
    from forecasting.evaluation.dataset_fit import profile_dataset

    store.upsert("daily", synthetic_frame(n_series=1, length=120, freq="D", covariates=("humidity",)))
    return profile_dataset(store, "daily")


def test_on_another_dataset_short_series_are_padded_as_in_training_or_listed():
    """A padded model (min_length < lookback) judged on new series: 40 points are enough once left-padded,
    20 are not (min_length 24 + horizon 12): that one is named, with the count, never dropped silently."""
    from forecasting.train import fit

    config = parse_config(tiny_config_dict(name="tiny-padded", window={"lookback": 48, "horizon": 12, "stride": 4, "min_length": 24},
                                           training={"max_epochs": 1}))
    trained = fit(config, synthetic_frame(), checkpoint_dir=None).forecaster
    new = synthetic_frame(n_series=2, length=40, seed=5)
    new["series_id"] = new["series_id"].map({"synthetic/s0": "new/short", "synthetic/s1": "new/tiny"})
    new = new[(new["series_id"] == "new/short") | (new.groupby("series_id").cumcount() < 20)].reset_index(drop=True)
    result = backtest(new, BacktestConfig(origins=None, stride=1), trained=trained, dataset="elsewhere")
    assert {result.series_ids[i] for i in result.series} == {"new/short"}
    # Origins from observed position 24 (min_length 24, and a full season 24 for the MASE scale) to the
    # last one with 12 actuals after it (27), every one reading a padded full lookback.
    assert result.n_windows == 4 and np.isfinite(result.forecasts["model"]).all()
    notes = " ".join(result.notes)
    assert "model trained on dataset 'synthetic' judged on dataset 'elsewhere'" in notes
    assert "2 series shorter than lookback + horizon were left-padded, as in training" in notes
    assert "1 of 2 series have no origin and are left out (each needs min_length 24 observed points" in notes
    assert "new/tiny (20 points)" in notes
