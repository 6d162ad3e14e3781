"""Registered models load without unpickling anything, and a swapped pickle in the store never runs.

Issue 19, rows 12, 13 and 17: the model is logged as code (``pyfunc_model.py``), its weights, config and
scaler as plain files; the project's own loaders read only those files.
"""

import pickle
from pathlib import Path

import cloudpickle
import mlflow
import pytest
import yaml

from forecasting.api import Forecaster
from forecasting.predict import forecast, latest_history
from forecasting.registry import models as registry

pytestmark = pytest.mark.slow


class _Payload:
    """What an attacker would put in ``python_model.pkl``: unpickling it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.fixture
def no_pickle(monkeypatch):
    """Every pickle and cloudpickle load raises for the duration of a test."""

    def refuse(*args, **kwargs):
        raise AssertionError("pickle.load called while loading a registered model")

    for module in (pickle, cloudpickle):
        monkeypatch.setattr(module, "load", refuse)
        monkeypatch.setattr(module, "loads", refuse)


@pytest.fixture
def registered(tiny_fit, mlflow_store):
    config, frame, result = tiny_fit
    history = latest_history(frame, config.window.lookback)
    ref = registry.log_and_register(result.forecaster, history_example=history, artifacts_dir=mlflow_store / "artifacts")
    return ref, history, forecast(result.forecaster, history), mlflow_store


def _model_dirs(store: Path) -> list[Path]:
    return [p.parent for p in (store / "artifacts").rglob("MLmodel")]


def test_version_holds_code_and_plain_files_no_pickle(registered):
    ref, _, _, store = registered
    (model_dir,) = _model_dirs(store)
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["model_code_path"].endswith("pyfunc_model.py")
    assert (model_dir / "pyfunc_model.py").is_file()
    assert not list(model_dir.rglob("*.pkl")), sorted(p.name for p in model_dir.rglob("*.pkl"))
    assert {p.name for p in (model_dir / "artifacts" / "forecaster").iterdir()} >= {"weights.pt", "config.yaml", "scaler.json"}


def test_pyfunc_load_and_predict_with_pickle_patched_to_raise(registered, no_pickle):
    """The README's promise, `mlflow.pyfunc.load_model("models:/NAME@champion").predict(history)`, and the
    project's loaders (predict flow, Python API) all work with every pickle loader raising."""
    ref, history, expected, _ = registered
    served = mlflow.pyfunc.load_model(f"models:/{ref.name}@champion").predict(history)
    assert served["mean"].tolist() == pytest.approx(expected["mean"].tolist(), rel=1e-6)

    loaded = registry.load(ref.name)
    out = loaded.predict(history)
    assert out["mean"].tolist() == pytest.approx(expected["mean"].tolist(), rel=1e-6)
    assert set(out["model_version"]) == {ref.version}
    assert loaded.pyfunc.unwrap_python_model().trained.config.name == ref.name

    api = Forecaster.from_registry(f"{ref.name}@champion")
    assert api.predict(history)["mean"].tolist() == pytest.approx(expected["mean"].tolist(), rel=1e-6)


def test_swapped_pickle_in_the_store_never_runs(registered, tmp_path):
    """Row 17: a payload dropped into the version, even with MLmodel rewritten to point at it, is not run
    by the project's loader; mlflow's own loader refuses pickles once the registry is configured."""
    ref, history, expected, store = registered
    (model_dir,) = _model_dirs(store)
    marker = tmp_path / "payload-ran"
    (model_dir / "python_model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    flavor = mlmodel["flavors"]["python_function"]
    flavor.pop("model_code_path")
    flavor["python_model"] = "python_model.pkl"
    (model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    out = registry.load(ref.name).predict(history)
    assert out["mean"].tolist() == pytest.approx(expected["mean"].tolist(), rel=1e-6)
    with pytest.raises(mlflow.exceptions.MlflowException, match="pickle"):
        mlflow.pyfunc.load_model(f"models:/{ref.name}@champion")
    assert not marker.exists()
