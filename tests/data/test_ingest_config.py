"""Every ingest YAML in configs/ingest/ loads; a bad one lists all its problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.data.sources.open_meteo import OpenMeteoSource
from forecasting.data.sources.stooq import StooqSource
from forecasting.errors import ConfigError
from forecasting.config.ingest import bundled_config, load_ingest_config, parse_ingest_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "ingest").glob("*.yaml"))


def test_there_are_ingest_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"weather.yaml", "stocks.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_builds_its_source_without_network(path: Path) -> None:
    config = load_ingest_config(path)
    source = config.build_source()
    assert source.units()
    assert config.rules().grid.freq == config.freq


def test_shipped_configs_use_the_right_grids() -> None:
    weather, stocks = (load_ingest_config(p) for p in sorted(CONFIGS, key=lambda p: p.name != "weather.yaml")[:2])
    assert isinstance(weather.build_source(), OpenMeteoSource) and weather.freq == "h" and weather.gaps.max_fill > 0
    assert isinstance(stocks.build_source(), StooqSource) and stocks.freq == "XNYS" and stocks.gaps.max_fill == 0


def test_every_problem_is_listed_with_its_field() -> None:
    raw = {
        "source": "open_meteo", "dataset": "bad name", "start": "2024-01-01",
        "locations": [{"name": "x", "latitude": 95, "longitude": 0}], "gaps": {"max_fill": -1}, "colour": "red",
    }
    with pytest.raises(ConfigError) as info:
        parse_ingest_config(raw, source="weather.yaml")
    message = str(info.value)
    assert message.startswith("ingest config weather.yaml: 4 problem(s)")
    for fragment in ("dataset: String should match", "locations.0.latitude:", "gaps.max_fill:", "colour: Extra inputs"):
        assert fragment in message, fragment


def test_cross_field_problems_are_listed_together() -> None:
    raw = {"source": "open_meteo", "dataset": "w", "freq": "D", "target": "temp", "locations": [{"name": "x", "latitude": 1, "longitude": 0}] * 2}
    with pytest.raises(ConfigError) as info:
        parse_ingest_config(raw)
    message = str(info.value)
    for fragment in ("start: required", "target: 'temp' is not among variables", "freq: 'D' does not match interval 'hourly'", "names repeat: ['x']"):
        assert fragment in message, fragment


def test_unknown_freq_and_source_are_named() -> None:
    with pytest.raises(ConfigError, match="freq: .*'fortnightly' is neither"):
        parse_ingest_config({"source": "stooq", "dataset": "s", "freq": "fortnightly", "tickers": ["AAPL"], "start": "2020-01-01"})
    with pytest.raises(ConfigError, match="does not match any of the expected tags"):
        parse_ingest_config({"source": "ftp", "dataset": "s"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_ingest_config("nowhere.yaml")


def test_bundled_configs_carry_grid_gap_policy_and_ranges() -> None:
    stocks, temps = bundled_config("stocks"), bundled_config("seattle_temps")
    assert stocks.freq == "XNYS" and stocks.gaps.max_fill == 0 and stocks.ranges["volume"].ge == 0
    assert temps.freq == "h" and temps.gaps.max_fill == 3
