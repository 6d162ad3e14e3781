"""The backtest flow and `forecast backtest` on bundled real data, a real MLflow store and the session's Prefect API."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from forecasting.errors import ForecastingError
from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.slow

NAME = "tiny-weather-bt"


@pytest.fixture(scope="module")
def bt_home(tmp_path_factory, prefect_harness):
    """A home with the daily Seattle weather in its store and one registered tiny model (champion v1)."""
    from forecasting.registry import models as registry
    from forecasting.config.model import load_config
    from forecasting.data.sources.bundled import load_bundled
    from forecasting.data.store import ObservationStore
    from forecasting.predict import latest_history
    from forecasting.train import fit

    home = tmp_path_factory.mktemp("backtest-home")
    mp = pytest.MonkeyPatch()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    registry.configure(uri)
    raw = tiny_config_dict(
        name=NAME,
        data={"dataset": "seattle_weather", "freq": "D"},
        window={"lookback": 28, "horizon": 7, "stride": 7},
        model={"hidden_size": 8, "num_layers": 1},
        training={"max_epochs": 1},
        baseline={"season_length": 7, "statistical": ["ets", "theta"]},
    )
    path = home / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    frame = load_bundled("seattle_weather")
    ObservationStore(home / "store").upsert("seattle_weather", frame)
    config = load_config(path)
    trained = fit(config, frame, checkpoint_dir=home).forecaster
    registry.log_and_register(trained, history_example=latest_history(frame, 28), artifacts_dir=home / "mlartifacts")
    yield home, path
    mp.undo()


def test_flow_writes_the_report_logs_a_tagged_run_and_publishes_artifacts(bt_home, tmp_path):
    from mlflow import MlflowClient
    from prefect.artifacts import Artifact

    from pipelines.backtest import backtest_flow

    home, path = bt_home
    summary = backtest_flow(str(path), overrides={"origins": 10}, out_dir=str(tmp_path / "report"), home=str(home))
    assert (summary["name"], summary["version"]) == (NAME, "1")
    assert summary["origins"] == 10 and summary["windows"] == 10 and summary["series"] == 1
    assert [r["forecaster"] for r in summary["rows"]] == ["model", "naive", "seasonal_naive", "drift", "mean", "ets", "theta"]
    assert set(summary["beats"]) == {"naive", "seasonal_naive", "drift", "mean", "ets", "theta"}
    assert summary["beats_seasonal_naive"] == ("does not beat" not in summary["verdict"])
    for name in ("report.md", "summary.csv", "by_step.csv", "by_series.csv", "forecasts.parquet", "error_by_step.png", "forecasts.png"):
        assert (tmp_path / "report" / name).is_file(), name
    forecasts = pd.read_parquet(tmp_path / "report" / "forecasts.parquet")
    # daily data: 10 origins x 7 steps, the last target on the last day of the data
    assert len(forecasts) == 70 and forecasts["timestamp"].max() == pd.Timestamp("2015-12-31", tz="UTC")

    client = MlflowClient()
    run = client.get_run(summary["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "backtests"
    assert run.data.tags["model_name"] == NAME and run.data.tags["model_version"] == "1"
    assert run.data.tags["model_run_id"] == client.get_model_version(NAME, "1").run_id
    model_mae = next(r["mae"] for r in summary["rows"] if r["forecaster"] == "model")
    assert run.data.metrics["model_mae"] == pytest.approx(model_mae)
    ets_mae = next(r["mae"] for r in summary["rows"] if r["forecaster"] == "ets")
    assert run.data.metrics["ets_mae"] == pytest.approx(ets_mae)  # the statistical baselines are MLflow metrics too
    assert run.data.tags["beats_ets"] == str(summary["beats"]["ets"]).lower()
    assert run.data.params["origins"] == "10"
    curve = client.get_metric_history(summary["run_id"], "seasonal_naive_mae_by_step")
    assert sorted(m.step for m in curve) == list(range(1, 8))
    logged = {f.path for f in client.list_artifacts(summary["run_id"], "backtest")}
    assert {"backtest/report.md", "backtest/forecasts.png", "backtest/summary.csv"} <= logged

    markdown = Artifact.get(f"backtest-{NAME}")
    assert markdown is not None and markdown.type == "markdown"
    assert "seasonal_naive" in markdown.data and summary["verdict"].split(":")[0] in markdown.data.replace("**", "")
    table = Artifact.get(f"backtest-{NAME}-table")
    assert table is not None and table.type == "table" and "seasonal_naive" in str(table.data)


def test_flow_trains_per_fold_with_train(bt_home, tmp_path):
    from mlflow import MlflowClient

    from pipelines.backtest import backtest_flow

    home, path = bt_home
    summary = backtest_flow(str(path), train=True, overrides={"origins": 2}, out_dir=str(tmp_path), home=str(home))
    assert summary["version"] is None and summary["label"] == f"{NAME} (trained per fold)"
    assert summary["windows"] == 2
    assert "one model per fold" in " ".join(summary["notes"])
    tags = MlflowClient().get_run(summary["run_id"]).data.tags
    assert tags["model_version"] == "trained per fold"


def test_unknown_model_is_a_user_error(bt_home):
    from pipelines.backtest import backtest_flow

    home, path = bt_home
    with pytest.raises(ForecastingError, match="no registered model 'ghost'"):
        backtest_flow(str(path), model="ghost@champion", home=str(home))


def test_cli_prints_the_table_and_the_verdict(bt_home, tmp_path):
    from forecasting.cli.app import app

    home, path = bt_home
    out = tmp_path / "cli-report"
    result = CliRunner().invoke(app, ["backtest", "--config", str(path), "--model", f"{NAME}@champion",
                                      "--origins", "3", "--out", str(out), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert f"Backtest of {NAME} v1: 3 origins x 1 series" in result.output
    for name in ("seasonal_naive", "drift", "MASE", "sMAPE"):
        assert name in result.output
    assert "beats seasonal naive" in result.output or "does not beat seasonal naive" in result.output
    assert (out / "report.md").is_file()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--model", "ghost"], 1, "no registered model 'ghost'"),
        (["--refit", "always"], 1, "use --train"),
        (["--model", NAME, "--train"], 2, "not both"),
        (["--window", "sliding", "--train"], 1, "sliding window needs train_size"),
        (["--model", "a/b"], 1, "model reference 'a/b' is not"),
    ],
)
def test_cli_user_errors_exit_without_traceback(bt_home, args, code, message):
    from forecasting.cli.app import app

    home, path = bt_home
    result = CliRunner().invoke(app, ["backtest", "--config", str(path), *args, "--home", str(home)])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


# --- a registered model judged on another dataset: forecast backtest --model NAME@ALIAS --dataset D ---------------


@pytest.fixture(scope="module")
def other_datasets(bt_home):
    """Two more datasets in the same store: another daily one (a new station and a 20-day-old one) and an hourly one."""
    from forecasting.data.sources.bundled import load_bundled
    from forecasting.data.store import ObservationStore
    from tests.conftest import synthetic_frame

    home, _ = bt_home
    seattle = load_bundled("seattle_weather")
    recent = seattle[seattle["timestamp"] >= pd.Timestamp("2014-01-01", tz="UTC")]
    elsewhere = recent[["timestamp", "target"]].assign(series_id="weather/elsewhere", target=recent["target"] * 1.2 + 5.0)
    short = elsewhere.tail(20).assign(series_id="weather/new-station")
    store = ObservationStore(home / "store")
    store.upsert("city_daily", pd.concat([elsewhere, short], ignore_index=True)[["series_id", "timestamp", "target"]])
    store.upsert("hourly_temps", synthetic_frame(n_series=2, length=200, freq="h"))
    return home


def test_cli_judges_a_registered_model_on_another_daily_dataset_and_lists_the_short_series(other_datasets, tmp_path):
    from forecasting.cli.app import app

    home = other_datasets
    result = CliRunner().invoke(app, ["backtest", "--model", f"{NAME}@champion", "--dataset", "city_daily",
                                      "--origins", "5", "--out", str(tmp_path / "r"), "--home", str(home)], terminal_width=400)
    assert result.exit_code == 0, result.output
    # Only the new station with enough history is scored; the 20-day one is listed, with the count, in one line.
    assert f"Backtest of {NAME} v1: 5 origins x 1 series" in result.output
    assert "model trained on dataset 'seattle_weather' judged on dataset 'city_daily'" in result.output
    assert "1 of 2 series have no origin and are left out" in result.output
    assert "weather/new-station (20 points)" in result.output
    forecasts = pd.read_parquet(tmp_path / "r" / "forecasts.parquet")
    assert set(forecasts["series_id"]) == {"weather/elsewhere"}
    assert forecasts["timestamp"].max() == pd.Timestamp("2015-12-31", tz="UTC")


def test_model_name_alone_means_the_champion(other_datasets, tmp_path):
    from pipelines.backtest import backtest_flow

    summary = backtest_flow(model=NAME, dataset="city_daily", overrides={"origins": 2}, out_dir=str(tmp_path), home=str(other_datasets))
    assert (summary["version"], summary["dataset"], summary["series"], summary["origins"]) == ("1", "city_daily", 1, 2)
    from mlflow import MlflowClient

    assert MlflowClient().get_run(summary["run_id"]).data.tags["dataset"] == "city_daily"
    assert "judged on dataset 'city_daily'" in " ".join(summary["notes"])


def test_a_dataset_of_another_frequency_is_refused_before_any_row_is_read(other_datasets, monkeypatch):
    """The refusal comes from the store's file footers: reading the data would fail this test."""
    from forecasting.cli.app import app
    from forecasting.data.store import ObservationStore
    from forecasting.errors import ConfigError
    from pipelines.backtest import backtest_flow

    def no_reading(self, dataset, *args, **kwargs):
        raise AssertionError(f"dataset '{dataset}' was read before the mismatch was refused")

    monkeypatch.setattr(ObservationStore, "read", no_reading)
    home = other_datasets
    result = CliRunner().invoke(app, ["backtest", "--model", NAME, "--dataset", "hourly_temps", "--home", str(home)], terminal_width=400)
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert "cannot be judged on dataset 'hourly_temps'" in output, output
    assert "forecasts on the 'D' grid" in output and "22.22 rows per 'D' grid point" in output, output
    assert "was read" not in result.output and "Traceback" not in result.output
    # The flow (what a scheduled or API call runs) checks before reading too.
    with pytest.raises(ConfigError, match=r"one row every 0 days 01:00:00"):
        backtest_flow(model=NAME, dataset="hourly_temps", home=str(home))
