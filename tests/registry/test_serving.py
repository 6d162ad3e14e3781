"""The serving contract: `mlflow models predict` on the CLI, and a load that needs only serving packages."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from forecasting.registry import models as registry
from forecasting.predict import forecast, latest_history

pytestmark = pytest.mark.slow
MLFLOW = Path(sys.executable).parent / "mlflow"


@pytest.fixture(scope="module")
def served(tiny_fit, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    mp = pytest.MonkeyPatch()
    previous = os.environ["MLFLOW_TRACKING_URI"]
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    registry.configure(os.environ["MLFLOW_TRACKING_URI"])
    config, frame, result = tiny_fit
    history = latest_history(frame, config.window.lookback)
    ref = registry.log_and_register(result.forecaster, history_example=history, artifacts_dir=root / "artifacts")
    yield root, ref, history, forecast(result.forecaster, history)
    mp.undo()
    registry.configure(previous)


def test_mlflow_models_predict_cli_round_trip(served):
    root, ref, history, expected = served
    request = root / "input.json"
    payload = history.assign(timestamp=history["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    request.write_text(json.dumps({"dataframe_split": json.loads(payload.to_json(orient="split", index=False))}))
    out = root / "out.json"
    proc = subprocess.run(
        [str(MLFLOW), "models", "predict", "-m", f"models:/{ref.name}@champion", "--env-manager", "local",
         "-i", str(request), "-t", "json", "-o", str(out)],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    predictions = pd.DataFrame(json.loads(out.read_text())["predictions"])
    assert len(predictions) == len(expected)
    assert predictions["mean"].tolist() == pytest.approx(expected["mean"].tolist(), rel=1e-6)
    assert set(predictions["series_id"]) == set(expected["series_id"])


def test_model_loads_without_the_project_installed(served):
    """The model carries its own code: with the project's package hidden, loading still works,
    and neither Lightning nor Prefect is imported to serve."""
    root, ref, history, expected = served
    history_path = root / "history.parquet"
    history.to_parquet(history_path)
    project = str(Path(__file__).resolve().parents[2])
    script = textwrap.dedent(
        f"""
        import sys, json
        # Hide the project: drop its source folder and the editable-install finder.
        sys.path[:] = [p for p in sys.path if p.rstrip("/") != {project!r} and p not in ("", ".")]
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                            and "editable" not in repr(f).lower()]
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("models:/{ref.name}@champion")
        out = model.predict(pd.read_parquet({str(history_path)!r}))
        import forecasting
        print(json.dumps({{"mean": out["mean"].tolist(), "package": forecasting.__file__,
                          "lightning": "pytorch_lightning" in sys.modules, "prefect": "prefect" in sys.modules}}))
        """
    )
    proc = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": ""}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not got["package"].startswith(project), got["package"]  # the model's own copy of the code
    assert not got["lightning"] and not got["prefect"]
    assert got["mean"] == pytest.approx(expected["mean"].tolist(), rel=1e-6)


def test_quantile_param_selects_trained_levels(tiny_fit, mlflow_store):
    """A quantile model serves a subset of its levels by param; an untrained level is a clear error."""
    from forecasting.config.model import parse_config
    from forecasting.errors import ForecastingError
    from forecasting.train import fit
    from tests.conftest import synthetic_frame, tiny_config_dict

    config = parse_config(tiny_config_dict(name="tiny-quantiles", model={"quantiles": [0.1, 0.5, 0.9]},
                                           training={"max_epochs": 1}))
    frame = synthetic_frame()
    result = fit(config, frame)
    history = latest_history(frame, config.window.lookback)
    ref = registry.log_and_register(result.forecaster, history_example=history, artifacts_dir=mlflow_store / "a")
    loaded = registry.load(ref.name)
    full = loaded.pyfunc.predict(history)
    assert {"q0.1", "q0.5", "q0.9"} <= set(full.columns)
    assert (full["q0.1"] <= full["q0.9"]).all()
    some = loaded.pyfunc.predict(history, params={"quantiles": [0.9]})
    assert "q0.9" in some.columns and "q0.1" not in some.columns
    with pytest.raises(ForecastingError, match=r"no quantile\(s\) \['0.95'\]"):
        loaded.pyfunc.predict(history, params={"quantiles": [0.95]})
