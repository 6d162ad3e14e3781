"""The `forecast` CLI end to end (in-process, against the session's Prefect harness)."""

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from forecasting.cli.app import app
from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.slow


@pytest.fixture
def cli_home(tmp_path, monkeypatch, prefect_harness):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def _configs(home):
    weather = tiny_config_dict(
        name="cli-weather", data={"dataset": "seattle_temps", "freq": "h"},
        window={"lookback": 48, "horizon": 24, "stride": 12}, training={"max_epochs": 1},
        promotion={"must_beat": []},  # a 1-epoch model: served without a gate, to see its forecasts
    )
    stocks = tiny_config_dict(
        name="cli-stocks", data={"dataset": "stocks", "freq": "XNYS", "covariates": ["volume"]},
        window={"lookback": 20, "horizon": 5, "stride": 10}, baseline={"season_length": 1}, training={"max_epochs": 1},
    )
    paths = []
    for raw in (weather, stocks):
        path = home / f"{raw['name']}.yaml"
        path.write_text(yaml.safe_dump(raw))
        paths.append(path)
    return paths


def test_quickstart_runs_everything_and_prints_a_summary(cli_home):
    weather, stocks = _configs(cli_home)
    result = CliRunner().invoke(app, ["quickstart", "--home", str(cli_home), "-c", str(weather), "-c", str(stocks)])
    assert result.exit_code == 0, result.output
    assert "cli-weather" in result.output and "cli-stocks" in result.output
    assert "mlflow ui --backend-store-uri" in result.output
    files = sorted((cli_home / "forecasts").rglob("*.parquet"))
    assert len(files) == 1  # the 1-epoch stocks model loses to naive: the gate leaves it without a champion
    weather_fc = pd.read_parquet(files[0])
    assert "cli-weather" in str(files[0]) and len(weather_fc) == 24
    assert "forecasts  cli-stocks: none, no champion:" in result.output
    assert "lost to seasonal naive" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "--model", "ghost"], "no registered model 'ghost'"),
        (["train", "--config", "missing.yaml"], "does not exist"),
    ],
)
def test_user_errors_exit_nonzero_without_traceback(cli_home, args, message):
    result = CliRunner().invoke(app, [*args, "--home", str(cli_home)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_data_error_inside_a_flow_prints_one_message_and_no_traceback(cli_home):
    """A real `forecast` process against the harness's API: stderr holds the error once, no Prefect noise."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from prefect.settings import PREFECT_API_URL

    from forecasting.data.sources.bundled import load_bundled
    from forecasting.data.store import ObservationStore

    ObservationStore(cli_home / "store").upsert("seattle_weather", load_bundled("seattle_weather"))
    bad = tiny_config_dict(name="bad-columns", data={"dataset": "seattle_weather", "freq": "D", "covariates": ["humidity"]},
                           window={"lookback": 28, "horizon": 7}, baseline={"season_length": 7})
    path = cli_home / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    forecast = Path(sys.executable).parent / "forecast"
    proc = subprocess.run([str(forecast), "train", "--config", str(path), "--home", str(cli_home)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert output.count("['humidity'] not found") == 1, output
    assert "available covariates: ['precipitation', 'temp_min', 'wind']" in output
    artifacts = cli_home / "mlartifacts"
    assert not artifacts.exists() or not any(artifacts.rglob("MLmodel"))  # nothing half-registered
