"""Configs that are not text, not files, or ask for sizes no machine holds: one clear error (issue 19, rows 7, 8, 10)."""

import pytest
import yaml

from forecasting.config.model import load_config, parse_config, read_yaml, recurrent_parameters
from forecasting.errors import ConfigError
from tests.conftest import tiny_config_dict


def test_binary_file_as_config_names_the_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x02}q\x00(X\x05\x00\x00\x00state\xff\xfe")
    with pytest.raises(ConfigError, match=rf"config file {path} is a binary file, not YAML text"):
        load_config(path)
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"config file {latin} is not UTF-8 text \(byte 9"):
        read_yaml(latin)


def test_directory_as_config_says_so(tmp_path):
    with pytest.raises(ConfigError, match=rf"config file {tmp_path} is a directory, not a YAML file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_sizes_that_cannot_fit_memory_are_refused_together():
    raw = tiny_config_dict(window={"lookback": 100_000_000, "horizon": 12}, model={"hidden_size": 1_000_000_000})
    raw["baseline"]["season_length"] = 24
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    message = str(caught.value)
    assert "2 problem(s)" in message, message
    assert "window.lookback: 100000000 is over limits.max_lookback 100000; raise limits.max_lookback" in message
    assert "model.hidden_size: 1000000000 x num_layers 2 makes a lstm network of at least 1.2e+19 parameters" in message
    assert "limits.max_parameters 100000000" in message


def test_limits_are_overridable(tmp_path):
    raw = tiny_config_dict(window={"lookback": 200_000}, model={"hidden_size": 4096, "num_layers": 2},
                           limits={"max_lookback": 500_000, "max_parameters": 10**9})
    config = parse_config(raw)
    assert config.window.lookback == 200_000 and recurrent_parameters(config) > 100_000_000
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path).limits.max_parameters == 10**9


def test_default_sized_configs_pass_the_limits():
    config = parse_config(tiny_config_dict(model={"hidden_size": 512, "num_layers": 3}, window={"lookback": 720}))
    assert recurrent_parameters(config) < config.limits.max_parameters
