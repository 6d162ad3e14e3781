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
    from forecasting import registry
    from pipelines.predict import predict_flow
    from pipelines.train import train_flow

    summary = train_flow(str(weather_config), home=str(flow_env))
    assert summary["name"] == "tiny-seattle-daily"
    assert registry.resolve("tiny-seattle-daily").version == summary["version"]
    assert summary["metrics"]["val_mae"] > 0

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


def test_predict_with_missing_alias_is_a_user_error(flow_env):
    from pipelines.predict import predict_flow

    with pytest.raises(ForecastingError, match="no registered model 'never-trained'"):
        predict_flow("never-trained", home=str(flow_env))
