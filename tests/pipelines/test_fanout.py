"""Fan-out by configuration: the predict flow on a local Dask cluster writes the same forecasts as the sequential run."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from tests.conftest import synthetic_frame

pytestmark = pytest.mark.slow
N_SERIES = 5


@pytest.fixture(scope="module")
def home(tmp_path_factory, prefect_harness, tiny_fit):
    """A store of synthetic series and the session's tiny model registered as champion in this home's MLflow."""
    from forecasting.registry import models as registry
    from forecasting.data.store import ObservationStore
    from forecasting.predict import latest_history

    home = tmp_path_factory.mktemp("fanout-home")
    mp = pytest.MonkeyPatch()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    registry.configure(uri)
    config, _, result = tiny_fit
    frame = synthetic_frame(n_series=N_SERIES)  # two series more than the model saw: scaled on their own
    ObservationStore(home / "store").upsert("synthetic", frame)
    registry.log_and_register(result.forecaster, history_example=latest_history(frame, config.window.lookback),
                              artifacts_dir=home / "mlartifacts")
    yield home
    mp.undo()


def _settings(home, **changes):
    from forecasting.settings import Settings

    return dataclasses.replace(Settings.from_env(home), **changes)


def _run(home, runner_settings, monkeypatch):
    """One predict run with a task runner built from ``runner_settings``; returns the summary and the written frame."""
    from pipelines._common import fanout_task_runner
    from pipelines.predict import predict_flow

    monkeypatch.setenv("FORECASTING_SERIES_PER_TASK", str(runner_settings.series_per_task))
    monkeypatch.setenv("FORECASTING_TASK_RUNNER", runner_settings.task_runner)
    flow = predict_flow.with_options(task_runner=fanout_task_runner(runner_settings))
    summary = flow("tiny-synthetic", home=str(home))
    return summary, pd.read_parquet(summary["path"])


def test_dask_fan_out_writes_the_same_forecasts_as_the_sequential_run(home, monkeypatch):
    from prefect_dask import DaskTaskRunner

    one_per_series = {"series_per_task": 1}
    sequential, seq_frame = _run(home, _settings(home, task_runner="sequential", **one_per_series), monkeypatch)
    dask_settings = _settings(home, task_runner="dask", task_workers=2, **one_per_series)
    assert isinstance(_fanout(dask_settings), DaskTaskRunner)
    fanned, dask_frame = _run(home, dask_settings, monkeypatch)

    assert (sequential["tasks"], fanned["tasks"]) == (N_SERIES, N_SERIES)
    assert fanned["task_runner"] == "dask" and fanned["path"] == sequential["path"]
    assert len(dask_frame) == N_SERIES * 12
    assert list(dask_frame["series_id"].unique()) == sorted(dask_frame["series_id"].unique())
    pd.testing.assert_frame_equal(dask_frame, seq_frame, check_exact=True)

    # One batched pass over every series gives the same numbers up to float32 rounding.
    whole, whole_frame = _run(home, _settings(home, task_runner="sequential", series_per_task=1000), monkeypatch)
    assert whole["tasks"] == 1
    pd.testing.assert_frame_equal(whole_frame, seq_frame, check_exact=False, rtol=1e-5)


def _fanout(settings):
    from pipelines._common import fanout_task_runner

    return fanout_task_runner(settings)


def test_series_chunks_keep_whole_series_in_order():
    from forecasting.predict import latest_history
    from pipelines.predict import series_chunks

    history = latest_history(synthetic_frame(n_series=5, length=50), 10)
    chunks = series_chunks(history, 2)
    assert [sorted(c["series_id"].unique()) for c in chunks] == [
        ["synthetic/s0", "synthetic/s1"], ["synthetic/s2", "synthetic/s3"], ["synthetic/s4"]]
    pd.testing.assert_frame_equal(pd.concat(chunks), history)
    assert len(series_chunks(history, 1000)) == 1


@pytest.mark.skipif(not __import__("os").environ.get("FORECASTING_DDP_TEST"), reason="opt-in: FORECASTING_DDP_TEST=1")
def test_the_machine_environment_turns_the_train_flow_to_ddp(home, monkeypatch):
    """What a GPU worker of the stack does with TRAINING_STRATEGY=ddp_spawn, here as 2 CPU processes over gloo."""
    import yaml

    from forecasting.registry import models as registry
    from pipelines.train import train_flow
    from tests.conftest import tiny_config_dict

    monkeypatch.setenv("FORECASTING_ACCELERATOR", "cpu")
    monkeypatch.setenv("FORECASTING_DEVICES", "2")
    monkeypatch.setenv("FORECASTING_STRATEGY", "ddp_spawn")
    path = home / "ddp.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(name="tiny-ddp", training={"max_epochs": 1})))
    summary = train_flow(str(path), home=str(home))
    trained = registry.load_trained("tiny-ddp", summary["version"])
    assert trained.meta["hardware"]["world_size"] == 2
    assert trained.config.training.strategy == "ddp_spawn"


def test_dask_fold_fan_out_gives_the_same_refit_backtest(home, monkeypatch, tmp_path):
    """Per-fold trainings as tasks on a local Dask cluster: the same forecasts and scores as folds in turn."""
    import yaml

    from pipelines._common import fanout_task_runner
    from pipelines.backtest import backtest_flow
    from tests.conftest import tiny_config_dict

    # One torch thread in both runs: a different thread count may round differently.
    raw = tiny_config_dict(name="tiny-folds", training={"max_epochs": 1, "num_threads": 1})
    path = tmp_path / "folds.yaml"
    path.write_text(yaml.safe_dump(raw))
    overrides = {"origins": 4, "refit": 2}
    runs = {}
    for runner in ("sequential", "dask"):
        flow = backtest_flow.with_options(task_runner=fanout_task_runner(_settings(home, task_runner=runner)))
        summary = flow(str(path), train=True, overrides=overrides, out_dir=str(tmp_path / runner), home=str(home))
        runs[runner] = summary, pd.read_parquet(tmp_path / runner / "forecasts.parquet")
    (seq, seq_frame), (fanned, dask_frame) = runs["sequential"], runs["dask"]
    assert seq["folds"] == fanned["folds"] == 2 and len(seq_frame) == len(dask_frame) > 0
    pd.testing.assert_frame_equal(dask_frame, seq_frame, check_exact=True)
    assert fanned["rows"] == seq["rows"]
