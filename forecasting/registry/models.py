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

from forecasting.config.model import config_to_yaml
from forecasting.errors import ForecastingError
from forecasting.model.forecaster import TrainedForecaster

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # forecasting/, shipped beside every pyfunc
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
        from forecasting.model.forecaster import TrainedForecaster

        self.trained = TrainedForecaster.load(context.artifacts["forecaster"])
        config = context.model_config or {}
        self.model_name = config.get("model_name", self.trained.config.name)
        self.model_version = str(config.get("model_version", ""))
        self.run_id = config.get("run_id", "")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Forecast every series in ``model_input``; ``params={'horizon': h}`` shortens the horizon.

        Rows with an empty ``target`` are the horizon's known-future covariates
        (models with ``data.future_covariates``), not history.
        """
        from forecasting.predict import forecast

        horizon = (params or {}).get("horizon")
        if not pd.api.types.is_datetime64_any_dtype(model_input["timestamp"]):
            # JSON requests carry timestamps as ISO strings; naive ones are taken as UTC.
            model_input = model_input.assign(timestamp=pd.to_datetime(model_input["timestamp"], utc=True))
        future = None
        if "target" in model_input and model_input["target"].isna().any():
            future = model_input[model_input["target"].isna()]
            model_input = model_input[model_input["target"].notna()]
        out = forecast(self.trained, model_input, horizon=horizon, future=future)
        out = _select_quantiles(out, (params or {}).get("quantiles"), self.trained.config.name)
        out["model_name"] = self.model_name
        out["model_version"] = self.model_version
        out["run_id"] = self.run_id
        return out


def _select_quantiles(out: pd.DataFrame, wanted: Any, name: str) -> pd.DataFrame:
    """Keep only the requested quantile columns; the model can return only levels it was trained for."""
    if wanted is None or len(wanted) == 0:
        return out
    trained = [c for c in out.columns if c.startswith("q")]
    columns = [f"q{float(level):g}" for level in wanted]
    missing = [c for c in columns if c not in trained]
    if missing:
        raise ForecastingError(
            f"model '{name}' has no quantile(s) {[c[1:] for c in missing]}; it was trained for {[c[1:] for c in trained] or 'none'}"
        )
    return out.drop(columns=[c for c in trained if c not in columns])


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
    tags = _tags(trained)  # asks git for the commit: once, for both the run and the version
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{config.name}") as run:
        run_id = run.info.run_id
        mlflow.log_params({k: "" if v is None else v for k, v in config.flat().items()})
        for epoch in trained.history:
            step = int(epoch["epoch"])
            mlflow.log_metrics({k: v for k, v in epoch.items() if k != "epoch"}, step=step)
        mlflow.log_metrics(trained.metrics)
        mlflow.log_metric("train_seconds", trained.meta.get("train_seconds", 0.0))
        mlflow.set_tags(tags)
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
            signature = _signature(example, output, horizon=config.window.horizon, quantiles=list(config.model.quantiles))
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=ForecasterModel(),
                artifacts={"forecaster": str(saved)},
                code_paths=[str(PACKAGE_DIR)],
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
    for key, value in tags.items():
        client.set_model_version_tag(config.name, version, key, value)
    for alias in aliases:
        client.set_registered_model_alias(config.name, alias, version)
    if CHAMPION in aliases:
        client.update_registered_model(config.name, description=_model_card(trained, version))
    return ModelRef(config.name, version, run_id)


def _signature(example: pd.DataFrame, output: pd.DataFrame, *, horizon: int, quantiles: list[float]) -> ModelSignature:
    """Inferred signature, except that ``timestamp`` accepts any type.

    MLflow's datetime column type rejects timezone-aware values, and the
    canonical frame is UTC-aware; ISO strings (JSON requests) are parsed by
    the model itself, and our own validator names any bad value.
    """
    params: dict[str, Any] = {"horizon": horizon}
    if quantiles:
        params["quantiles"] = [float(q) for q in quantiles]  # default: every trained level
    inferred = infer_signature(example, output, params=params)
    inputs = Schema([ColSpec(AnyType(), c.name) if c.name == "timestamp" else c for c in inferred.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params)


def _tags(trained: TrainedForecaster) -> dict[str, str]:
    """Tags to filter by in the UI, and the lineage a version must carry to be reproduced."""
    c, meta = trained.config, trained.meta
    data = meta.get("data") or {}
    hardware = meta.get("hardware") or {}
    series = data.get("series") or list(trained.scaler.series_ids)
    tags = {
        "dataset": c.data.dataset,
        "target": f"{c.data.dataset}:target",
        "freq": c.data.freq,
        "horizon": str(c.window.horizon),
        "lookback": str(c.window.lookback),
        "series_count": str(len(series)),
        "series": ",".join(series)[:4000],
        "data.rows": str(data.get("rows", "")),
        "data.start": str(data.get("start", "")),
        "data.end": str(data.get("end", "")),
        "data.sha1": str(data.get("sha1", "")),
        "seed": str(c.training.seed),
        "train_seconds": str(meta.get("train_seconds", "")),
        "hardware.device": str(hardware.get("device", "")),
        "hardware.threads": str(hardware.get("threads", "")),
        "git_commit": _git_commit(),
    }
    for package in ("torch", "pytorch-lightning", "pandas", "numpy", "mlflow"):
        tags[f"versions.{package}"] = metadata.version(package)
    return tags


def _git_commit() -> str:
    """The commit of the code that trained the model ('unknown' outside a git checkout)."""
    import subprocess

    root = PACKAGE_DIR.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() if out.returncode == 0 else "unknown"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10)
    return commit + ("+dirty" if commit != "unknown" and dirty.stdout.strip() else "")


def _description(trained: TrainedForecaster) -> str:
    c, m = trained.config, trained.metrics
    lines = [
        f"{c.model.cell.upper()} forecaster of `{c.data.dataset}` ({len(trained.scaler.series_ids)} series, "
        f"freq `{c.data.freq}`): horizon {c.window.horizon}, lookback {c.window.lookback}, "
        + (f"quantiles {list(c.model.quantiles)}." if c.model.quantiles else "point forecasts only."),
    ]
    if "val_coverage_80" in m:
        lines.append(f"Validation 80% interval coverage {m['val_coverage_80']:.1%}.")
    if "val_mae" in m:
        lines.append(
            f"Validation MAE {m['val_mae']:.4g} vs seasonal naive (season {c.baseline.season_length}) "
            f"{m['val_baseline_mae']:.4g}; RMSE {m['val_rmse']:.4g} vs {m['val_baseline_rmse']:.4g}."
        )
    statistical = [n for n in c.baseline.statistical if f"val_{n}_mae" in m]
    if statistical:
        against = ", ".join(
            f"{n.upper() if n != 'theta' else 'Theta'} {m[f'val_{n}_mae']:.4g}"
            + (" (beaten)" if m["val_stat_model_mae"] < m[f"val_{n}_mae"] else " (**not beaten**)")
            for n in statistical
        )
        lines.append(
            f"On the latest {int(m['val_stat_windows'])} validation windows, MAE {m['val_stat_model_mae']:.4g} "
            f"against statistical models refitted per origin: {against}."
        )
    data = trained.meta.get("data", {})
    if data:
        lines.append(f"Trained on {data.get('rows')} rows from {data.get('start')} to {data.get('end')}.")
    return "\n\n".join(lines)


def _model_card(trained: TrainedForecaster, version: str) -> str:
    """The registered model's description: what it forecasts and how the champion scores."""
    c = trained.config
    return "\n\n".join(
        [
            f"**{c.name}**: {c.description or 'LSTM forecaster'}",
            f"Champion: version {version}. " + _description(trained),
        ]
    )


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


BACKTEST_EXPERIMENT = "backtests"


def log_backtest(
    *,
    model_name: str,
    model_version: str | None,
    params: dict[str, Any],
    metrics: dict[str, float],
    step_metrics: dict[str, list[float]] | None = None,
    report_dir: Path | None = None,
    tags: dict[str, str] | None = None,
    experiment: str = BACKTEST_EXPERIMENT,
    artifacts_dir: Path | None = None,
) -> str:
    """Log one backtest as a run of ``experiment``, tagged with the model name and version it evaluated.

    ``metrics`` are the headline numbers (e.g. ``model_mae``); ``step_metrics``
    are curves logged with the horizon step as MLflow's step, so the UI plots
    error by step; ``report_dir``'s files become artifacts under ``backtest/``.
    Returns the run id.
    """
    import time

    from mlflow.entities import Metric

    experiment_id = ensure_experiment(experiment, artifacts_dir)
    version = model_version or "trained per fold"
    run_name = f"backtest-{model_name}" + (f"-v{model_version}" if model_version else "-refit")
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags({"model_name": model_name, "model_version": version, "kind": "backtest", **(tags or {})})
        mlflow.log_params({k: "" if v is None else v for k, v in params.items()})
        mlflow.log_metrics(metrics)
        now = int(time.time() * 1000)
        curves = [
            Metric(key, float(value), now, step)
            for key, values in (step_metrics or {}).items()
            for step, value in enumerate(values, start=1)
        ]
        if curves:
            MlflowClient().log_batch(run.info.run_id, metrics=curves)  # one write, not one per step
        if report_dir is not None:
            mlflow.log_artifacts(str(report_dir), artifact_path="backtest")
    return run.info.run_id


# --- Lifecycle primitives: aliases, decisions, lineage -------------------------------------

CHALLENGER = "challenger"


def champion_or_none(name: str) -> ModelRef | None:
    """The current champion, or None when the model or its alias does not exist yet."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return ModelRef(name, str(version.version), version.run_id)


def load_trained(name: str, version: str) -> TrainedForecaster:
    """The forecaster object of one registered version (config, scaler, weights)."""
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
    found = next(Path(local).rglob("weights.pt"), None)
    if found is None:
        raise ForecastingError(f"model '{name}' version {version} holds no forecaster weights")
    return TrainedForecaster.load(found.parent)


def version_tags(name: str, version: str) -> dict[str, str]:
    return dict(MlflowClient().get_model_version(name, version).tags)


def tag_version(name: str, version: str, tags: dict[str, Any]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, "" if value is None else str(value))


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)


def log_version_artifacts(run_id: str, directory: Path, artifact_path: str) -> None:
    """Attach files (a backtest report, plots) to the run a version came from."""
    MlflowClient().log_artifacts(run_id, str(directory), artifact_path)


def set_champion(
    name: str, version: str, *, previous: str | None, record: dict[str, Any], trained: TrainedForecaster | None = None
) -> None:
    """Point `champion` at ``version``, remember the one it replaced, refresh the model card.

    Pass ``trained`` when the caller already loaded the version, to skip downloading it again.
    """
    tag_version(name, version, {**record, "promotion.previous_champion": previous or ""})
    set_alias(name, CHAMPION, version)
    client = MlflowClient()
    if trained is None:
        try:
            trained = load_trained(name, version)
        except ForecastingError:
            return
    client.update_registered_model(name, description=_model_card(trained, version))
    client.set_registered_model_tag(name, "champion_version", version)
    for key in ("val_mae", "val_mae_skill", "val_stat_model_mae", "val_ets_mae", "val_theta_mae", "val_arima_mae"):
        if key in trained.metrics:
            client.set_registered_model_tag(name, f"champion_{key}", f"{trained.metrics[key]:.4g}")


def ensure_version(name: str, version: str) -> None:
    """A clear error for a model or version that does not exist."""
    client = MlflowClient()
    try:
        client.get_model_version(name, version)
    except MlflowException:
        try:
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        except MlflowException:
            versions = []
        if not versions:
            raise ForecastingError(f"no registered model '{name}'") from None
        raise ForecastingError(f"model '{name}' has no version {version}; versions: {versions}") from None


# --- Monitoring: issued forecasts scored against actuals ------------------------------------

MONITORING_EXPERIMENT = "monitoring"


def log_monitoring(
    *,
    model_name: str,
    versions: pd.DataFrame,
    alerts: list[str],
    params: dict[str, Any] | None = None,
    summary_markdown: str | None = None,
    experiment: str = MONITORING_EXPERIMENT,
    artifacts_dir: Path | None = None,
) -> str:
    """Log one monitoring evaluation as a run of ``experiment``; returns the run id.

    ``versions`` has one row per (model_version, window_days) with ``mae``,
    ``mase``, ``bias``, ``promised_mase`` and optionally ``coverage``; each
    becomes a metric ``v<version>_<metric>_<days>d``. A bar chart of realised
    vs promised MASE is attached as ``monitoring/realised_vs_promised.png``.
    """
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experiment_id = ensure_experiment(experiment, artifacts_dir)
    metrics: dict[str, float] = {}
    for row in versions.to_dict("records"):
        for key in ("n", "mae", "mase", "bias", "coverage", "promised_mase", "ratio"):
            value = row.get(key)
            if value is not None and isinstance(value, (int, float)) and math.isfinite(float(value)):
                metrics[f"v{row['model_version']}_{key}_{row['window_days']}d"] = float(value)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor-{model_name}") as run:
        mlflow.set_tags({"model_name": model_name, "kind": "monitoring", "alert": str(bool(alerts)).lower(),
                         "model_versions": ",".join(sorted({str(v) for v in versions.get("model_version", [])}))})
        mlflow.log_params({k: "" if v is None else v for k, v in (params or {}).items()})
        if metrics:
            mlflow.log_metrics(metrics)
        if alerts:
            mlflow.log_text("\n".join(alerts), "monitoring/alerts.txt")
        if summary_markdown:
            mlflow.log_text(summary_markdown, "monitoring/summary.md")
        if len(versions):
            labels = [f"v{r['model_version']} {r['window_days']}d" for r in versions.to_dict("records")]
            fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels)), 3.5))
            x = range(len(labels))
            ax.bar([i - 0.2 for i in x], versions["mase"], width=0.4, label="realised MASE")
            ax.bar([i + 0.2 for i in x], versions["promised_mase"].fillna(0.0), width=0.4, label="promised MASE")
            ax.set_xticks(list(x), labels)
            ax.set_title(f"{model_name}: realised vs promised error")
            ax.legend()
            fig.tight_layout()
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "realised_vs_promised.png"
                fig.savefig(path, dpi=80)
                mlflow.log_artifact(str(path), artifact_path="monitoring")
            plt.close(fig)
    return run.info.run_id
