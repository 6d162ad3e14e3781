"""Scheduled deployments: declared in configs/schedules.yaml, built by pipelines.deployments, served by `forecast serve`."""

import asyncio
from pathlib import Path

import pytest
import yaml

from forecasting.errors import ConfigError
from pipelines.deployments import DEFAULT_SCHEDULES, build_deployments, load_schedules

REPO = Path(__file__).resolve().parents[2]

EXPECTED = {
    # name: (flow, cron, timezone, parameters)
    "ingest-weather": ("ingest-source", "5 * * * *", "UTC", {"config": str(REPO / "configs/ingest/weather.yaml")}),
    "predict-weather": ("predict", "20 * * * *", "UTC", {"model_name": "weather-hourly-live"}),
    "ingest-stocks": ("ingest-source", "30 16 * * 1-5", "America/New_York", {"config": str(REPO / "configs/ingest/stocks.yaml")}),
    "predict-stocks": ("predict", "0 17 * * 1-5", "America/New_York", {"model_name": "stocks-daily-live"}),
    "retrain-weather": ("train", "0 2 * * 0", "UTC", {"config_path": str(REPO / "configs/weather-live.yaml")}),
    "retrain-stocks": ("train", "0 3 * * 6", "America/New_York", {"config_path": str(REPO / "configs/stocks-live.yaml")}),
    "backtest-weather": ("backtest", "0 4 * * 0", "UTC", {"config_path": str(REPO / "configs/weather-live.yaml")}),
    "backtest-stocks": ("backtest", "0 5 * * 6", "America/New_York", {"config_path": str(REPO / "configs/stocks-live.yaml")}),
    "monitor-weather": ("monitor", "30 6 * * *", "UTC", {"model_name": "weather-hourly-live"}),
    "monitor-stocks": ("monitor", "0 18 * * 1-5", "America/New_York", {"model_name": "stocks-daily-live"}),
}


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_schedules_build_every_deployment():
    deployments = build_deployments()
    got = {
        d.name: (d.flow_name, d.schedules[0].schedule.cron, d.schedules[0].schedule.timezone, d.parameters)
        for d in deployments
    }
    assert got == EXPECTED
    for d in deployments:
        assert len(d.schedules) == 1 and d.schedules[0].active
        # Module entrypoints: a served process or a worker finds the flow wherever the package is installed.
        assert d.entrypoint.startswith("pipelines.") and ":" not in d.entrypoint
        assert "forecasting" in d.tags
    # Every file a deployment names exists (relative paths are read from the schedules file's folder).
    for _, _, _, params in EXPECTED.values():
        for value in params.values():
            if value.endswith(".yaml"):
                assert Path(value).is_file(), value


def test_predict_runs_after_its_ingest():
    config = load_schedules(DEFAULT_SCHEDULES)
    for dataset in ("weather", "stocks"):
        ingest, predict = config.deployments[f"ingest-{dataset}"], config.deployments[f"predict-{dataset}"]
        assert ingest.timezone == predict.timezone
        i_min, i_hour, *i_rest = ingest.cron.split()
        p_min, p_hour, *p_rest = predict.cron.split()
        assert i_rest == p_rest  # same days
        if i_hour == "*":
            assert p_hour == "*" and int(p_min) > int(i_min)
        else:
            assert (int(p_hour), int(p_min)) > (int(i_hour), int(i_min))


def test_only_selects_and_unknown_names_fail():
    assert [d.name for d in build_deployments(only=["predict-stocks"])] == ["predict-stocks"]
    with pytest.raises(ConfigError, match="no deployment named nope"):
        build_deployments(only=["nope"])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"flow": "predict", "cron": "61 * * * *", "parameters": {"model_name": "m"}}, "invalid cron"),
        ({"flow": "predict", "cron": "* * *", "parameters": {"model_name": "m"}}, "five fields"),
        ({"flow": "predict", "cron": "0 * * * *", "timezone": "Mars/Olympus", "parameters": {"model_name": "m"}}, "unknown time zone"),
        ({"flow": "deploy-the-moon", "cron": "0 * * * *"}, "flow"),
    ],
)
def test_bad_entries_are_rejected_with_the_reason(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        load_schedules(_write(tmp_path, {"deployments": {"x": entry}}))


@pytest.mark.parametrize("parameters", [{"modelname": "m"}, {}], ids=["unknown-name", "missing-model_name"])
def test_parameters_that_do_not_fit_the_flow_are_rejected_when_deployments_are_built(tmp_path, parameters):
    """The schedules file knows flows by name; binding them to their flows is build_deployments' job."""
    path = _write(tmp_path, {"deployments": {
        "ok": {"flow": "predict", "cron": "0 * * * *", "parameters": {"model_name": "m"}},
        "x": {"flow": "predict", "cron": "0 * * * *", "parameters": parameters},
    }})
    assert set(load_schedules(path).deployments) == {"ok", "x"}
    with pytest.raises(ConfigError, match=r"deployment 'x': parameters .* do not fit flow 'predict'"):
        build_deployments(path, only=["ok"])  # every entry is checked, not only the selected ones


def test_reading_the_schedules_imports_no_flow():
    """pipelines.monitor reads the schedules to find a retrain deployment; that must not import the flows back."""
    import subprocess
    import sys

    code = (
        "import sys; import pipelines.deployments as d; d.load_schedules(d.DEFAULT_SCHEDULES); "
        "flows = [m for m in ('pipelines.train', 'pipelines.predict', 'pipelines.monitor', 'pipelines.backtest', "
        "'pipelines.ingest') if m in sys.modules]; assert not flows, flows"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_file_default_timezone_and_relative_paths(tmp_path):
    (tmp_path / "ingest").mkdir()
    path = _write(tmp_path, {"timezone": "Europe/Berlin", "deployments": {
        "a": {"flow": "ingest-source", "cron": "0 6 * * *", "parameters": {"config": "ingest/x.yaml"}},
        "b": {"flow": "predict", "cron": "0 7 * * *", "timezone": "Asia/Tokyo", "parameters": {"model_name": "m", "alias": "challenger"}},
    }})
    a, b = build_deployments(path)
    assert a.schedules[0].schedule.timezone == "Europe/Berlin"
    assert a.parameters == {"config": str(tmp_path / "ingest" / "x.yaml")}
    assert b.schedules[0].schedule.timezone == "Asia/Tokyo"
    assert b.parameters == {"model_name": "m", "alias": "challenger"}


def test_deployments_register_and_list_with_schedules(prefect_harness):
    from prefect.client.orchestration import get_client

    ids = {d.name: d.apply() for d in build_deployments()}

    async def listed():
        async with get_client() as client:
            return await client.read_deployments()

    found = {d.name: d for d in asyncio.run(listed()) if d.id in ids.values()}
    assert set(found) == set(EXPECTED)
    for name, (flow, cron, tz, params) in EXPECTED.items():
        d = found[name]
        assert d.entrypoint.startswith("pipelines.")
        assert d.parameters == params
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules] == [(cron, tz, True)]
    # Re-applying updates in place: no duplicates, same ids.
    again = {d.name: d.apply() for d in build_deployments(only=["predict-weather"])}
    assert again["predict-weather"] == ids["predict-weather"]


def test_serve_dry_run_lists_schedules(tmp_path):
    from typer.testing import CliRunner

    from forecasting.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--dry-run", "--home", str(tmp_path / "home"), "--only", "ingest-stocks", "--only", "predict-stocks"])
    assert result.exit_code == 0, result.output
    assert "ingest-source/ingest-stocks  cron '30 16 * * 1-5' (America/New_York)" in result.output
    assert "predict/predict-stocks  cron '0 17 * * 1-5' (America/New_York)" in result.output
    assert "weather" not in result.output

    bad = CliRunner().invoke(app, ["serve", "--dry-run", "--home", str(tmp_path / "home"), "--only", "nope"])
    assert bad.exit_code == 1


# --- one pipeline per served model: live ingest -> dataset -> train -> predict -> monitor ---------------------


def test_shipped_schedules_serve_live_data_end_to_end():
    from pipelines.deployments import model_pipelines

    pipelines, problems = model_pipelines(load_schedules(DEFAULT_SCHEDULES))
    assert problems == []
    got = {p.model: (p.ingest, p.dataset, p.freq, p.train, p.predict, p.monitor, p.backtest) for p in pipelines}
    assert got == {
        "weather-hourly-live": (["ingest-weather"], "weather_hourly", "h", ["retrain-weather"], ["predict-weather"],
                                ["monitor-weather"], ["backtest-weather"]),
        "stocks-daily-live": (["ingest-stocks"], "stocks_daily", "XNYS", ["retrain-stocks"], ["predict-stocks"],
                              ["monitor-stocks"], ["backtest-stocks"]),
    }
    # The bundled-data models stay for the offline demo, not for the schedules.
    served = {Path(s.parameters["config_path"]).name for s in load_schedules(DEFAULT_SCHEDULES).deployments.values() if "config_path" in s.parameters}
    assert served == {"weather-live.yaml", "stocks-live.yaml"}


def test_broken_links_are_named(tmp_path):
    """The old shipped wiring (live ingest, bundled-data models) and a model fed another grid and columns."""
    from pipelines.deployments import model_pipelines

    (tmp_path / "hourly-stocks.yaml").write_text(yaml.safe_dump({
        "source": "open_meteo", "dataset": "stocks_daily", "start": "2024-01-01", "variables": ["temperature_2m"],
        "locations": [{"name": "x", "latitude": 1, "longitude": 2}],
    }))
    path = _write(tmp_path, {"deployments": {
        "ingest-weather": {"flow": "ingest-source", "cron": "5 * * * *", "parameters": {"config": str(REPO / "configs/ingest/weather.yaml")}},
        "ingest-odd": {"flow": "ingest-source", "cron": "5 * * * *", "parameters": {"config": "hourly-stocks.yaml"}},
        "retrain-weather": {"flow": "train", "cron": "0 2 * * 0", "parameters": {"config_path": str(REPO / "configs/weather.yaml")}},
        "predict-weather": {"flow": "predict", "cron": "20 * * * *", "parameters": {"model_name": "weather-seattle-hourly"}},
        "retrain-stocks": {"flow": "train", "cron": "0 3 * * 6", "parameters": {"config_path": str(REPO / "configs/stocks-live.yaml")}},
        "monitor-ghost": {"flow": "monitor", "cron": "0 6 * * *", "parameters": {"model_name": "ghost"}},
    }})
    _, problems = model_pipelines(load_schedules(path))
    text = "\n".join(problems)
    assert "'retrain-weather' trains model 'weather-seattle-hourly' on dataset 'seattle_temps', which no ingest deployment writes" in text
    assert "model 'stocks-daily-live' forecasts on 'XNYS' but 'ingest-odd' writes dataset 'stocks_daily' on 'h'" in text
    assert "reads column(s) ['volume'] that 'ingest-odd' does not write" in text
    assert "model 'stocks-daily-live' is trained by retrain-stocks but no predict deployment forecasts with it" in text
    assert "deployment 'monitor-ghost' (monitor) uses model 'ghost', which no train deployment trains" in text
    assert len(problems) == 5


def test_serve_dry_run_prints_each_pipeline(tmp_path):
    from typer.testing import CliRunner

    from forecasting.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--dry-run", "--home", str(tmp_path / "home")], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert ("pipeline weather-hourly-live: ingest-weather -> weather_hourly (h) -> retrain-weather -> predict-weather "
            "-> monitor-weather; backtest backtest-weather") in result.output
    assert "pipeline stocks-daily-live: ingest-stocks -> stocks_daily (XNYS)" in result.output
    assert "warning" not in result.output
