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
    from forecasting.cli import app

    for day in AS_OF:
        result = CliRunner().invoke(app, ["predict", "--model", NAME, "--as-of", day, "--home", str(home)])
        assert result.exit_code == 0, result.output
    return home


def test_predict_as_of_sees_only_data_through_that_date(replayed, trained):
    from forecasting import forecast_log, registry
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
    from forecasting.cli import app
    from forecasting.registry import version_tags

    result = CliRunner().invoke(app, ["monitor", "--model", NAME, "--window-days", "7,30", "--mase-factor", "100",
                                      "--max-level-shift", "5", "--max-scale-ratio", "5",
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
    from forecasting.registry import version_tags
    from pipelines.monitor import MonitorAlert, monitor_flow

    first = monitor_flow(NAME, home=str(replayed), mase_factor=100.0, level_shift=5.0, scale_ratio=5.0)
    before = pd.read_parquet(replayed / "monitoring" / NAME / "scores.parquet")
    second = monitor_flow(NAME, home=str(replayed), mase_factor=100.0, level_shift=5.0, scale_ratio=5.0)
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
        monitor_flow(NAME, home=str(replayed), promised={trained["version"]: 1e-3},
                     level_shift=5.0, scale_ratio=5.0)
    assert "realised MASE" in version_tags(NAME, trained["version"])["monitor.alert"]
