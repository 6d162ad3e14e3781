"""Replay on bundled daily data: predict --as-of several dates, then monitor; real Prefect, MLflow, Parquet."""

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.slow
NAME = "tiny-seattle-monitor"
AS_OF = ["2015-12-08", "2015-12-15", "2015-12-22", "2015-12-28"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, prefect_harness):
    home = tmp_path_factory.mktemp("monitor-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def trained(home):
    from pipelines.ingest import ingest_flow
    from pipelines.train import train_flow

    raw = tiny_config_dict(
        name=NAME,
        data={"dataset": "seattle_weather", "freq": "D", "covariates": ["temp_min", "precipitation"]},
        window={"lookback": 28, "horizon": 7, "stride": 3},
        baseline={"season_length": 7},
        training={"max_epochs": 1},
        promotion={"metric": "mase", "origins": 5},
    )
    path = home / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    ingest_flow(datasets=["seattle_weather"], home=str(home))
    return train_flow(str(path), home=str(home))


@pytest.fixture(scope="module")
def replayed(home, trained):
    from forecasting.cli.app import app

    for day in AS_OF:
        result = CliRunner().invoke(app, ["predict", "--model", NAME, "--as-of", day, "--home", str(home)])
        assert result.exit_code == 0, result.output
    return home


def test_predict_as_of_sees_only_data_through_that_date(replayed, trained):
    from forecasting.ops import forecast_log
    from forecasting.registry import models as registry
    from forecasting.data.store import ObservationStore
    from forecasting.predict import latest_history

    log = forecast_log.read(replayed / "forecast_log", NAME)
    assert sorted(log["origin"].dt.strftime("%Y-%m-%d").unique()) == AS_OF
    assert len(log) == len(AS_OF) * 7 and set(log["model_version"]) == {trained["version"]}
    # The replayed batch equals a forecast made from the store cut at that date (no later value leaks in).
    registry.configure(f"sqlite:///{replayed / 'mlflow.db'}")
    model = registry.load(NAME)
    cut = ObservationStore(replayed / "store").read("seattle_weather", end=pd.Timestamp("2015-12-08", tz="UTC"))
    direct = model.predict(latest_history(cut, 28))
    logged = log[log["origin"] == pd.Timestamp("2015-12-08", tz="UTC")].reset_index(drop=True)
    assert logged["mean"].to_numpy() == pytest.approx(direct["mean"].to_numpy())


def test_monitor_prints_realised_vs_promised_and_skips_unarrived(replayed, trained):
    from forecasting.cli.app import app
    from forecasting.registry.models import version_tags

    # Default drift thresholds: a normal December is compared with earlier Decembers, not the whole year.
    result = CliRunner().invoke(app, ["monitor", "--model", NAME, "--window-days", "7,30", "--mase-factor", "100",
                                      "--home", str(replayed)])
    assert result.exit_code == 0, result.output
    assert "Realised vs promised error" in result.output
    # 4 origins x 7 steps; the 2015-12-28 batch has only 3 actuals (Dec 29-31) before the data ends.
    assert "24 of 28 forecasts scored" in result.output
    assert f"v{trained['version']}" in result.output and "30d" in result.output and "7d" in result.output
    tags = version_tags(NAME, trained["version"])
    assert float(tags["promotion.challenger_score"]) > 0
    assert tags["monitor.alert"] == "none"
    scores = pd.read_parquet(replayed / "monitoring" / NAME / "scores.parquet")
    assert scores["timestamp"].max() == pd.Timestamp("2015-12-31", tz="UTC")


def test_rerun_is_idempotent_and_a_broken_promise_fails_the_flow(replayed, trained):
    from forecasting.registry.models import version_tags
    from pipelines.monitor import MonitorAlert, monitor_flow

    first = monitor_flow(NAME, home=str(replayed), mase_factor=100.0)
    before = pd.read_parquet(replayed / "monitoring" / NAME / "scores.parquet")
    second = monitor_flow(NAME, home=str(replayed), mase_factor=100.0)
    after = pd.read_parquet(replayed / "monitoring" / NAME / "scores.parquet")
    pd.testing.assert_frame_equal(before, after)
    assert first["versions"] == second["versions"] and first["scored"] == second["scored"] == 24
    from mlflow import MlflowClient

    client = MlflowClient()
    run = client.get_run(second["run_id"])
    version = trained["version"]
    assert run.data.metrics[f"v{version}_mase_30d"] == pytest.approx(first["versions"][1]["mase"])
    assert run.data.tags["alert"] == "false"
    assert "monitoring/realised_vs_promised.png" in [a.path for a in client.list_artifacts(second["run_id"], "monitoring")]

    with pytest.raises(MonitorAlert, match="realised MASE .* the promised"):
        monitor_flow(NAME, home=str(replayed), promised={trained["version"]: 1e-3})
    assert "realised MASE" in version_tags(NAME, trained["version"])["monitor.alert"]
    assert first["drift"][0]["reference"].startswith("same season") and first["drift"][0]["alert"] == ""


# --- Retrain on alert, against deployments on the real test Prefect API --------------------


def _train_deployment(name: str, config: str) -> str:
    """A real deployment of the train flow; nothing serves it, so its runs stay scheduled (training never runs)."""
    from pipelines.train import train_flow

    return str(train_flow.to_deployment(name=name, parameters={"config_path": config}).apply())


def _runs(deployment_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _alert_event(resource_id: str, event_id: str, timeout: float = 90.0):
    """Events reach the API asynchronously (and are stored in batches): poll until this one is there."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from pipelines.monitor import ALERT_EVENT

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_events(filter=EventFilter(event=EventNameFilter(name=[ALERT_EVENT]),
                                                         resource=EventResourceFilter(id=[resource_id])), limit=50)
            found = [e for e in page.events if str(e.id) == event_id]
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            time.sleep(0.5)


def test_alert_starts_the_retrain_deployment_once_per_alert(replayed, trained):
    from mlflow import MlflowClient
    from prefect.client.schemas.objects import StateType

    from forecasting.ops.monitor import alert_key
    from forecasting.registry.models import version_tags
    from pipelines.monitor import MonitorAlert, monitor_flow

    version = trained["version"]
    deployment_id = _train_deployment("retrain-tiny-monitor", str(replayed / "tiny.yaml"))
    kwargs = {"home": str(replayed), "promised": {version: 1e-3}, "retrain_on_alert": True,
              "retrain_deployment": "train/retrain-tiny-monitor"}
    summary = monitor_flow(NAME, fail_on_alert=False, **kwargs)
    assert summary["alert"] and summary["retrain"]["status"] == "started", summary["retrain"]
    runs = _runs(deployment_id)
    assert len(runs) == 1
    assert runs[0].state.type in (StateType.SCHEDULED, StateType.PENDING)
    assert runs[0].name == f"retrain-{NAME}-on-alert" and "monitor-alert" in runs[0].tags
    assert summary["retrain"]["flow_run_id"] == str(runs[0].id)
    # Recorded: the summary artifact line, the MLflow monitoring run, the version's alert key.
    assert summary["period_end"].startswith("2015-12-31")
    key = alert_key(NAME, version, pd.Timestamp(summary["period_end"]))
    tags = version_tags(NAME, version)
    assert tags["monitor.retrain_key"] == key and tags["monitor.retrain_flow_run"] == str(runs[0].id)
    params = MlflowClient().get_run(summary["run_id"]).data.params
    assert params["retrain"] == "started" and params["retrain_flow_run"] == str(runs[0].id)
    assert params["retrain_deployment"] == "train/retrain-tiny-monitor"
    summary_md = MlflowClient().download_artifacts(summary["run_id"], "monitoring/summary.md")
    assert "Retrain started: flow run" in open(summary_md).read()
    # The event automations react to names the model version.
    assert summary["event_id"]
    event = _alert_event(f"forecasting.model.{NAME}.v{version}", summary["event_id"])
    assert event is not None, "the alert event never reached the Prefect API"
    assert event.payload["retrain"] == "started" and event.payload["alert_key"] == key

    # A rerun over the same period is the same alert: no second retrain, and the flow still ends Failed.
    with pytest.raises(MonitorAlert, match="Retrain already started for this alert"):
        monitor_flow(NAME, **kwargs)
    assert len(_runs(deployment_id)) == 1


def test_without_retrain_configured_no_run_is_created(replayed, trained):
    from pipelines.monitor import monitor_flow

    deployment_id = _train_deployment("retrain-tiny-unconfigured", str(replayed / "tiny.yaml"))
    summary = monitor_flow(NAME, home=str(replayed), as_of="2015-12-23", promised={trained["version"]: 1e-3},
                           retrain_deployment="train/retrain-tiny-unconfigured", fail_on_alert=False)
    assert summary["alert"] and summary["retrain"]["status"] == "off"
    assert "Retrain on alert is off" in summary["retrain"]["message"]
    assert _runs(deployment_id) == []
    assert summary["flow_run_name"] == f"monitor {NAME}: rolling windows to 2015-12-23"


def test_missing_retrain_deployment_is_reported_not_raised(replayed, trained):
    from pipelines.monitor import monitor_flow

    summary = monitor_flow(NAME, home=str(replayed), as_of="2015-12-16", window_days=[7],
                           promised={trained["version"]: 1e-3}, retrain_on_alert=True,
                           retrain_deployment="train/no-such-deployment", fail_on_alert=False)
    assert summary["alert"] and summary["retrain"]["status"] == "missing-deployment"
    assert "deployment `train/no-such-deployment` does not exist" in summary["retrain"]["message"]
    assert summary["flow_run_name"] == f"monitor {NAME}: last 7 days to 2015-12-16"
