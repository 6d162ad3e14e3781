"""The ingest flows and `forecast ingest` under a real Prefect test harness, against a local replay server."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from forecasting.data.quarantine import Quarantine
from forecasting.data.sources.open_meteo import ARCHIVE_PATH
from forecasting.data.store import ObservationStore
from forecasting.errors import ForecastingError
from tests.data.replay import Answer, ReplayServer

pytestmark = pytest.mark.slow

FAST_HTTP = {"timeout_seconds": 0.5, "attempts": 3, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
BERLIN, SEATTLE = {"latitude": "52.52"}, {"latitude": "47.6"}


@pytest.fixture
def replay():
    with ReplayServer() as server:
        yield server


@pytest.fixture
def home(tmp_path, prefect_harness):
    return tmp_path


def _weather_yaml(home, replay, **overrides) -> str:
    raw = {
        "source": "open_meteo", "dataset": "weather_flow", "start": "2024-01-01", "end": "2024-01-02", "overlap": 2,
        "base_url": replay.url, "http": FAST_HTTP, "gaps": {"max_fill": 3},
        "locations": [{"name": "berlin", "latitude": 52.52, "longitude": 13.41}, {"name": "seattle", "latitude": 47.6, "longitude": -122.33}],
        "ranges": {"relative_humidity_2m": {"ge": 0, "le": 100}, "wind_speed_10m": {"ge": 0}},
        **overrides,
    }
    path = home / "weather.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (latest,) = client.read_latest_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return latest.data


def test_offline_ingest_fills_the_one_missing_hour_and_is_idempotent(home) -> None:
    from pipelines.ingest import ingest_flow

    (first,) = ingest_flow(datasets=["seattle_temps"], home=str(home))
    assert (first["dataset"], first["series"], first["added"], first["rows"], first["filled"]) == ("seattle_temps", 1, 8760, 8760, 1)
    (again,) = ingest_flow(datasets=["seattle_temps"], home=str(home))
    assert again["added"] == 0 and again["updated"] == 0 and again["series_reports"][0]["status"] == "unchanged"
    assert "| seattle_temps | weather/seattle-hourly | unchanged |" in _artifact("ingest-summary")


def test_live_flow_lands_good_series_reports_the_failed_one_and_recovers(home, replay) -> None:
    from pipelines.ingest import ingest_source_flow

    replay.script(ARCHIVE_PATH, Answer(503, b"Service Unavailable"), when=BERLIN)
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/seattle_2024-01-01_2024-01-02.json"), when=SEATTLE)
    config = _weather_yaml(home, replay)

    with pytest.raises(ForecastingError, match=r"(?s)ingest failed for 1 of 2 series.*weather/berlin.*HTTP 503"):
        ingest_source_flow(config, home=str(home))
    store = ObservationStore(home / "store")
    assert store.series("weather_flow") == ["weather/seattle"]
    summary = _artifact("ingest-weather-flow")
    assert "| weather_flow | weather/berlin | failed |" in summary and "| weather_flow | weather/seattle | changed | 48 | 48 |" in summary
    assert len(replay.seen()) == 3 + 1  # Berlin tried 3 times by the source; no extra task-level retries

    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-01_bad_rows.json"), when=BERLIN)
    (result,) = ingest_source_flow(config, home=str(home))
    reports = {r["series_id"]: r for r in result["series_reports"]}
    assert (reports["weather/berlin"]["quarantined"], reports["weather/berlin"]["added"]) == (4, 24)
    assert reports["weather/seattle"]["status"] == "unchanged"
    assert len(Quarantine(store).read("weather_flow")) == 4
    assert "relative_humidity_2m 130" in "".join(Quarantine(store).read("weather_flow")["reason"])
    assert "1 row(s) with relative_humidity_2m not >= 0 and <= 100" in _artifact("ingest-weather-flow")


def test_cli_ingests_a_config_and_the_bundled_data(home, replay) -> None:
    from forecasting.cli.app import app

    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/berlin_2024-01-01_2024-01-02.json"), when=BERLIN)
    replay.script(ARCHIVE_PATH, Answer.file("open_meteo/seattle_2024-01-01_2024-01-02.json"), when=SEATTLE)
    config = _weather_yaml(home, replay)
    result = CliRunner().invoke(app, ["ingest", "--config", config, "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "weather/berlin" in result.output and "weather/seattle" in result.output and "changed" in result.output

    result = CliRunner().invoke(app, ["ingest", "--offline", "--dataset", "seattle_weather", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "weather/seattle" in result.output and "1461" in result.output
    frame = ObservationStore(home / "store").read("seattle_weather")
    assert len(frame) == 1461 and frame["timestamp"].iloc[0] == pd.Timestamp("2012-01-01", tz="UTC")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ingest"], 2, "pass --config FILE (live sources) or --offline"),
        (["ingest", "--offline", "--config", "x.yaml"], 2, "pass --config FILE"),
        (["ingest", "--dataset", "stocks"], 2, "pass --config FILE"),
        (["ingest", "--config", "missing.yaml"], 1, "ingest config file missing.yaml does not exist"),
        (["ingest", "--offline", "--dataset", "nope"], 1, "unknown bundled dataset 'nope'"),
    ],
)
def test_cli_user_errors(home, args, code, message) -> None:
    from forecasting.cli.app import app

    result = CliRunner().invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())
