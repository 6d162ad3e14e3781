"""The ingest flows and `forecast ingest` under a real Prefect test harness, against a local replay server."""

from __future__ import annotations

import numpy as np
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
    result = CliRunner().invoke(app, ["ingest", "--config", config, "--home", str(home), "--details"])
    assert result.exit_code == 0, result.output
    assert "weather/berlin" in result.output and "weather/seattle" in result.output and "changed" in result.output

    result = CliRunner().invoke(app, ["ingest", "--offline", "--dataset", "seattle_weather", "--home", str(home), "--details"])
    assert result.exit_code == 0, result.output
    assert "weather/seattle" in result.output and "1461" in result.output
    frame = ObservationStore(home / "store").read("seattle_weather")
    assert len(frame) == 1461 and frame["timestamp"].iloc[0] == pd.Timestamp("2012-01-01", tz="UTC")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ingest"], 2, "pass --config FILE (ingest configs), --file DATA.csv --dataset NAME (one file), or --offline"),
        (["ingest", "--file", "x.csv"], 2, "--file DATA.csv --dataset NAME"),
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


def _cli(home, *args):
    from forecasting.cli.app import app

    return CliRunner().invoke(app, ["ingest", *args, "--home", str(home)])


def test_one_off_file_ingest_infers_the_grid_and_lands_local_days(home) -> None:
    days = pd.date_range("2020-01-01", "2021-12-31", freq="D")
    path = home / "kolkata.csv"
    pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "temp": 25 + np.sin(np.arange(len(days)) / 9)}).to_csv(path, index=False)

    result = _cli(home, "--file", str(path), "--dataset", "kolkata", "--time-col", "day", "--target-col", "temp",
                  "--timezone", "Asia/Kolkata")

    assert result.exit_code == 0, result.output
    assert "frequency: D in Asia/Kolkata (inferred from the file; pass --freq to set it)" in result.output
    assert "data check" not in result.output  # nothing quarantined, nothing to say
    stored = ObservationStore(home / "store").read("kolkata")
    assert len(stored) == len(days) and stored["series_id"].unique().tolist() == ["kolkata"]
    assert stored["timestamp"].iloc[0] == pd.Timestamp("2019-12-31 18:30", tz="UTC")
    assert list((home / "store" / "kolkata" / "_reports").glob("ingest-*.csv"))

    missing = _cli(home, "--file", str(path), "--dataset", "kolkata", "--time-col", "date", "--target-col", "temp", "--timezone", "UTC")
    assert missing.exit_code == 1
    text = missing.output
    assert "mapped column(s) ['date'] not in the file; it has ['day', 'temp']" in text
    assert "columns:\n      day: timestamp\n      temp: target" in text  # the config lines that fix it


def test_a_header_only_file_says_0_rows_and_exits_non_zero(home) -> None:
    path = home / "empty.csv"
    path.write_text("date,value\n")
    result = _cli(home, "--file", str(path), "--dataset", "empty", "--freq", "D", "--timezone", "UTC")
    assert result.exit_code == 1, result.output
    assert "0 rows" in result.output and "the others landed" not in result.output


def test_a_run_that_quarantines_every_row_exits_non_zero_and_says_why(home) -> None:
    path = home / "days.csv"
    path.write_text("date,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(2, 12)))
    result = _cli(home, "--file", str(path), "--dataset", "wrong", "--freq", "MS", "--timezone", "Asia/Kolkata")
    assert result.exit_code == 1, result.output
    error = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert error == (
        "error: ingest: 0 rows landed: all 10 of 10 rows were quarantined; first problem: series 'wrong': "
        "10 row(s) off the 'MS' grid in Asia/Kolkata (check 'freq:' and the 'timezone:' the data was recorded in), "
        "first at 2024-01-01 18:30:00+00:00"
    )


def test_ingest_of_500_series_prints_totals_and_at_most_ten_problem_series(home) -> None:
    rows = []
    for k in range(500):
        n = 3 if k % 20 == 0 else 12  # 25 series too short to train on: flagged
        rows.append(pd.DataFrame({"id": f"s{k:03d}", "date": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                                  "value": np.arange(n) + k % 7 + np.linspace(0, 1, n)}))
    path = home / "many.csv"
    pd.concat(rows).to_csv(path, index=False)

    result = _cli(home, "--file", str(path), "--dataset", "many", "--id-col", "id", "--timezone", "UTC")

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 20, result.output
    assert sum("data check:" in line for line in lines) == 11  # ten series, then the count of the rest
    assert "... and 15 more series with problems" in result.output
    assert "data check: many / s000 [changed]: only 3 row(s), fewer than limits.min_rows 10" in result.output
    (report,) = (home / "store" / "many" / "_reports").glob("ingest-*.csv")
    assert len(pd.read_csv(report)) == 500

    details = _cli(home, "--file", str(path), "--dataset", "many", "--id-col", "id", "--timezone", "UTC", "--details")
    assert details.exit_code == 0 and "s499" in details.output and "unchanged" in details.output


def test_a_full_disk_ends_the_cli_in_one_error_naming_what_landed_and_a_rerun_finishes(home, monkeypatch) -> None:
    import errno

    from forecasting.data import store as store_module

    path = home / "many.csv"
    path.write_text("id,date,value\n" + "".join(f"s{k},2024-01-{d:02d},{k + d}\n" for k in range(5) for d in range(1, 13)))
    real, writes = store_module.write_parquet_atomic, []

    def full_after_two(frame, target, **kwargs):  # as a full tmpfs would answer the third data file
        if "_quarantine" not in str(target):
            writes.append(target)
            if len(writes) > 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(frame, target, **kwargs)

    monkeypatch.setattr(store_module, "write_parquet_atomic", full_after_two)
    args = ("--file", str(path), "--dataset", "full", "--id-col", "id", "--timezone", "UTC", "--freq", "D")
    result = _cli(home, *args)

    assert result.exit_code == 1, result.output
    text = result.output
    assert "ingest failed for 1 of 5 series (2 landed, 2 never tried: rerun to finish them)" in text
    assert "full / s2: the disk holding the store" in text and "never tried: s3, s4" in text
    assert "full per-series report:" in text and "Traceback" not in text
    assert ObservationStore(home / "store").series("full") == ["s0", "s1"]

    monkeypatch.setattr(store_module, "write_parquet_atomic", real)
    again = _cli(home, *args)
    assert again.exit_code == 0, again.output
    assert len(ObservationStore(home / "store").read("full")) == 60
