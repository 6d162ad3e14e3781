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
    by_name = {p.name: p for p in CONFIGS}
    weather, stocks = (load_ingest_config(by_name[name]) for name in ("weather.yaml", "stocks.yaml"))
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


def test_the_example_files_config_reads_the_shipped_csv_on_local_days() -> None:
    from forecasting.config.model import load_config

    repo = Path(__file__).resolve().parents[2]
    config = load_ingest_config(repo / "configs" / "ingest" / "example-files.yaml")
    model = load_config(repo / "configs" / "example-files.yaml")
    assert (config.dataset, config.freq) == (model.data.dataset, model.data.freq)
    assert config.timezone == model.data.calendar_timezone == "America/Los_Angeles"
    assert (repo / config.path).is_file() and (repo / config.path).stat().st_size < 100_000
    assert config.grid().describe() == "'D' grid in America/Los_Angeles"


def test_referential_settings_are_checked_with_the_config(tmp_path) -> None:
    base = {"source": "files", "path": "x.csv", "dataset": "d", "freq": "D"}
    with pytest.raises(ConfigError, match=r"timezone: 'Mars/Olympus_Mons' is not an IANA time zone"):
        parse_ingest_config({**base, "timezone": "Mars/Olympus_Mons"})
    with pytest.raises(ConfigError, match=r"is a directory"):
        load_ingest_config(tmp_path)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match=r"is not a text \(UTF-8\) YAML file"):
        load_ingest_config(tmp_path / "bin.yaml")
    with pytest.raises(ConfigError, match=r"duplicates"):
        parse_ingest_config({**base, "duplicates": "average"})
