"""kill -9 (and SIGTERM) of real subprocesses mid-work, then a rerun: nothing torn, orphaned or duplicated.

Each scenario starts the library in a child process (the same calls the flows make), kills it at a
chosen point (a fault point, ``FORECASTING_FAULT_PAUSE``, where one exists; else while it works), reruns
it to completion, and returns the list of problems it finds in what is left: an empty list is a pass.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAME = "fault-model"

WORKER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import pandas as pd
    from forecasting.config.model import parse_config
    from forecasting.registry import models as registry

    tmp, epochs, alias, step = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    registry.configure(os.environ["MLFLOW_TRACKING_URI"])
    frame = pd.read_parquet(tmp / "frame.parquet")
    config = parse_config({
        "name": "%(name)s", "data": {"dataset": "synthetic", "freq": "h"},
        "window": {"lookback": 48, "horizon": 12, "stride": 2},
        "model": {"hidden_size": 16, "num_layers": 1, "dropout": 0.0},
        "training": {"max_epochs": epochs, "batch_size": 64, "learning_rate": 0.01, "patience": epochs,
                     "num_threads": 1},
        "baseline": {"season_length": 24, "statistical": []},
        "promotion": {"origins": 3, "must_beat": []},
    })
    if step in ("predict", "predict-once"):
        from forecasting.ops import forecast_log
        from forecasting.predict import latest_history, write_forecasts
        model = registry.load("%(name)s")
        history = latest_history(frame, 48)
        for i in range(1000 if step == "predict" else 1):
            out = model.predict(history)
            write_forecasts(out, tmp / "forecasts", "%(name)s")
            forecast_log.append(tmp / "forecast_log", out)
            (tmp / "predict.paused").write_text(str(i))
        sys.exit(0)
    from forecasting.train import fit
    (tmp / "fitting").write_text(str(os.getpid()))
    result = fit(config, frame, checkpoint_dir=tmp / "checkpoints")
    from forecasting.predict import latest_history
    ref = registry.log_and_register(result.forecaster, history_example=latest_history(frame, 48),
                                    artifacts_dir=tmp / "artifacts", aliases=(alias,))
    if step == "promote":
        from forecasting.registry.promotion import promote_challenger
        promote_challenger(ref.name, ref.version, frame, lock_dir=tmp / "locks", origins=3, must_beat=[])
    print("done", ref.version)
    """
) % {"name": NAME}


def _env(tmp: Path, pause: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
           "OMP_NUM_THREADS": "1"}
    env.pop("FORECASTING_FAULT_PAUSE", None)
    if pause:
        env |= {"FORECASTING_FAULT_PAUSE": pause, "FORECASTING_FAULT_PAUSE_FILE": str(tmp / f"{pause}.paused")}
    return env


def _start(tmp: Path, *, epochs: int, alias: str, step: str, pause: str | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, str(tmp), str(epochs), alias, step], env=_env(tmp, pause),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float, what: str) -> None:
    """Bounded wait for a marker file; says what it waited for when it gives up."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited {proc.returncode} first: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{what}: no {path.name} after {seconds:.0f} s")
        time.sleep(0.1)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _complete(tmp: Path, *, alias: str, step: str, seconds: float = 300) -> None:
    proc = _start(tmp, epochs=1, alias=alias, step=step)
    out, err = proc.communicate(timeout=seconds)
    if proc.returncode != 0:
        raise AssertionError(f"the rerun failed ({proc.returncode}): {err[-2000:]}")


def prepare(tmp: Path) -> Path:
    from tests.conftest import synthetic_frame

    tmp.mkdir(parents=True, exist_ok=True)
    synthetic_frame(n_series=2, length=300).to_parquet(tmp / "frame.parquet")
    return tmp


def registry_problems(tmp: Path, *, versions: int = 1) -> list[str]:
    """What is torn, orphaned or duplicated in the registry, runs, checkpoints and locks."""
    from mlflow import MlflowClient

    from forecasting.registry import models as registry

    registry.configure(f"sqlite:///{tmp / 'mlflow.db'}")
    client = MlflowClient()
    problems = []
    found = client.search_model_versions(f"name = '{NAME}'")
    if len(found) != versions:
        problems.append(f"{len(found)} versions, expected {versions}")
    for mv in found:
        if "promotion.decision" not in mv.tags:
            problems.append(f"version {mv.version} has no decision (torn)")
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    running = [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    if running:
        problems.append(f"{len(running)} run(s) left RUNNING")
    # A killed training's resume-KEY folder is kept on purpose: a rerun of the same config and data resumes
    # from it (tests/test_resume.py), and it expires after a week. Private fit-HOST-PID folders never resume.
    checkpoints = tmp / "checkpoints"
    orphans = list(checkpoints.glob(f"fit-{socket.gethostname()}-*")) if checkpoints.exists() else []
    if orphans:
        problems.append(f"{len(orphans)} orphaned checkpoint folder(s)")
    for lock in (tmp / "locks").glob("*.lock") if (tmp / "locks").exists() else []:
        with open(lock) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                problems.append(f"{lock.name} still held")
    return problems


def kill_training(tmp: Path) -> list[str]:
    prepare(tmp)
    proc = _start(tmp, epochs=400, alias="champion", step="train")
    _wait_for(tmp / "fitting", proc, 180, "training to start")
    deadline = time.monotonic() + 120
    while not any((tmp / "checkpoints").glob("*/best*.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.2)  # at least one epoch checkpointed: killed mid-training, with files on disk
    if proc.poll() is not None:
        return [f"training finished before the kill ({proc.returncode})"]
    _kill(proc)
    _complete(tmp, alias="champion", step="train")
    return registry_problems(tmp)


def kill_registration(tmp: Path) -> list[str]:
    prepare(tmp)
    proc = _start(tmp, epochs=1, alias="challenger", step="train", pause="registration")
    _wait_for(tmp / "registration.paused", proc, 240, "registration to reach its fault point")
    _kill(proc)
    _complete(tmp, alias="champion", step="train")
    return registry_problems(tmp)


def kill_promotion(tmp: Path) -> list[str]:
    prepare(tmp)
    proc = _start(tmp, epochs=1, alias="challenger", step="promote", pause="promotion")
    _wait_for(tmp / "promotion.paused", proc, 300, "promotion to reach its fault point (lock held)")
    _kill(proc)
    _complete(tmp, alias="challenger", step="promote")
    problems = registry_problems(tmp)
    from forecasting.registry import models as registry

    if registry.champion_or_none(NAME) is None:
        problems.append("no champion after the rerun's promotion")
    return problems


def kill_predict(tmp: Path) -> list[str]:
    """Killed while writing forecasts and the forecast log over and over, then rerun once: every file whole,
    no temporary left (the rerun's write of the same origin removes its dead writer's), no duplicates."""
    import pandas as pd

    from forecasting.ops import forecast_log

    prepare(tmp)
    _complete(tmp, alias="champion", step="train")
    proc = _start(tmp, epochs=1, alias="champion", step="predict")
    _wait_for(tmp / "predict.paused", proc, 240, "the first forecasts to be written")
    time.sleep(1.5)
    _kill(proc)
    _complete(tmp, alias="champion", step="predict-once")
    problems = []
    for path in sorted((tmp / "forecasts").rglob("*")):
        if path.is_file():
            if path.suffix != ".parquet":
                problems.append(f"leftover {path.name} in forecasts")
                continue
            try:
                pd.read_parquet(path)
            except Exception as exc:  # noqa: BLE001 - a torn file is the finding
                problems.append(f"torn forecast file {path.name}: {exc}")
    for path in sorted((tmp / "forecast_log").rglob("*")):
        if path.is_file() and path.suffix != ".parquet":
            problems.append(f"leftover {path.name} in the forecast log")
    log = forecast_log.read(tmp / "forecast_log", NAME)
    duplicated = int(log.duplicated(["series_id", "origin", "step", "model_version"]).sum())
    if duplicated:
        problems.append(f"{duplicated} duplicated rows in the forecast log")
    return problems + registry_problems(tmp)


def sigterm_during_fetch(tmp: Path, server_url: str) -> subprocess.Popen:
    """Start `forecast ingest` against a trickling server (its own session, output to files under ``tmp``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "ingest.yaml"
    config.write_text(textwrap.dedent(f"""
        source: open_meteo
        dataset: weather_fault
        freq: h
        start: 2024-01-01
        end: 2024-01-03
        target: temperature_2m
        variables: [temperature_2m]
        locations:
          - {{name: berlin, latitude: 52.52, longitude: 13.41}}
        base_url: {server_url}/trickle
        http: {{timeout_seconds: 5, attempts: 2}}
        """))
    env = {**_env(tmp, None), "FORECASTING_HOME": str(tmp / "home"), "PREFECT_HOME": str(tmp / "prefect")}
    forecast = Path(sys.executable).parent / "forecast"
    with open(tmp / "stdout.txt", "w") as out, open(tmp / "stderr.txt", "w") as err:
        return subprocess.Popen([str(forecast), "ingest", "--config", str(config)], env=env, stdout=out, stderr=err,
                                cwd=tmp, start_new_session=True)


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def finish_sigterm(proc: subprocess.Popen, tmp: Path, bound: float = 20.0) -> list[str]:
    """SIGTERM the command; it must exit non-zero within ``bound`` s, without a traceback or leftover processes."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    problems = []
    try:
        proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        problems.append(f"still alive {bound:.0f} s after SIGTERM")
        proc.kill()
        proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    time.sleep(2.0)
    leftovers = _group_members(proc.pid)  # its own session: the group id is its pid
    if leftovers:
        problems.append(f"{len(leftovers)} process(es) left running after it exited (its Prefect server?)")
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    err = (tmp / "stderr.txt").read_text()
    if proc.returncode == 0:
        problems.append("exit 0 after SIGTERM")
    if "Traceback" in err:
        problems.append("a traceback: " + err.strip().splitlines()[-1][:200])
    if not problems and elapsed > bound:
        problems.append(f"took {elapsed:.0f} s to stop")
    return problems
