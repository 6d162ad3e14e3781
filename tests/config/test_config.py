from pathlib import Path

import pytest

from forecasting.config.model import ForecasterConfig, load_config, parse_config
from forecasting.config.monitor import DEFAULT_SETTINGS_PATH as DEFAULT_MONITOR_SETTINGS
from forecasting.config.monitor import load_settings as load_monitor_settings
from forecasting.errors import ConfigError
from tests.conftest import REPO, tiny_config_dict

# Forecaster configs (and the tuned ones the accuracy benchmark trains); configs/ingest/*.yaml,
# configs/tune/*.yaml and configs/schedules.yaml have their own loaders and tests.
CONFIGS = sorted(
    [p for p in (REPO / "configs").glob("*.yaml") if p.name != "schedules.yaml"] + list((REPO / "configs" / "tuned").glob("*.yaml"))
)


def test_there_are_configs_to_check():
    assert {p.name for p in CONFIGS} >= {"weather.yaml", "stocks.yaml", "m1-monthly.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path):
    config = load_config(path)
    assert isinstance(config, ForecasterConfig)
    assert config.baseline.season_length <= config.window.lookback


def test_all_problems_are_reported_at_once():
    raw = tiny_config_dict(window={"lookback": -3, "horizon": 0}, training={"batch_sise": 5})
    del raw["data"]["freq"]
    raw["baseline"] = {"season_length": 24}
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="bad.yaml")
    message = str(err.value)
    assert "bad.yaml" in message
    for fragment in ("window.lookback", "window.horizon", "training.batch_sise", "data.freq"):
        assert fragment in message, fragment
    assert "4 problem(s)" in message


def test_cross_field_problem_names_both_fields():
    raw = tiny_config_dict(window={"lookback": 12, "horizon": 6}, baseline={"season_length": 24})
    with pytest.raises(ConfigError, match=r"baseline.season_length: 24 exceeds window.lookback 12"):
        parse_config(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_flat_params_cover_every_setting():
    flat = parse_config(tiny_config_dict()).flat()
    assert flat["window.lookback"] == 48
    assert flat["training.learning_rate"] == 0.01
    assert flat["model.anchor"] == "auto"
    assert flat["model.cell"] == "lstm" and flat["model.head"] == "direct"
    assert flat["data.target_transform"] == "none"
    # Every setting is "section.key"; only unset optional sections (e.g. backtest: None) stay bare.
    assert all("." in key or key in ("name", "description") or flat[key] is None for key in flat)


def test_every_model_and_input_problem_is_listed_at_once():
    raw = tiny_config_dict(
        data={
            "freq": "D",
            "calendar": ["hour_of_day", "weekend"],
            "covariates": ["volume"],
            "future_covariates": ["volume"],
            "target_transform": "difference",
            "calendar_timezone": "Mars/Olympus",
        },
        window={"lookback": 48, "horizon": 12, "min_length": 50},
        model={"quantiles": [0.1, 0.9, 1.2], "point": "median", "anchor": "last"},
    )
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="variants.yaml")
    message = str(err.value)
    assert "variants.yaml: 7 problem(s)" in message
    for fragment in (
        "data.future_covariates: ['volume'] are also listed in data.covariates",
        "data.calendar: hour_of_day is constant on a 'D' grid",
        "data.calendar_timezone: 'Mars/Olympus' is not an IANA time zone",
        "model.quantiles: [1.2] outside (0, 1)",
        "model.point: 'median' needs 0.5 in model.quantiles",
        "model.anchor: 'last' with data.target_transform 'difference'",
        "window.min_length: 50 exceeds window.lookback 48",
    ):
        assert fragment in message, fragment


def test_unknown_variant_names_are_rejected_with_the_choices():
    with pytest.raises(ConfigError) as err:
        parse_config(tiny_config_dict(model={"cell": "lstnet", "head": "attention"}, data={"target_transform": "sqrt"}))
    message = str(err.value)
    for fragment in ("model.cell", "'lstm', 'gru' or 'rnn'", "model.head", "data.target_transform", "'sqrt'"):
        assert fragment in message, fragment


def test_resolved_defaults():
    plain = parse_config(tiny_config_dict())
    assert plain.resolved_anchor == "delta" and not plain.padded and plain.min_length == 48 and plain.model.point_kind == "mean"
    prices = parse_config(tiny_config_dict(data={"target_transform": "log-return"}, window={"min_length": 20}))
    assert prices.resolved_anchor == "none"  # already relative: anchoring would subtract the last return
    assert prices.padded and prices.min_length == 20
    median = parse_config(tiny_config_dict(model={"quantiles": [0.9, 0.5, 0.1]}))
    assert median.model.quantiles == [0.1, 0.5, 0.9] and median.model.point_kind == "median"
    assert parse_config(tiny_config_dict(model={"quantiles": [0.1, 0.9]})).model.point_kind == "mean"


def test_trading_calendar_is_a_valid_grid():
    config = parse_config(tiny_config_dict(data={"freq": "XNYS", "calendar": ["day_of_week", "trading_day"]}))
    assert config.data.freq == "XNYS"
    with pytest.raises(ConfigError, match=r"data.freq: 'fortnightly' is not a pandas offset alias"):
        parse_config(tiny_config_dict(data={"freq": "fortnightly"}))


# --- Monitor settings file (forecasting.config.monitor) ---------------------------------


def test_monitor_settings_file_defaults_model_overrides_and_parameters(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("defaults: {mase_factor: 2.0, windows_days: [14]}\n"
                    "models:\n  m: {mase_factor: 3.0, retrain_on_alert: true, retrain_deployment: train/retrain-m}\n")
    assert load_monitor_settings("other", path).mase_factor == 2.0
    m = load_monitor_settings("m", path)
    assert (m.mase_factor, m.windows_days, m.retrain_on_alert, m.retrain_deployment) == (3.0, (14,), True, "train/retrain-m")
    over = load_monitor_settings("m", path, {"mase_factor": 4.0, "retrain_on_alert": None})
    assert (over.mase_factor, over.retrain_on_alert) == (4.0, True)
    assert load_monitor_settings("m").retrain_on_alert is False  # the shipped file: retrain is opt-in


def test_monitor_settings_file_problems_are_listed_together(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("defaults: {mase_factor: -1}\nmodels:\n  a: {level_shfit: 2}\n  b: {retrain_deployment: retrain}\n")
    with pytest.raises(ConfigError) as info:
        load_monitor_settings("a", path)
    text = str(info.value)
    assert "defaults.mase_factor" in text and "models.a.level_shfit" in text and "models.b.retrain_deployment" in text
    with pytest.raises(ConfigError, match="does not exist"):
        load_monitor_settings("a", tmp_path / "missing.yaml")


def test_shipped_monitor_settings_file_is_valid():
    settings = load_monitor_settings("weather-seattle-hourly", DEFAULT_MONITOR_SETTINGS)
    assert settings.windows_days == (7, 30) and settings.drift_reference == "same_season"
