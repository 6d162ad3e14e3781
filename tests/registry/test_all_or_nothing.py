"""Registration is all or nothing (issue 19, rows 18 and 19).

A model with non-finite scores is never registered; a process killed (-9) in the middle of registering
leaves a torn version and a RUNNING run, which are never served and which the next command touching the
model repairs: the run marked FAILED, the version deleted, and the rerun registers one whole version.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from forecasting.errors import ForecastingError
from forecasting.predict import latest_history
from forecasting.registry import models as registry
from forecasting.registry.promotion import promote

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

REGISTER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from forecasting.model.forecaster import TrainedForecaster
    from forecasting.registry import models as registry

    forecaster_dir, history_path, artifacts, alias = sys.argv[1:5]
    registry.configure(__import__("os").environ["MLFLOW_TRACKING_URI"])
    trained = TrainedForecaster.load(forecaster_dir)
    ref = registry.log_and_register(trained, history_example=pd.read_parquet(history_path),
                                    artifacts_dir=__import__("pathlib").Path(artifacts), aliases=(alias,))
    print("registered", ref.version)
    """
)


def wait_for(path: Path, proc: subprocess.Popen, *, seconds: float, what: str) -> None:
    """Bounded wait for a fault point's marker file; says what it waited for when it gives up."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"{what}: the process exited {proc.returncode} first: {err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{what}: no marker {path} after {seconds:.0f} s")
        time.sleep(0.1)


def run_register(tmp: Path, forecaster_dir: Path, history: Path, alias: str, *, pause: str | None = None,
                 timeout: float = 300) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", REGISTER, str(forecaster_dir), str(history), str(tmp / "artifacts"), alias]
    if pause is None:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp)
    env |= {"FORECASTING_FAULT_PAUSE": pause, "FORECASTING_FAULT_PAUSE_FILE": str(tmp / f"{pause}.paused")}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)


@pytest.fixture
def saved(tiny_fit, mlflow_store):
    config, frame, result = tiny_fit
    forecaster_dir = result.forecaster.save(mlflow_store / "forecaster")
    history = mlflow_store / "history.parquet"
    latest_history(frame, config.window.lookback).to_parquet(history)
    return config.name, forecaster_dir, history, mlflow_store


def test_non_finite_validation_score_is_never_registered(tiny_fit, mlflow_store):
    config, frame, result = tiny_fit
    broken = dataclasses.replace(result.forecaster, metrics={**result.forecaster.metrics, "val_mae": float("nan")})
    with pytest.raises(registry.NonFiniteModelError, match=r"model 'tiny-synthetic' is not registered.*val_mae=nan"):
        registry.log_and_register(broken, history_example=latest_history(frame, 48), artifacts_dir=mlflow_store / "a")
    assert MlflowClient().search_registered_models() == []

    weights = {k: v.clone() for k, v in result.forecaster.state_dict.items()}
    next(iter(weights.values()))[0] = float("inf")
    broken = dataclasses.replace(result.forecaster, state_dict=weights)
    with pytest.raises(registry.NonFiniteModelError, match="hold NaN or infinity"):
        registry.log_and_register(broken, history_example=latest_history(frame, 48), artifacts_dir=mlflow_store / "a")
    assert MlflowClient().search_registered_models() == []


def test_training_on_values_around_1e300_is_refused_before_anything_is_written(mlflow_store):
    """Row 18, for real: such data trains to NaN scores; nothing reaches the registry, the first version of a
    name does not become champion."""
    from forecasting.config.model import parse_config
    from forecasting.train import fit
    from tests.conftest import synthetic_frame, tiny_config_dict

    frame = synthetic_frame(n_series=2, length=200)
    frame["target"] *= 1e299
    result = fit(parse_config(tiny_config_dict(name="huge", training={"max_epochs": 1})), frame)
    with pytest.raises(registry.NonFiniteModelError, match=r"model 'huge' is not registered.*val_mae=nan"):
        registry.log_and_register(result.forecaster, history_example=latest_history(frame, 48),
                                  artifacts_dir=mlflow_store / "a")
    assert MlflowClient().search_registered_models() == []
    assert registry.champion_or_none("huge") is None


def test_kill_during_registration_then_rerun_leaves_one_whole_version(saved):
    name, forecaster_dir, history, tmp = saved
    client = MlflowClient()
    proc = run_register(tmp, forecaster_dir, history, registry.CHALLENGER, pause="registration")
    wait_for(tmp / "registration.paused", proc, seconds=240, what="the registering process to reach its fault point")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    # The torn state the audit found: a version without tags, decision or alias, and a run left RUNNING.
    (torn,) = client.search_model_versions(f"name = '{name}'")
    torn = client.get_model_version(name, torn.version)  # search results carry no aliases
    assert "promotion.decision" not in torn.tags and not torn.aliases
    assert client.get_run(torn.run_id).info.status == "RUNNING"
    with pytest.raises(ForecastingError, match=f"version {torn.version} was never completed"):
        registry.require_complete(name, torn.version)  # never served
    with pytest.raises(ForecastingError, match=f"no registered model|no version {torn.version}"):
        promote(name, torn.version, why="test", lock_dir=tmp / "locks")  # a command touching the model repairs it
    assert client.get_run(torn.run_id).info.status == "FAILED"
    assert client.search_model_versions(f"name = '{name}'") == []

    # Kill it again, then a plain rerun finishes the job: one whole version, nothing RUNNING, nothing orphaned.
    proc = run_register(tmp, forecaster_dir, history, registry.CHALLENGER, pause="registration")
    (tmp / "registration.paused").unlink(missing_ok=True)
    wait_for(tmp / "registration.paused", proc, seconds=240, what="the second registering process")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done = run_register(tmp, forecaster_dir, history, registry.CHAMPION)
    assert done.returncode == 0, done.stderr[-3000:]

    versions = client.search_model_versions(f"name = '{name}'")
    assert len(versions) == 1, [(v.version, v.tags) for v in versions]
    whole = client.get_model_version(name, versions[0].version)
    assert whole.tags["promotion.decision"] == "registered as champion" and whole.aliases == ["champion"]
    assert whole.tags["dataset"] == "synthetic"
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED", "FINISHED"]
    assert len(registry.load(name).predict(__import__("pandas").read_parquet(history))) > 0


def test_live_registration_is_not_repaired_by_others(saved):
    """A run whose process is alive is left alone, however long it takes."""
    name, forecaster_dir, history, tmp = saved
    client = MlflowClient()
    proc = run_register(tmp, forecaster_dir, history, registry.CHALLENGER, pause="registration")
    try:
        wait_for(tmp / "registration.paused", proc, seconds=240, what="the registering process")
        assert registry.recover(name) == []
        (pending,) = client.search_model_versions(f"name = '{name}'")
        assert client.get_run(pending.run_id).info.status == "RUNNING"
        assert registry.recover(name, stale_after=0.0) == []  # same machine: liveness, not age, decides
    finally:
        proc.kill()
        proc.wait(timeout=30)
    notes = registry.recover(name)
    assert len(notes) == 2 and "marked FAILED" in notes[0] and "deleted" in notes[1]
