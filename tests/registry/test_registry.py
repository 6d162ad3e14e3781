"""Registry round trip on a real SQLite MLflow store."""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from forecasting.registry import models as registry
from forecasting.errors import ForecastingError
from forecasting.evaluation.plots import plot_forecasts
from forecasting.predict import forecast, latest_history


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the read-only tests of this module (log_model costs seconds)."""
    path = tmp_path_factory.mktemp("registry")
    mp = pytest.MonkeyPatch()
    previous = os.environ["MLFLOW_TRACKING_URI"]
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    registry.configure(os.environ["MLFLOW_TRACKING_URI"])
    yield path
    mp.undo()
    registry.configure(previous)


@pytest.fixture(scope="module")
def registered(tiny_fit, store):
    return _register(tiny_fit, store)


def _register(tiny_fit, mlflow_store):
    config, frame, result = tiny_fit
    plot = plot_forecasts(result.validation, result.series_ids, mlflow_store / "val.png", title="tiny")
    history = latest_history(frame, config.window.lookback)
    ref = registry.log_and_register(
        result.forecaster, history_example=history, plots={"validation": plot}, artifacts_dir=mlflow_store / "artifacts"
    )
    return ref, history, result


def test_run_has_params_metrics_plot_and_artifacts(registered, store):
    from mlflow import MlflowClient

    ref, _, result = registered
    client = MlflowClient()
    run = client.get_run(ref.run_id)
    assert run.data.params["window.lookback"] == "48"
    assert run.data.params["training.learning_rate"] == "0.01"
    for key in ("val_mae", "val_rmse", "val_baseline_mae", "val_baseline_rmse"):
        assert run.data.metrics[key] == pytest.approx(result.forecaster.metrics[key])
    losses = client.get_metric_history(ref.run_id, "train_loss")
    assert [m.step for m in losses] == list(range(len(result.forecaster.history)))
    artifacts = {a.path for a in client.list_artifacts(ref.run_id)} | {
        a.path for a in client.list_artifacts(ref.run_id, "plots")
    }
    assert {"config.yaml", "scaler.json", "plots/val.png"} <= artifacts
    # Artifacts live under the store's folder, not in ./mlruns of whatever cwd.
    assert str(store) in run.info.artifact_uri


def test_champion_alias_and_version_description(registered):
    from mlflow import MlflowClient

    ref, _, _ = registered
    assert registry.resolve(ref.name) == ref
    mv = MlflowClient().get_model_version(ref.name, ref.version)
    assert "Validation MAE" in mv.description
    assert mv.tags["dataset"] == "synthetic"


def test_weights_are_a_state_dict_not_a_pickled_module(registered, store):
    import mlflow
    import torch

    ref, _, _ = registered
    local = mlflow.artifacts.download_artifacts(f"models:/{ref.name}@champion", dst_path=str(store / "dl"))
    weights = next(p for p in __import__("pathlib").Path(local).rglob("weights.pt"))
    state = torch.load(weights, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    requirements = next(__import__("pathlib").Path(local).rglob("requirements.txt")).read_text()
    assert "torch==2.13.0" in requirements


def test_loaded_model_matches_in_process_forecast_and_carries_lineage(registered):
    ref, history, result = registered
    loaded = registry.load(ref.name)
    out = loaded.predict(history)
    expected = forecast(result.forecaster, history)
    pd.testing.assert_series_equal(out["mean"], expected["mean"], rtol=1e-6)
    assert set(out["model_version"]) == {ref.version}
    assert set(out["run_id"]) == {ref.run_id}
    assert set(out["model_name"]) == {ref.name}
    assert loaded.predict(history, horizon=4)["step"].max() == 4


def test_pyfunc_loads_in_a_fresh_process(registered, tmp_path):
    ref, history, result = registered
    history_path = tmp_path / "history.parquet"
    history.to_parquet(history_path)
    script = textwrap.dedent(
        f"""
        import json, mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("models:/{ref.name}@champion")
        out = model.predict(pd.read_parquet({str(history_path)!r}))
        print(json.dumps({{"columns": list(out.columns), "rows": len(out), "mean": out["mean"].tolist()}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["columns"][:5] == ["series_id", "origin", "timestamp", "step", "mean"]
    assert {"model_name", "model_version", "run_id"} <= set(got["columns"])
    expected = forecast(result.forecaster, history)["mean"].tolist()
    assert got["rows"] == len(expected)
    assert got["mean"] == pytest.approx(expected, rel=1e-6)


def test_unknown_model_or_alias_is_a_clear_error(registered):
    ref, _, _ = registered
    with pytest.raises(ForecastingError, match=r"has no alias 'production'; its aliases: \['champion'\]"):
        registry.resolve(ref.name, "production")
    with pytest.raises(ForecastingError, match=r"no registered model 'nope'"):
        registry.load("nope")


def test_second_training_becomes_version_two(tiny_fit, mlflow_store):
    ref, history, result = _register(tiny_fit, mlflow_store)
    second = registry.log_and_register(result.forecaster, history_example=history, artifacts_dir=mlflow_store / "artifacts")
    assert int(second.version) == int(ref.version) + 1
    assert registry.resolve(ref.name).version == second.version
