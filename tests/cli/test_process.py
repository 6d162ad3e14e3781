"""Start-up and exit of real `forecast` processes: configs checked before any server starts, a Prefect start-up
timeout as one line, SIGTERM and Ctrl-C leaving nothing running, and flow logs that reach the Prefect API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import REPO, tiny_config_dict

pytestmark = pytest.mark.slow
FORECAST = Path(sys.executable).parent / "forecast"
SERVER_MODULE = "prefect.server.api.server"
"""Where Prefect's temporary API server (``SubprocessASGIServer``) lives: imported only to start one."""


def _env(*, api_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return {**env, **extra}


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` lines: ``import time: self | cumulative | name``."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:") and "|" in line}


def _without_importtime(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


def _weather_home(home: Path, name: str, **training) -> Path:
    """A home whose store holds the bundled daily weather, and a tiny config of it."""
    from forecasting.data.sources.bundled import load_bundled
    from forecasting.data.store import ObservationStore

    ObservationStore(home / "store").upsert("seattle_weather", load_bundled("seattle_weather"),
                                            lineage={"source": "bundled", "fetched_at": "2026-01-01T00:00:00+00:00"})
    raw = tiny_config_dict(name=name, data={"dataset": "seattle_weather", "freq": "D"},
                           window={"lookback": 28, "horizon": 7, "stride": 3}, baseline={"season_length": 7},
                           training={"max_epochs": 1, **training}, promotion={"metric": "mase", "origins": 5, "must_beat": []})
    path = home / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _servers_of(home: Path) -> list[psutil.Process]:
    """Live processes (a uvicorn Prefect server, any worker) started for this home: they carry its PREFECT_HOME."""
    mine = str(home / "prefect")
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != os.getpid() and proc.environ().get("PREFECT_HOME") == mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


BAD_CONFIG = {"name": "bad", "data": {"dataset": "seattle_weather", "freq": "D"}, "window": {"lookback": -5, "horizon": 7}}


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--config", "{bad}"],
        ["predict", "--config", "{bad}"],
        ["predict", "--model", "ghost"],  # no such model: said before any server starts
        ["quickstart", "--config", "{bad}"],
        ["tune", "--config", "{bad}", "--trials", "2"],
        ["backtest", "--config", "{bad}"],
        ["monitor", "--model", "m", "--settings", "{bad_settings}"],
        ["ingest", "--config", "{bad_ingest}"],
        ["serve", "--schedules", "{bad_schedules}"],
    ],
    ids=lambda c: c[0],
)
def test_a_bad_config_fails_in_one_line_before_any_server_starts(tmp_path, command):
    files = {"bad": tmp_path / "bad.yaml", "bad_settings": tmp_path / "monitor.yaml", "bad_ingest": tmp_path / "ingest.yaml",
             "bad_schedules": tmp_path / "schedules.yaml"}
    files["bad"].write_text(yaml.safe_dump(BAD_CONFIG))
    files["bad_settings"].write_text(yaml.safe_dump({"defaults": {"mase_factor": "lots"}}))
    files["bad_ingest"].write_text(yaml.safe_dump({"dataset": "x", "source": {"kind": "nowhere"}}))
    files["bad_schedules"].write_text(yaml.safe_dump({"deployments": {"d": {"flow": "predict", "cron": "61 * * * *"}}}))
    args = [part.format(**{k: str(v) for k, v in files.items()}) for part in command]
    proc = subprocess.run([sys.executable, "-X", "importtime", str(FORECAST), *args, "--home", str(tmp_path / "home")],
                          capture_output=True, text=True, env=_env(), timeout=300)
    lines = _without_importtime(proc.stderr)
    assert proc.returncode == 1, proc.stdout + "\n".join(lines)
    assert [line for line in lines if line.startswith("error:")] and "Traceback" not in proc.stderr, "\n".join(lines)
    modules = _imported(proc.stderr)
    assert "forecasting.cli.app" in modules and SERVER_MODULE not in modules
    if command[0] != "serve":  # serve reads its schedules through Prefect's deployment objects, never its server
        assert not {m for m in modules if m.split(".")[0] == "prefect"}, command


def test_serve_dry_run_lists_the_schedules_and_starts_no_server(tmp_path):
    proc = subprocess.run([sys.executable, "-X", "importtime", str(FORECAST), "serve", "--dry-run", "--home", str(tmp_path)],
                          capture_output=True, text=True, env=_env(), timeout=300, cwd=REPO)
    assert proc.returncode == 0, "\n".join(_without_importtime(proc.stderr))
    assert "predict/predict-weather  cron '20 * * * *' (UTC)" in proc.stdout
    modules = _imported(proc.stderr)
    assert "pipelines.deployments" in modules and SERVER_MODULE not in modules
    assert not _servers_of(tmp_path)


def test_a_prefect_startup_timeout_is_one_line_with_the_remedy(tmp_path):
    config = _weather_home(tmp_path, "timeout-weather")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(FORECAST), "train", "--config", str(config), "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=_env(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1"),
    )
    lines = _without_importtime(proc.stderr)
    assert proc.returncode == 1, proc.stdout + "\n".join(lines)
    assert SERVER_MODULE in _imported(proc.stderr)  # a flow command does start one: the check above can fail
    assert [line for line in lines if line.strip()] == [
        "error: the temporary Prefect API server did not start within 1 s; set PREFECT_API_URL to a running Prefect "
        "server (`prefect server start`), or raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    ], "\n".join(lines)
    assert not _servers_of(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_during_training_leaves_nothing_running(tmp_path, signum):
    """A training on a temporary Prefect server, stopped mid-training: the process ends within seconds and
    takes its server (a uvicorn child) with it."""
    config = _weather_home(tmp_path, "stopped-weather", max_epochs=500, patience=500)
    log = tmp_path / "output.txt"  # a file, not a pipe: an orphaned server would hold a pipe open forever
    children: list[psutil.Process] = []
    with log.open("w") as out:
        # SIGINT as a terminal's Ctrl-C finds it: a suite started in the background (`make test &` from a
        # script) ignores SIGINT, its children inherit that, and `forecast` rightly keeps an inherited ignore.
        proc = subprocess.Popen([str(FORECAST), "train", "--config", str(config), "--home", str(tmp_path)],
                                stdout=out, stderr=subprocess.STDOUT, env=_env(),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not list((tmp_path / "checkpoints").rglob("*.ckpt")):  # an epoch is done: it is training
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("uvicorn" in " ".join(c.cmdline()) for c in children)  # its temporary Prefect server
        proc.send_signal(signum)
        sent = time.monotonic()
        proc.wait(timeout=60)
        took = time.monotonic() - sent
        output = log.read_text()
        assert proc.returncode != 0 and took < 30, (proc.returncode, took, output[-3000:])
        assert f"stopping ({signal.Signals(signum).name})" in output and "Traceback" not in output, output[-3000:]
        time.sleep(0.5)
        survivors = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not survivors and not _servers_of(tmp_path), survivors
    finally:  # a failing run must not leave its processes behind either
        for leftover in [c for c in children if c.is_running()] + _servers_of(tmp_path):
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        if proc.poll() is None:
            proc.kill()


def test_flow_logs_reach_the_prefect_api_at_info_and_the_terminal_stays_readable(tmp_path, prefect_harness):
    """A real `forecast train` against the session's Prefect API, with the CLI's own logging defaults."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL

    name = "logs-weather"
    config = _weather_home(tmp_path, name)
    env = _env(api_url=PREFECT_API_URL.value())
    env.pop("PREFECT_LOGGING_LEVEL", None)  # the test session's WARNING must not hide what the CLI sets
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run([str(FORECAST), "train", "--config", str(config), "--home", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    terminal = proc.stdout + proc.stderr

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"train-{name}@2015-12-31T00:00"])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    info = [(log.name, log.message) for log in logs if log.level == 20]
    assert any(message.startswith(f"registered {name} version 1 ") for _, message in info), info  # the flow's own line
    assert any(logger.startswith("forecasting.") for logger, _ in info), info  # the library's loggers too
    assert any("Finished in state Completed" in message for _, message in info), info  # and Prefect's, for the UI

    assert f"registered {name} version 1 " in terminal  # project lines stay on the terminal
    for noise in ("Finished in state", "Beginning flow run", "Created task run", "Starting temporary server"):
        assert noise not in terminal, terminal[-3000:]


def test_status_reports_an_unreachable_prefect_api_instead_of_hanging(tmp_path):
    """PREFECT_API_URL naming a dead server: one finding in the report, exit 0, in seconds; nothing started."""
    import json

    started = time.monotonic()
    proc = subprocess.run([str(FORECAST), "status", "--json", "--home", str(tmp_path)], capture_output=True, text=True,
                          env=_env(api_url="http://127.0.0.1:9/api"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["schedule"]["api_url"] == "http://127.0.0.1:9/api" and report["schedule"]["runs"] is None
    assert report["schedule"]["error"] and any(p.startswith("Prefect API: ") for p in report["problems"])
    assert "no registered model yet: `forecast quickstart`, or `forecast train --config FILE`" in report["problems"]
    assert report["healthy"] is False and report["models"] == [] and report["datasets"] == []
    assert time.monotonic() - started < 90
    assert not _servers_of(tmp_path)


def test_status_says_in_one_line_that_the_registry_is_unreachable(tmp_path):
    started = time.monotonic()
    proc = subprocess.run([str(FORECAST), "status", "--home", str(tmp_path)], capture_output=True, text=True,
                          env=_env(MLFLOW_TRACKING_URI="http://127.0.0.1:9"), timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith("error: cannot read the model registry at http://127.0.0.1:9: ")
    assert time.monotonic() - started < 60  # not MLflow's minutes of retries
