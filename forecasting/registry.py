"""MLflow: the only module that imports mlflow.

Logs a training run (resolved config as params, per-epoch losses, validation
metrics next to the baseline's, plots, config and scaler), stores the model as
a pyfunc that maps a history frame to a forecast frame, registers it, moves
aliases, and loads it back by ``models:/NAME@ALIAS``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

import forecasting
from forecasting.config import config_to_yaml
from forecasting.errors import ForecastingError
from forecasting.forecaster import TrainedForecaster

MODEL_ARTIFACT = "model"
CHAMPION = "champion"
# What a serving process needs to load the pyfunc; torch keeps the exact CPU pin
# (autolog would drop the "+cpu" label and pull a CUDA build).
SERVING_PACKAGES = ("torch", "numpy", "pandas", "pyarrow", "pydantic", "pyyaml", "mlflow")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version."""

    name: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def configure(tracking_uri: str) -> None:
    """Point the client at a tracking store (the registry shares it)."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def ensure_experiment(name: str, artifacts_dir: Path | None) -> str:
    """Experiment id for ``name``, created with its artifacts under ``artifacts_dir`` on a local store."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if artifacts_dir is not None and not mlflow.get_tracking_uri().startswith(("http:", "https:", "databricks")):
        location = (Path(artifacts_dir) / name).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process created it between our lookup and create.
        return mlflow.get_experiment_by_name(name).experiment_id


def serving_requirements() -> list[str]:
    """Exact pins of the packages the pyfunc imports at load time."""
    pins = []
    for package in SERVING_PACKAGES:
        version = metadata.version(package)
        pins.append(f"{package}=={version.split('+')[0]}")
    return pins


class ForecasterModel(mlflow.pyfunc.PythonModel):
    """pyfunc: history frame in, forecast frame (DESIGN.md contract) out."""

    def load_context(self, context: Any) -> None:  # noqa: D102 - MLflow hook
        from forecasting.forecaster import TrainedForecaster

        self.trained = TrainedForecaster.load(context.artifacts["forecaster"])
        config = context.model_config or {}
        self.model_name = config.get("model_name", self.trained.config.name)
        self.model_version = str(config.get("model_version", ""))
        self.run_id = config.get("run_id", "")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Forecast every series in ``model_input``; ``params={'horizon': h}`` shortens the horizon."""
        from forecasting.predict import forecast

        horizon = (params or {}).get("horizon")
        if not pd.api.types.is_datetime64_any_dtype(model_input["timestamp"]):
            # JSON requests carry timestamps as ISO strings; naive ones are taken as UTC.
            model_input = model_input.assign(timestamp=pd.to_datetime(model_input["timestamp"], utc=True))
        out = forecast(self.trained, model_input, horizon=horizon)
        out["model_name"] = self.model_name
        out["model_version"] = self.model_version
        out["run_id"] = self.run_id
        return out


def log_and_register(
    trained: TrainedForecaster,
    *,
    history_example: pd.DataFrame,
    plots: dict[str, Path] | None = None,
    artifacts_dir: Path | None = None,
    experiment: str | None = None,
    aliases: tuple[str, ...] = (CHAMPION,),
) -> ModelRef:
    """Log one training run, register its model as a new version and point ``aliases`` at it."""
    config = trained.config
    experiment_id = ensure_experiment(experiment or config.name, artifacts_dir)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{config.name}") as run:
        run_id = run.info.run_id
        mlflow.log_params({k: "" if v is None else v for k, v in config.flat().items()})
        for epoch in trained.history:
            step = int(epoch["epoch"])
            mlflow.log_metrics({k: v for k, v in epoch.items() if k != "epoch"}, step=step)
        mlflow.log_metrics(trained.metrics)
        mlflow.log_metric("train_seconds", trained.meta.get("train_seconds", 0.0))
        mlflow.set_tags(_tags(trained))
        mlflow.log_text(config_to_yaml(config), "config.yaml")
        mlflow.log_dict(trained.scaler.to_dict(), "scaler.json")
        mlflow.log_dict(trained.meta, "lineage.json")
        for name, path in (plots or {}).items():
            mlflow.log_artifact(str(path), artifact_path="plots")

        with tempfile.TemporaryDirectory() as tmp:
            saved = trained.save(Path(tmp) / "forecaster")
            example = history_example.reset_index(drop=True)
            example_model = ForecasterModel()
            example_model.trained = trained
            example_model.model_name, example_model.model_version, example_model.run_id = config.name, "", run_id
            output = example_model.predict(None, example)
            signature = _signature(example, output, horizon=config.window.horizon)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=ForecasterModel(),
                artifacts={"forecaster": str(saved)},
                code_paths=[str(Path(forecasting.__file__).parent)],
                pip_requirements=serving_requirements(),
                signature=signature,
                input_example=example,
                # Every key a loader may override must exist at log time; `load` fills the version.
                model_config={"model_name": config.name, "model_version": "", "run_id": run_id},
                registered_model_name=config.name,
            )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.update_model_version(config.name, version, description=_description(trained))
    for key, value in _tags(trained).items():
        client.set_model_version_tag(config.name, version, key, value)
    for alias in aliases:
        client.set_registered_model_alias(config.name, alias, version)
    return ModelRef(config.name, version, run_id)


def _signature(example: pd.DataFrame, output: pd.DataFrame, *, horizon: int) -> ModelSignature:
    """Inferred signature, except that ``timestamp`` accepts any type.

    MLflow's datetime column type rejects timezone-aware values, and the
    canonical frame is UTC-aware; ISO strings (JSON requests) are parsed by
    the model itself, and our own validator names any bad value.
    """
    inferred = infer_signature(example, output, params={"horizon": horizon})
    inputs = Schema([ColSpec(AnyType(), c.name) if c.name == "timestamp" else c for c in inferred.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params)


def _tags(trained: TrainedForecaster) -> dict[str, str]:
    c = trained.config
    return {
        "dataset": c.data.dataset,
        "freq": c.data.freq,
        "horizon": str(c.window.horizon),
        "lookback": str(c.window.lookback),
        "series_count": str(len(trained.scaler.series_ids)),
    }


def _description(trained: TrainedForecaster) -> str:
    c, m = trained.config, trained.metrics
    lines = [
        f"LSTM forecaster for dataset `{c.data.dataset}` ({len(trained.scaler.series_ids)} series, freq `{c.data.freq}`), "
        f"horizon {c.window.horizon}, lookback {c.window.lookback}.",
    ]
    if "val_mae" in m:
        lines.append(
            f"Validation MAE {m['val_mae']:.4g} vs seasonal naive (season {c.baseline.season_length}) "
            f"{m['val_baseline_mae']:.4g}; RMSE {m['val_rmse']:.4g} vs {m['val_baseline_rmse']:.4g}."
        )
    data = trained.meta.get("data", {})
    if data:
        lines.append(f"Trained on {data.get('rows')} rows from {data.get('start')} to {data.get('end')}.")
    return "\n\n".join(lines)


def resolve(name: str, alias: str = CHAMPION) -> ModelRef:
    """The version an alias points at; a clear error when the model or alias does not exist."""
    client = MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise ForecastingError(f"no registered model '{name}'; registered models: {names or 'none'}") from None
    aliases = dict(registered.aliases or {})
    if alias not in aliases:
        raise ForecastingError(f"registered model '{name}' has no alias '{alias}'; its aliases: {sorted(aliases) or 'none'}")
    mv = client.get_model_version(name, aliases[alias])
    return ModelRef(name, str(mv.version), mv.run_id)


@dataclass
class LoadedForecaster:
    """A registered model loaded for batch prediction, with its lineage."""

    ref: ModelRef
    pyfunc: Any

    def predict(self, history: pd.DataFrame, *, horizon: int | None = None) -> pd.DataFrame:
        params = {"horizon": int(horizon)} if horizon is not None else None
        return self.pyfunc.predict(history, params=params)


def load(name: str, alias: str = CHAMPION) -> LoadedForecaster:
    """Load ``models:/NAME@ALIAS`` as a pyfunc that knows its own version."""
    ref = resolve(name, alias)
    model = mlflow.pyfunc.load_model(
        f"models:/{name}@{alias}",
        model_config={"model_name": name, "model_version": ref.version, "run_id": ref.run_id},
    )
    return LoadedForecaster(ref, model)
