from pathlib import Path

import pytest

from forecasting.config import ForecasterConfig, load_config, parse_config
from forecasting.errors import ConfigError
from tests.conftest import REPO, tiny_config_dict

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_there_are_configs_to_check():
    assert {p.name for p in CONFIGS} >= {"weather.yaml", "stocks.yaml"}


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
    assert flat["model.anchor"] == "last"
    assert all("." in key or key in ("name", "description") for key in flat)
