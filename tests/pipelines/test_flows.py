"""The three flows under a real Prefect test harness, on bundled real data and a real MLflow store."""

import pandas as pd
import pytest
import yaml

from forecasting.errors import ForecastingError
from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory, prefect_harness):
    return tmp_path_factory.mktemp("flows-home")


@pytest.fixture(scope="module")
def weather_config(home):
    raw = tiny_config_dict(
        name="tiny-seattle-daily",
        data={"dataset": "seattle_weather", "freq": "D", "covariates": ["temp_min", "precipitation"]},
        window={"lookback": 28, "horizon": 7, "stride": 3},
        baseline={"season_length": 7},
        training={"max_epochs": 2},
        # These tests are about the flows' plumbing; this 2-epoch model beats weekly seasonal naive by only ~0.4%,
        # too close to gate on. The gate in a flow: test_a_name_whose_only_version_fails_the_gate_...
        promotion={"must_beat": []},
    )
    path = home / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def flow_env(home, monkeypatch_module):
    monkeypatch_module.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    yield home


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_ingest_is_idempotent(flow_env):
    from pipelines.ingest import ingest_flow

    first = ingest_flow(datasets=["seattle_weather", "stocks"], home=str(flow_env))
    assert {r["dataset"]: r["series"] for r in first} == {"seattle_weather": 1, "stocks": 5}
    assert all(r["added"] == r["rows"] for r in first)
    second = ingest_flow(datasets=["seattle_weather", "stocks"], home=str(flow_env))
    assert all(r["added"] == 0 and r["updated"] == 0 for r in second)


def test_train_then_predict(flow_env, weather_config):
    from forecasting.registry import models as registry
    from pipelines.predict import predict_flow
    from pipelines.train import train_flow

    summary = train_flow(str(weather_config), home=str(flow_env))
    assert summary["name"] == "tiny-seattle-daily"
    assert registry.resolve("tiny-seattle-daily").version == summary["version"]
    assert summary["metrics"]["val_mae"] > 0
    assert summary["promoted"] and "first model of this name" in summary["reason"]
    # Issue 20: one run, opened before training (its duration covers it), each epoch logged to it, then FINISHED.
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("tiny-seattle-daily")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [summary["run_id"]]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [0, 1]
    lineage = registry.load_trained("tiny-seattle-daily", summary["version"]).meta
    assert (run.info.end_time - run.info.start_time) / 1000 >= lineage["train_seconds"]
    assert run.data.params["training.max_epochs"] == "2"

    out = predict_flow("tiny-seattle-daily", home=str(flow_env))
    frame = pd.read_parquet(out["path"])
    assert len(frame) == 1 * 7
    assert frame["origin"].max() == pd.Timestamp("2015-12-31", tz="UTC")
    assert set(frame["model_version"]) == {summary["version"]}
    again = predict_flow("tiny-seattle-daily", home=str(flow_env))
    assert again["path"] == out["path"]
    assert len(list((flow_env / "forecasts" / "tiny-seattle-daily").iterdir())) == 1


def test_bad_config_fails_the_flow_and_registers_nothing(flow_env):
    from mlflow import MlflowClient

    from pipelines.train import train_flow

    raw = tiny_config_dict(name="bad-columns", data={"dataset": "seattle_weather", "freq": "D", "covariates": ["humidity"]},
                           window={"lookback": 28, "horizon": 7}, baseline={"season_length": 7})
    path = flow_env / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ForecastingError, match=r"\['humidity'\] not found"):
        train_flow(str(path), home=str(flow_env))
    assert not MlflowClient().search_registered_models(filter_string="name = 'bad-columns'")
    experiment = MlflowClient().get_experiment_by_name("bad-columns")
    if experiment is not None:  # a run opened for the training ends FAILED, never left RUNNING
        statuses = {r.info.status for r in MlflowClient().search_runs([experiment.experiment_id])}
        assert statuses <= {"FAILED"}, statuses


def test_predict_with_missing_alias_is_a_user_error(flow_env):
    from pipelines.predict import predict_flow

    with pytest.raises(ForecastingError, match="no registered model 'never-trained'"):
        predict_flow("never-trained", home=str(flow_env))


def test_a_name_whose_only_version_fails_the_gate_has_no_champion_and_predict_says_so(flow_env):
    """Synthetic series repeat every 24 steps: seasonal naive is nearly exact, a 1-epoch LSTM cannot beat it."""
    from typer.testing import CliRunner

    from forecasting.cli.app import app
    from forecasting.data.store import ObservationStore
    from forecasting.registry import models as registry
    from forecasting.registry.promotion import NoChampionError
    from pipelines.predict import predict_flow
    from pipelines.train import train_flow
    from tests.conftest import synthetic_frame

    ObservationStore(flow_env / "store").upsert("synthetic", synthetic_frame())
    raw = tiny_config_dict(name="tiny-gated", training={"max_epochs": 1}, baseline={"season_length": 24, "statistical": []})
    path = flow_env / "gated.yaml"
    path.write_text(yaml.safe_dump(raw))
    summary = train_flow(str(path), home=str(flow_env))
    assert not summary["promoted"] and summary["reason"].startswith("lost to seasonal naive (mae ")
    assert registry.champion_or_none("tiny-gated") is None
    assert registry.version_tags("tiny-gated", summary["version"])["promotion.decision"] == "rejected"

    expected = (f"model 'tiny-gated' has no champion: no version passed the promotion gate "
                f"(latest v{summary['version']}: {summary['reason']}); "
                "promote one with `forecast promote --model tiny-gated --version VERSION --why ...`")
    with pytest.raises(NoChampionError) as caught:
        predict_flow("tiny-gated", home=str(flow_env))
    assert str(caught.value) == expected

    result = CliRunner().invoke(app, ["predict", "--model", "tiny-gated", "--home", str(flow_env)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if "tiny-gated" in line] == [f"error: {expected}"], result.output

    # A human may override the gate; then predict serves that version.
    promoted = CliRunner().invoke(app, ["promote", "tiny-gated", summary["version"], "--why", "better than nothing",
                                        "--home", str(flow_env)])
    assert promoted.exit_code == 0, promoted.output
    assert predict_flow("tiny-gated", home=str(flow_env))["version"] == summary["version"]


def _runs_named(*names: str) -> dict[str, str]:
    """Flow runs with these names on the session's Prefect API: name -> final state type."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=list(names))))
    return {r.name: r.state.type.value for r in runs}


def test_flow_runs_say_what_they_did_and_publish_a_summary(flow_env, weather_config):
    """Run names carry the data and origin (read from the store, so renamed mid-run); each flow leaves an artifact."""
    from prefect.artifacts import Artifact

    from pipelines.quickstart import quickstart_flow

    result = quickstart_flow([str(weather_config)], home=str(flow_env))
    (predicted,) = result["predicted"]
    assert predicted["run_name"] == "predict-tiny-seattle-daily@2015-12-31T00:00"
    expected = ["quickstart-tiny", "ingest-bundled-seattle_temps+seattle_weather+stocks", "train-tiny-seattle-daily@2015-12-31T00:00",
                "predict-tiny-seattle-daily@2015-12-31T00:00"]
    assert set(_runs_named(*expected).values()) == {"COMPLETED"} and set(_runs_named(*expected)) == set(expected)

    for key in ("ingest-summary", "train-tiny-seattle-daily", "predict-tiny-seattle-daily"):
        assert Artifact.get(key) is not None, key
    assert "predict-tiny-seattle-daily@2015-12-31T00:00" in Artifact.get("predict-tiny-seattle-daily").data
    table = Artifact.get("quickstart")
    assert table.type == "table" and "tiny-seattle-daily" in table.data and predicted["path"] in table.data


def test_retries_sit_on_io_tasks_only():
    from pipelines import backtest, ingest, predict, train

    io = [predict.load_model, predict.read_history, predict.write, predict.append_to_log, train.read_dataset,
          train.register_model, train.open_training_run, backtest.load_model, backtest.read_dataset, backtest.log_run, ingest.store]
    compute = [predict.predict_chunk, train.train_model, train.decide_promotion, backtest.run_backtest, backtest.report,
               ingest.fetch]  # fetch: the sources retry HTTP themselves
    assert all(t.retries == 3 and t.retry_delay_seconds for t in io), [t.name for t in io if not t.retries]
    assert all(t.retries == 0 for t in compute), [t.name for t in compute if t.retries]


def test_io_retries_pass_transient_errors_and_stop_at_user_errors(prefect_harness):
    from prefect import flow, task

    from pipelines._common import io_task_options

    calls = {"flaky": 0, "user": 0}

    @task(**{**io_task_options(), "retry_delay_seconds": 0})
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise OSError("network disk went away")
        return "read"

    @task(**{**io_task_options(), "retry_delay_seconds": 0})
    def user_error() -> None:
        calls["user"] += 1
        raise ForecastingError("no registered model 'x'")

    @flow
    def both() -> str:
        out = flaky()
        with pytest.raises(ForecastingError):
            user_error()
        return out

    assert both() == "read"
    assert calls == {"flaky": 3, "user": 1}


def test_an_ensemble_trains_member_by_member_as_tasks_and_registers_one_version(flow_env):
    from prefect.client.orchestration import get_client

    from forecasting.registry import models as registry
    from pipelines.predict import predict_flow
    from pipelines.train import train_flow

    raw = tiny_config_dict(
        name="tiny-daily-ensemble",
        data={"dataset": "seattle_weather", "freq": "D"},
        window={"lookback": 28, "horizon": 7, "stride": 3},
        model={"hidden_size": 8, "num_layers": 1, "ensemble": {"members": 2, "lookbacks": [14, 28]}},
        baseline={"season_length": 7},
        training={"max_epochs": 1},
        promotion={"must_beat": []},
    )
    path = flow_env / "ensemble.yaml"
    path.write_text(yaml.safe_dump(raw))
    summary = train_flow(str(path), home=str(flow_env))
    assert summary["version"] == "1" and {"member_0_val_mae", "member_1_val_mae"} <= set(summary["metrics"])
    trained = registry.load_trained("tiny-daily-ensemble", "1")
    assert [m.config.window.lookback for m in trained.members] == [14, 28]

    async def member_runs():
        async with get_client() as client:
            runs = await client.read_task_runs()
            return sorted(r.name for r in runs if r.name.startswith("member "))

    import asyncio

    names = asyncio.run(member_runs())
    assert "member 0: lookback 14, seed 42" in names and "member 1: lookback 28, seed 43" in names
    out = predict_flow("tiny-daily-ensemble", home=str(flow_env))
    assert len(pd.read_parquet(out["path"])) == 7
