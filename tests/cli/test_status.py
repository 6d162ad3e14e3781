"""`forecast status` on a demo-like home, and the commands that must start no Prefect server (`promote`,
`rollback`, `status`): real `forecast` processes, real MLflow on SQLite, flows on the session's Prefect harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.slow
NAME = "status-weather"
FORECAST = Path(sys.executable).parent / "forecast"
PROBE_DEPLOYMENT = "nightly-status-probe"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, prefect_harness):
    """Bundled daily weather ingested; two versions trained; forecasts issued; a monitoring run that alerted."""
    from pipelines.ingest import ingest_flow
    from pipelines.monitor import monitor_flow
    from pipelines.predict import predict_flow
    from pipelines.train import train_flow

    home = tmp_path_factory.mktemp("status-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    raw = tiny_config_dict(
        name=NAME, data={"dataset": "seattle_weather", "freq": "D"}, window={"lookback": 28, "horizon": 7, "stride": 3},
        baseline={"season_length": 7}, training={"max_epochs": 1},
        promotion={"metric": "mase", "origins": 5, "must_beat": []},  # the first version serves whatever it scores
    )
    path = home / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    ingest_flow(datasets=["seattle_weather"], home=str(home))
    first = train_flow(str(path), home=str(home))
    second = train_flow(str(path), home=str(home))
    predict_flow(NAME, home=str(home), as_of="2015-12-20")
    latest = predict_flow(NAME, home=str(home))
    monitored = monitor_flow(NAME, home=str(home), promised={latest["version"]: 1e-3}, retrain_on_alert=False,
                             fail_on_alert=False)
    assert monitored["alert"]
    yield {"home": home, "versions": [first["version"], second["version"]], "monitored": monitored}
    mp.undo()


def _forecast(args: list[str], *, api: bool = False, importtime: bool = False, timeout: int = 180):
    """``forecast ARGS`` in its own process, stdout and stderr piped (as a scheduled job's log)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if api:
        from prefect.settings import PREFECT_API_URL

        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), str(FORECAST), *args]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    return proc, time.monotonic() - started


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` lines: ``import time: self | cumulative | name``."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:") and "|" in line}


def _schedule_probe_run() -> datetime:
    """A deployment on the harness with one run scheduled a day ahead (no worker will pick it up)."""
    from prefect import flow
    from prefect.deployments import run_deployment

    @flow(name="status-probe")
    def probe() -> None:
        return None

    probe.to_deployment(name=PROBE_DEPLOYMENT).apply()
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    run_deployment(f"status-probe/{PROBE_DEPLOYMENT}", scheduled_time=when, timeout=0, as_subflow=False)
    return when


def test_status_json_holds_every_field(demo):
    from forecasting.registry import models as registry

    when = _schedule_probe_run()
    proc, _ = _forecast(["status", "--json", "--home", str(demo["home"])], api=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (model,) = [m for m in report["models"] if m["name"] == NAME]

    registry.configure(f"sqlite:///{demo['home'] / 'mlflow.db'}")
    champion = registry.champion_or_none(NAME)
    tags = registry.version_tags(NAME, champion.version)
    assert model["champion"]["version"] == champion.version and model["versions"] == 2
    assert model["champion"]["since"] == tags["promotion.at"] and model["champion"]["reason"] == tags["promotion.reason"]
    assert model["champion"]["by"] == tags["promotion.by"] and model["champion"]["decision"] == tags["promotion.decision"]

    backtest = model["backtest"]
    assert backtest["metric"] == "mase" and backtest["origins"] == 5
    assert {"naive", "seasonal_naive", "drift", "mean"} <= set(backtest["baselines"])
    assert backtest["model"] == pytest.approx(float(tags["promotion.challenger_score"]), rel=1e-4)  # the promotion's MASE
    assert backtest["baselines"]["seasonal_naive"] == pytest.approx(float(tags["promotion.baseline.seasonal_naive"]), rel=1e-4)
    assert sorted(backtest["beats"] + backtest["loses_to"]) == sorted(backtest["baselines"])

    ingest = model["ingest"]
    assert ingest["dataset"] == "seattle_weather" and ingest["series"] == 1
    assert ingest["newest"] == "2015-12-31T00:00:00+00:00"
    assert ingest["lag_seconds"] > 3600 * 24 * 365 and ingest["lag"].endswith("days")
    assert pd.Timestamp(ingest["last_ingest_at"]) > pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=2)
    assert report["datasets"] == [ingest]

    assert model["last_forecast"]["origin"] == "2015-12-31T00:00:00+00:00"
    assert Path(model["last_forecast"]["path"]).is_file()

    monitoring = model["monitoring"]
    assert monitoring["alert"] is True and monitoring["run_id"] == demo["monitored"]["run_id"]
    assert monitoring["alerts"] == demo["monitored"]["alerts"] and monitoring["alerts"]
    assert any(p.startswith(f"{NAME}: monitoring alert: ") for p in report["problems"]) and report["healthy"] is False

    runs = report["schedule"]["runs"]
    assert report["schedule"]["error"] is None
    probe = [r for r in runs if r["deployment"] == PROBE_DEPLOYMENT]
    assert probe and probe[0]["flow"] == "status-probe"
    assert pd.Timestamp(probe[0]["expected_start"]) == pd.Timestamp(when)


def test_status_screen_is_whole_when_piped_and_never_imports_prefect(demo):
    """Without PREFECT_API_URL there is no server to ask and none is started: Prefect is not even imported."""
    proc, seconds = _forecast(["status", "--home", str(demo["home"])], importtime=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not {m for m in _imported(proc.stderr) if m.split(".")[0] == "prefect"}
    out = proc.stdout
    assert "…" not in out
    from forecasting.registry import models as registry

    registry.configure(f"sqlite:///{demo['home'] / 'mlflow.db'}")
    champion = registry.champion_or_none(NAME)
    reason = registry.version_tags(NAME, champion.version)["promotion.reason"]
    assert any(line.startswith(f"{NAME} v{champion.version}: ") and line.endswith(reason) for line in out.splitlines()), out
    for alert in demo["monitored"]["alerts"]:
        assert f"alert: {NAME}: {alert}" in out
    assert "2015-12-31T00:00:00+00:00" in out and "seattle_weather" in out
    assert "PREFECT_API_URL is not set" in out
    assert seconds < 90


def test_promote_and_rollback_start_no_prefect_server_and_finish_in_seconds(demo):
    """Run as a person would; ``-X importtime`` lists every module loaded: no Prefect at all, so no server."""
    from forecasting.registry import models as registry

    registry.configure(f"sqlite:///{demo['home'] / 'mlflow.db'}")
    before = registry.champion_or_none(NAME).version
    other = next(v for v in demo["versions"] if v != before)
    home = ["--home", str(demo["home"])]

    promoted, promote_s = _forecast(["promote", "--model", NAME, "--version", other, "--why", "status test", *home], importtime=True)
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    assert promoted.stdout.strip() == f"{NAME}: champion is now v{other} (was v{before})"
    rolled, rollback_s = _forecast(["rollback", "--model", NAME, "--why", "status test", *home], importtime=True)
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    assert rolled.stdout.strip() == f"{NAME}: champion rolled back from v{other} to v{before}"
    assert registry.champion_or_none(NAME).version == before
    for proc in (promoted, rolled):
        modules = _imported(proc.stderr)
        assert "forecasting.registry.promotion" in modules  # the check sees what the command imported
        assert not {m for m in modules if m.split(".")[0] == "prefect"}
    assert promote_s < 60 and rollback_s < 60, (promote_s, rollback_s)  # seconds of imports, not a server start
    # The older spelling still works, and the alias form resolves the version.
    again, _ = _forecast(["promote", NAME, before, "--why", "positional", *home])
    assert again.returncode == 0 and again.stdout.strip() == f"{NAME}: champion is now v{before} (was v{before})"
    challenger = registry.resolve(NAME, "challenger").version
    by_alias, _ = _forecast(["promote", "--model", f"{NAME}@challenger", "--why", "alias", *home])
    assert by_alias.returncode == 0 and by_alias.stdout.strip().startswith(f"{NAME}: champion is now v{challenger}")
