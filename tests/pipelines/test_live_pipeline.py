"""The served pipeline end to end on replayed live answers: every deployment of configs/schedules.yaml, in order.

A local HTTP server replays Open-Meteo and Stooq answers (tests/fixtures/live: the recorded format,
with real observations from the bundled data; see make_fixtures.py there). The shipped schedules
are run as `forecast serve` would run them, minus the cron: each deployment's flow is loaded from
its entrypoint and called with its own parameters, in pipeline order, twice (a later day's ingest
brings new rows). Only what cannot run offline or fast is changed, in copies of the configs the
deployments name:

- ingest configs: the replay server's URL, pinned start/end dates, fast HTTP retries; the weather
  ingest asks for Seattle's temperature only (the bundled data has no other location or variable);
- model configs: a tiny network, one epoch, no statistical baselines, no baseline to beat for the
  first champion. Names, datasets, frequencies and covariates stay the shipped ones, so the links
  ingest -> dataset -> model -> predict -> monitor are the shipped links.

Checked: each forecast starts on the grid point right after the newest ingested timestamp of its
series (not after the bundled history), and the monitor scores the first day's forecasts against the
actuals the second ingest brought.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forecasting.config.model import deep_merge
from forecasting.data.sources.open_meteo import ARCHIVE_PATH
from forecasting.data.sources.stooq import DOWNLOAD_PATH
from tests.data.replay import Answer, ReplayServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FAST_HTTP = {"timeout_seconds": 2, "attempts": 2, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
TINY = {
    "model": {"hidden_size": 8, "num_layers": 1},
    "training": {"max_epochs": 1, "patience": 1},
    "baseline": {"statistical": []},
    "promotion": {"must_beat": [], "origins": 5},
    "backtest": {"origins": 3},
}
# (start, end) of the first and the second day's ingest, as the fixtures were cut (make_fixtures.py).
WEATHER_DAYS = [("2010-01-02", "2010-02-28"), ("2010-01-02", "2010-03-03")]
STOCK_DAYS = [("2012-01-01", "2012-12-31"), ("2012-01-01", "2013-01-15")]
TICKERS = ["aapl", "msft", "ibm", "goog", "meta"]
FIRST_ROUND = ["ingest", "retrain", "predict"]
SECOND_ROUND = ["ingest", "predict", "monitor", "backtest"]


@pytest.fixture(scope="module")
def replay():
    with ReplayServer() as server:
        server.script(ARCHIVE_PATH, Answer.file("live/open_meteo_seattle_2010-01-02_2010-02-28.json"), when={"start_date": "2010-01-02"})
        server.script(ARCHIVE_PATH, Answer.file("live/open_meteo_seattle_2010-02-26_2010-03-03.json"))
        for ticker in TICKERS:
            symbol = f"{ticker}.us"
            server.script(DOWNLOAD_PATH, Answer.file(f"live/stooq_{ticker}_2012-01-01_2012-12-31.csv"), when={"s": symbol, "d1": "20120101"})
            server.script(DOWNLOAD_PATH, Answer.file(f"live/stooq_{ticker}_2012-12-20_2013-01-15.csv"), when={"s": symbol})
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory, prefect_harness, replay):
    """A home, the shipped schedules pointed at config copies, and a function that sets the ingest day."""
    home = tmp_path_factory.mktemp("live-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("FORECASTING_HOME", str(home))  # what the served flows read: the deployments pass no home
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    shipped = yaml.safe_load((REPO / "configs" / "schedules.yaml").read_text())
    configs = home / "configs"
    configs.mkdir()
    for spec in shipped["deployments"].values():
        params = spec["parameters"]
        if "config_path" in params:  # a model config: tiny, links unchanged
            raw = yaml.safe_load((REPO / "configs" / params["config_path"]).read_text())
            path = configs / Path(params["config_path"]).name
            path.write_text(yaml.safe_dump(deep_merge(raw, TINY)))
            params["config_path"] = str(path)
        elif "config" in params:  # an ingest config: the replay server, pinned dates
            params["config"] = str(configs / Path(params["config"]).name)
    (configs / "schedules.yaml").write_text(yaml.safe_dump(shipped))

    def ingest_day(day: int) -> None:
        for name, days, extra in (
            ("weather.yaml", WEATHER_DAYS, {"locations": [{"name": "seattle", "latitude": 47.61, "longitude": -122.33}],
                                            "variables": ["temperature_2m"], "ranges": {"target": {"ge": -90, "le": 60}}}),
            ("stocks.yaml", STOCK_DAYS, {}),
        ):
            raw = yaml.safe_load((REPO / "configs" / "ingest" / name).read_text())
            start, end = days[day]
            raw.update({"base_url": replay.url, "start": start, "end": end, "http": FAST_HTTP, **extra})
            (configs / name).write_text(yaml.safe_dump(raw))

    yield home, configs / "schedules.yaml", ingest_day
    mp.undo()


def _run(deployment) -> dict | list:
    """What a served deployment's run does: import its flow from the entrypoint, call it with its parameters."""
    module, _, attr = deployment.entrypoint.rpartition(".")
    flow = getattr(importlib.import_module(module), attr)
    extra = {"fail_on_alert": False} if deployment.flow_name == "monitor" else {}  # report, do not fail, on a tiny model's alert
    return flow(**deployment.parameters, **extra)


def _round(deployments, kinds: list[str]) -> dict[str, dict | list]:
    order = {kind: i for i, kind in enumerate(kinds)}
    picked = sorted((d for d in deployments if d.name.split("-")[0] in order), key=lambda d: order[d.name.split("-")[0]])
    return {d.name: _run(d) for d in picked}


def _check_forecasts_follow_the_data(home: Path, summary: dict, dataset: str, step: pd.DateOffset) -> None:
    from forecasting.data.store import ObservationStore

    last = ObservationStore(home / "store").last_timestamps(dataset)
    forecasts = pd.read_parquet(summary["path"])
    assert set(forecasts["series_id"]) == set(last)
    first = forecasts.groupby("series_id")["timestamp"].min()
    for sid, newest in last.items():
        assert first[sid] > newest, (sid, first[sid], newest)
        assert first[sid] == newest + step, (sid, first[sid], newest)  # the very next grid point
    assert summary["origin"] == max(last.values()).strftime("%Y-%m-%dT%H:%M")


def test_the_shipped_schedules_run_as_one_pipeline_on_live_answers(served, replay):
    from forecasting.data.calendar import offset_for
    from pipelines.deployments import build_deployments

    home, schedules, ingest_day = served
    deployments = build_deployments(schedules)
    assert {d.name.split("-")[0] for d in deployments} == {"ingest", "retrain", "predict", "backtest", "monitor"}
    hour, session = pd.Timedelta("1h"), offset_for("XNYS")

    ingest_day(0)
    first = _round(deployments, FIRST_ROUND)
    assert [r["dataset"] for r in first["ingest-weather"]] == ["weather_hourly"]
    assert first["ingest-weather"][0]["added"] == 1392 and first["ingest-stocks"][0]["series"] == 5
    for name in ("retrain-weather", "retrain-stocks"):
        assert first[name]["promoted"] and first[name]["has_champion"], first[name]
    assert first["predict-weather"]["name"] == "weather-hourly-live" and first["predict-stocks"]["name"] == "stocks-daily-live"
    _check_forecasts_follow_the_data(home, first["predict-weather"], "weather_hourly", hour)
    _check_forecasts_follow_the_data(home, first["predict-stocks"], "stocks_daily", session)
    assert first["predict-weather"]["origin"] == "2010-02-28T23:00"
    assert pd.read_parquet(first["predict-stocks"]["path"])["timestamp"].min() == pd.Timestamp("2013-01-02", tz="UTC")

    ingest_day(1)  # a later run: the ingests fetch from their last stored point, predict moves on, monitor scores
    second = _round(deployments, SECOND_ROUND)
    assert second["ingest-weather"][0]["added"] == 72
    _check_forecasts_follow_the_data(home, second["predict-weather"], "weather_hourly", hour)
    _check_forecasts_follow_the_data(home, second["predict-stocks"], "stocks_daily", session)
    assert second["predict-weather"]["origin"] == "2010-03-03T23:00"
    # The first day's forecasts met their actuals: 24 hours of Seattle, 5 sessions of 5 tickers.
    assert second["monitor-weather"]["scored"] == 24
    assert second["monitor-stocks"]["scored"] == 25
    for name in ("backtest-weather", "backtest-stocks"):
        assert second[name]["dataset"] in ("weather_hourly", "stocks_daily") and second[name]["version"] == "1"
    # Incremental fetches: the second runs asked from the last stored point minus the overlap, not from the start.
    assert [s.params["start_date"] for s in replay.seen(ARCHIVE_PATH)] == ["2010-01-02", "2010-02-26"]
    assert [s.params["d1"] for s in replay.seen(DOWNLOAD_PATH) if s.params["s"] == "aapl.us"] == ["20120101", "20121221"]
