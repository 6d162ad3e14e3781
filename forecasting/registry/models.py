"""MLflow: the only module that imports mlflow.

Logs a training run (resolved config as params, per-epoch losses, validation
metrics next to the baseline's, plots, config and scaler), stores the model as
a pyfunc that maps a history frame to a forecast frame (logged as code, see
``pyfunc_model.py``: nothing is pickled), registers it, moves aliases, and loads
it back by ``models:/NAME@ALIAS`` from its data files alone. Registration is all
or nothing; ``recover`` cleans up after a killed process.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

from forecasting.config.model import config_to_yaml
from forecasting.errors import ForecastingError
from forecasting.model.forecaster import TrainedForecaster
from forecasting.registry import overview
from forecasting.registry.serving import ForecasterModel, select_quantiles

_select_quantiles = select_quantiles  # the name tests and older callers import

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
    """Point the client at a tracking store and refuse pickled models: ``overview.configure``."""
    overview.configure(tracking_uri)


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


PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")  # the model MLflow logs as code, not as a pickle
DECISION = "promotion.decision"
"""The tag that completes a version: set by the promotion (or by a direct registration as champion).
A version without it was never completed and is never served (``require_complete``)."""
OWNER_TAGS = ("owner.host", "owner.pid", "owner.pid_started")
"""Run tags naming the process that logged the run: ``recover`` tells a killed one from a live one."""
STALE_AFTER_SECONDS = 24 * 3600.0
"""A run of another machine's process (whose liveness this one cannot see) counts as dead after this long."""


class NonFiniteModelError(ForecastingError):
    """Training produced NaN or infinite validation scores or weights: the model is never registered."""


def check_finite(trained: TrainedForecaster) -> None:
    """One clear error when the model's validation scores or weights are not finite numbers.

    Values around 1e300 overflow the scaler and the loss: such a model "trains" to NaN, and as the first
    version of its name it would otherwise have become the champion.
    """
    import math

    import torch

    metrics = trained.metrics
    keys = [k for k in ("val_mae", "val_rmse") if k in metrics]
    if not keys and not trained.is_ensemble:  # no validation part: the training loss is all there is
        keys = [k for k in ("best_val_loss", "best_train_loss") if k in metrics]
    bad = [f"{k}={metrics[k]}" for k in keys if not math.isfinite(float(metrics[k]))]
    for i, net in enumerate([trained, *trained.members]):
        for key, tensor in net.state_dict.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad.append(f"weights {'' if i == 0 else f'of member {i - 1} '}{key} hold NaN or infinity")
                break
    if bad:
        raise NonFiniteModelError(
            f"model '{trained.config.name}' is not registered: training did not produce finite numbers "
            f"({'; '.join(bad)}); check the data for extreme values (around 1e300?) or lower training.learning_rate"
        )


def fault_point(name: str) -> None:
    """A pause for fault-injection tests: with ``FORECASTING_FAULT_PAUSE=name`` the process writes its pid to
    ``FORECASTING_FAULT_PAUSE_FILE`` and sleeps until killed, so a test can kill -9 it at exactly this point."""
    import os
    import time

    if os.environ.get("FORECASTING_FAULT_PAUSE") != name:
        return
    marker = os.environ.get("FORECASTING_FAULT_PAUSE_FILE")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(3600)


def start_training_run(
    config: Any, *, artifacts_dir: Path | None = None, experiment: str | None = None, resumable: bool = True
) -> str:
    """Open the MLflow run of one training before it starts; returns its run id.

    The run carries its owner tags and the resolved config from the start, so the UI shows it RUNNING with
    a true start time, and ``epoch_logger`` adds each epoch's losses live. ``log_and_register(run_id=...)``
    completes the same run; ``end_training_run`` ends it FAILED when training fails. Runs a killed process
    left RUNNING are marked FAILED first (``recover``).
    """
    experiment_id = ensure_experiment(experiment or config.name, artifacts_dir)
    recover(config.name)
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=f"train-{config.name}", tags=owner_tags())
    run_id = run.info.run_id
    try:
        params = [Param(k, str("" if v is None else v)) for k, v in config.flat().items()]
        for i in range(0, len(params), 100):  # the tracking API takes at most 100 params a batch
            client.log_batch(run_id, params=params[i : i + 100])
        client.log_text(run_id, config_to_yaml(config), "config.yaml")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    return run_id


def epoch_logger(run_id: str) -> Callable[[dict[str, float], int], None]:
    """An ``on_epoch(metrics, epoch)`` hook for ``train.fit`` that logs each epoch's losses to run ``run_id``
    as it ends, so the curves grow while it trains (step: the 0-based epoch, as ``TrainedForecaster.history``)."""
    import time

    from mlflow.entities import Metric

    client = MlflowClient()

    def on_epoch(metrics: dict[str, float], epoch: int) -> None:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, epoch - 1) for k, v in metrics.items()])

    return on_epoch


def end_training_run(run_id: str, status: str = "FAILED") -> None:
    """End a training run that will not be registered (training failed or was interrupted); best effort."""
    try:
        client = MlflowClient()
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status=status)
    except MlflowException:
        pass


def log_and_register(
    trained: TrainedForecaster,
    *,
    history_example: pd.DataFrame,
    plots: dict[str, Path] | None = None,
    artifacts_dir: Path | None = None,
    experiment: str | None = None,
    aliases: tuple[str, ...] = (CHAMPION,),
    run_id: str | None = None,
) -> ModelRef:
    """Log one training run, register its model as a new version and point ``aliases`` at it.

    All or nothing: a model whose scores or weights are not finite is refused before anything is written;
    an error after the version exists deletes it again (the run ends FAILED); a process killed half-way
    leaves a version without its decision tag, which is never served and which the next command touching
    the model deletes (``recover``), marking the run FAILED. Registering straight to ``champion`` records
    that as the version's decision.

    ``run_id``: the run ``start_training_run`` opened when training began (its params and per-epoch losses
    are already logged); the version is registered from that run, not from a second one.
    """
    config = trained.config
    check_finite(trained)
    experiment_id = ensure_experiment(experiment or config.name, artifacts_dir)
    recover(config.name)
    tags = _tags(trained)  # asks git for the commit: once, for both the run and the version
    client = MlflowClient()
    version = ""
    try:
        opened = run_id is not None
        start = {"run_id": run_id} if opened else {"experiment_id": experiment_id, "run_name": f"train-{config.name}"}
        with mlflow.start_run(**start) as run:
            run_id = run.info.run_id
            mlflow.set_tags(owner_tags())
            if not opened:  # an opened run has its params and its epochs' losses already
                mlflow.log_params({k: "" if v is None else v for k, v in config.flat().items()})
                for epoch in trained.history:
                    step = int(epoch["epoch"])
                    mlflow.log_metrics({k: v for k, v in epoch.items() if k != "epoch"}, step=step)
            mlflow.log_metrics(trained.metrics)
            mlflow.log_metric("train_seconds", trained.meta.get("train_seconds", 0.0))
            mlflow.set_tags(tags)
            if not opened:
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
                    python_model=str(PYFUNC_FILE),  # models from code: no python_model.pkl to unpickle
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
            fault_point("registration")
            client.update_model_version(config.name, version, description=_description(trained))
            record = dict(tags)
            if CHAMPION in aliases:
                record |= {DECISION: "registered as champion",
                           "promotion.reason": "registered straight to champion, without the promotion gate"}
            for key, value in record.items():
                client.set_model_version_tag(config.name, version, key, value)
            for alias in aliases:  # last: a version is reachable by alias only once it is whole
                client.set_registered_model_alias(config.name, alias, version)
            if CHAMPION in aliases:
                client.update_registered_model(config.name, description=_model_card(trained, version))
    except BaseException:
        if version:
            _discard(config.name, version)
        raise
    return ModelRef(config.name, version, run_id)


def _discard(name: str, version: str) -> None:
    """Delete a version whose registration failed half-way (best effort: the next ``recover`` retries)."""
    try:
        MlflowClient().delete_model_version(name, version)
    except MlflowException:
        pass


def owner_tags() -> dict[str, str]:
    """This process, as run tags: host, pid and the pid's start time (pids are reused)."""
    import os
    import socket

    return {"owner.host": socket.gethostname(), "owner.pid": str(os.getpid()), "owner.pid_started": _started(os.getpid())}


def _started(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot; "" when there is no such process."""
    import os

    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if Path("/proc/self/stat").exists():
            return ""
        try:  # no /proc (macOS): existence only
            os.kill(pid, 0)
        except ProcessLookupError:
            return ""
        except PermissionError:
            pass
        return "alive"
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else "alive"


def _owner_alive(tags: dict[str, str], start_ms: int | None, stale_after: float) -> bool:
    """Whether the process that logged a run may still be working on it."""
    import socket
    import time

    host, pid = tags.get("owner.host"), tags.get("owner.pid", "")
    if host == socket.gethostname() and pid.isdigit():
        started = _started(int(pid))
        return bool(started) and started in ("alive", tags.get("owner.pid_started", started))
    age = time.time() - (start_ms or 0) / 1000.0
    return age < stale_after


def recover(name: str, *, stale_after: float = STALE_AFTER_SECONDS) -> list[str]:
    """Finish what killed processes left of model ``name``; returns one line per thing repaired.

    Training runs left RUNNING by a process that no longer exists are marked FAILED, and versions
    registered by such a process that never got their decision tag are deleted (with any alias on them),
    so a rerun starts clean and nothing half-made is served. A process on another machine counts as dead
    once its run is ``stale_after`` seconds old. Versions logged before runs carried owner tags are left alone.
    """
    client = MlflowClient()
    notes: list[str] = []
    dead_runs: set[str] = set()
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        running = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'",
                                     max_results=1000)
        for run in running:
            if "owner.pid" not in run.data.tags or _owner_alive(run.data.tags, run.info.start_time, stale_after):
                continue
            client.set_terminated(run.info.run_id, status="FAILED")
            dead_runs.add(run.info.run_id)
            notes.append(f"run {run.info.run_id} of '{name}' was left RUNNING by a killed process: marked FAILED")
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return notes
    for mv in versions:
        if DECISION in (mv.tags or {}):
            continue
        try:
            run = client.get_run(mv.run_id)
        except MlflowException:
            continue
        tags = run.data.tags
        if "owner.pid" not in tags:
            continue  # registered before owner tags existed: not ours to judge
        if run.info.run_id not in dead_runs and _owner_alive(tags, run.info.start_time, stale_after):
            continue  # its process is still registering or promoting it
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FAILED")
        _discard(name, str(mv.version))
        notes.append(f"version {mv.version} of '{name}' was never completed (its process died before the "
                     "promotion decision): deleted")
    return notes


def require_complete(name: str, version: str) -> None:
    """A clear error for a version without its decision tag: its registration or promotion never finished."""
    client = MlflowClient()
    mv = client.get_model_version(name, version)
    if DECISION in (mv.tags or {}):
        return
    try:
        legacy = "owner.pid" not in client.get_run(mv.run_id).data.tags
    except MlflowException:
        legacy = True
    if not legacy:  # versions logged before decisions were recorded on every version stay loadable
        raise ForecastingError(
            f"model '{name}' version {version} was never completed (no {DECISION} tag: its registration or "
            "promotion did not finish) and is not served; the next `forecast train` of this model cleans it up"
        )


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


class _ServedModel:
    """What ``mlflow.pyfunc.PyFuncModel`` wraps: our installed ``ForecasterModel`` and its context."""

    def __init__(self, python_model: ForecasterModel, context: Any) -> None:
        self.python_model = python_model  # what PyFuncModel.unwrap_python_model returns
        self.context = context

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.python_model.predict(self.context, model_input, params=params)


def load(name: str, alias: str = CHAMPION) -> LoadedForecaster:
    """Load ``models:/NAME@ALIAS`` as a pyfunc that knows its own version, running no code from the store.

    The version's data files are read (MLmodel and config as YAML, scaler as JSON, weights with
    ``weights_only=True``) into this installation's ``ForecasterModel``: neither the model file nor the
    package copy logged with it is imported, and nothing is unpickled. Only completed versions load.
    """
    from mlflow.models import Model
    from mlflow.pyfunc import PythonModelContext

    recover(name)
    ref = resolve(name, alias)
    require_complete(name, ref.version)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{ref.version}"))
    meta = Model.load(str(local))
    flavor = meta.flavors.get("python_function", {})
    relative = (flavor.get("artifacts") or {}).get("forecaster", {}).get("path")
    forecaster_dir = local / relative if relative else next((p.parent for p in local.rglob("weights.pt")), None)
    if forecaster_dir is None or not (forecaster_dir / "weights.pt").is_file():
        raise ForecastingError(f"model '{name}' version {ref.version} holds no forecaster weights")
    context = PythonModelContext(
        artifacts={"forecaster": str(forecaster_dir)},
        model_config={"model_name": name, "model_version": ref.version, "run_id": ref.run_id},
    )
    python_model = ForecasterModel()
    python_model.load_context(context)
    return LoadedForecaster(ref, mlflow.pyfunc.PyFuncModel(model_meta=meta, model_impl=_ServedModel(python_model, context)))


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


def describe_decision(name: str, version: str, text: str) -> None:
    """Put the promotion decision (``text``, Markdown) under the version's description, replacing an earlier one,
    so the version's page says why it serves: its backtest scores against the baselines and the decision."""
    client = MlflowClient()
    current = client.get_model_version(name, version).description or ""
    kept = current.split(_DECISION_MARK)[0].rstrip()
    client.update_model_version(name, version, description=f"{kept}\n\n{_DECISION_MARK}\n\n{text}".lstrip())


_DECISION_MARK = "<!-- promotion decision -->"


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
