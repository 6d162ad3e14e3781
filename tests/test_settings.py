"""Settings from the environment: fan-out runner, promotion lock database, training hardware; bad values named at once."""

from __future__ import annotations

import pytest

from forecasting.errors import ConfigError
from forecasting.settings import Settings

ENV = ("FORECASTING_TASK_RUNNER", "FORECASTING_TASK_WORKERS", "FORECASTING_DASK_ADDRESS", "FORECASTING_SERIES_PER_TASK",
       "FORECASTING_LOCK_DATABASE_URL", "FORECASTING_ACCELERATOR", "FORECASTING_DEVICES", "FORECASTING_STRATEGY",
       "FORECASTING_PRECISION")


@pytest.fixture
def env(monkeypatch, tmp_path):
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return monkeypatch


def test_defaults_need_no_server(env, tmp_path):
    s = Settings.from_env(tmp_path)
    assert (s.task_runner, s.task_workers, s.dask_address, s.series_per_task) == ("sequential", 2, None, 1000)
    assert s.lock_database_url is None and s.hardware == ()


def test_a_dask_address_alone_selects_dask(env, tmp_path):
    env.setenv("FORECASTING_DASK_ADDRESS", "tcp://scheduler:8786")
    s = Settings.from_env(tmp_path)
    assert (s.task_runner, s.dask_address) == ("dask", "tcp://scheduler:8786")


def test_bad_fan_out_settings_are_all_named(env, tmp_path):
    env.setenv("FORECASTING_TASK_RUNNER", "ray")
    env.setenv("FORECASTING_TASK_WORKERS", "0")
    env.setenv("FORECASTING_SERIES_PER_TASK", "many")
    with pytest.raises(ConfigError) as err:
        Settings.from_env(tmp_path)
    text = str(err.value)
    assert "FORECASTING_TASK_RUNNER='ray'" in text and "FORECASTING_TASK_WORKERS='0'" in text
    assert "FORECASTING_SERIES_PER_TASK='many'" in text
    env.setenv("FORECASTING_TASK_RUNNER", "thread")
    env.delenv("FORECASTING_TASK_WORKERS")
    env.delenv("FORECASTING_SERIES_PER_TASK")
    env.setenv("FORECASTING_DASK_ADDRESS", "tcp://x:8786")
    with pytest.raises(ConfigError, match="FORECASTING_DASK_ADDRESS is set but FORECASTING_TASK_RUNNER='thread'"):
        Settings.from_env(tmp_path)


def test_lock_database_is_the_postgres_registry_or_named(env, tmp_path):
    env.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg2://u:p@db:5432/mlflow")
    assert Settings.from_env(tmp_path).lock_database_url == "postgresql://u:p@db:5432/mlflow"
    env.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert Settings.from_env(tmp_path).lock_database_url is None
    env.setenv("FORECASTING_LOCK_DATABASE_URL", "postgresql://u:p@postgres:5432/mlflow")
    assert Settings.from_env(tmp_path).lock_database_url == "postgresql://u:p@postgres:5432/mlflow"
    env.setenv("FORECASTING_LOCK_DATABASE_URL", "redis://cache:6379")
    with pytest.raises(ConfigError, match="must be a postgresql:// URL"):
        Settings.from_env(tmp_path)


def test_training_hardware_comes_from_the_machine(env, tmp_path):
    from forecasting.config.model import parse_config
    from forecasting.settings import with_hardware
    from tests.conftest import tiny_config_dict

    config = parse_config(tiny_config_dict(training={"accelerator": "cpu"}))
    assert with_hardware(config, Settings.from_env(tmp_path)) is config
    env.setenv("FORECASTING_ACCELERATOR", "gpu")
    env.setenv("FORECASTING_DEVICES", "4")
    env.setenv("FORECASTING_STRATEGY", "ddp_spawn")
    env.setenv("FORECASTING_PRECISION", "32-true")  # e.g. a worker that must reproduce float32 results
    moved = with_hardware(config, Settings.from_env(tmp_path))
    t = moved.training
    assert (t.accelerator, t.devices, t.strategy, t.precision) == ("gpu", 4, "ddp_spawn", "32-true")
    assert t.max_epochs == config.training.max_epochs and moved.name == config.name
    assert moved.flat()["training.strategy"] == "ddp_spawn"  # what the MLflow run logs as a param


def test_task_runners_follow_the_settings(env, tmp_path):
    import dataclasses

    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from pipelines._common import fanout_task_runner

    base = Settings.from_env(tmp_path)
    sequential = fanout_task_runner(base)
    assert isinstance(sequential, ThreadPoolTaskRunner) and sequential._max_workers == 1
    assert fanout_task_runner(dataclasses.replace(base, task_runner="thread", task_workers=3))._max_workers == 3
    local = fanout_task_runner(dataclasses.replace(base, task_runner="dask", task_workers=2))
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs == {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    remote = fanout_task_runner(dataclasses.replace(base, task_runner="dask", dask_address="tcp://scheduler:8786"))
    assert remote.address == "tcp://scheduler:8786"


def test_prefect_logs_at_info_with_the_library_loggers_and_user_values_win(env, tmp_path):
    """The Prefect UI shows what a run did (INFO, the library's loggers included); the terminal is the CLI's to filter."""
    import os

    from forecasting.settings import apply_environment, prefect_environment

    s = Settings.from_env(tmp_path)
    values = prefect_environment(s)
    assert values["PREFECT_LOGGING_LEVEL"] == "INFO"
    assert values["PREFECT_LOGGING_EXTRA_LOGGERS"] == "forecasting"
    assert values["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] == "ignore"
    assert values["PREFECT_HOME"] == str(tmp_path / "prefect")
    saved = dict(os.environ)
    try:
        for key in values:
            os.environ.pop(key, None)
        os.environ["PREFECT_LOGGING_LEVEL"] = "DEBUG"  # set by the user: kept
        apply_environment(s)
        assert os.environ["PREFECT_LOGGING_LEVEL"] == "DEBUG"
        assert os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] == "forecasting"
        assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "90"
    finally:
        os.environ.clear()
        os.environ.update(saved)  # the test session keeps its own Prefect settings
