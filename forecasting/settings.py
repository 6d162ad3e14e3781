"""Where state lives: one home folder, overridable by environment variables.

Nothing happens at import. Entry points (CLI, tests) call ``Settings.from_env``
and then ``apply_environment`` *before* importing prefect or mlflow, because
both read their settings at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forecasting.errors import ConfigError

if TYPE_CHECKING:
    from forecasting.config.model import ForecasterConfig

HOME_ENV = "FORECASTING_HOME"
DEFAULT_HOME = ".forecasting"
TASK_RUNNER_ENV = "FORECASTING_TASK_RUNNER"
TASK_WORKERS_ENV = "FORECASTING_TASK_WORKERS"
DASK_ADDRESS_ENV = "FORECASTING_DASK_ADDRESS"
SERIES_PER_TASK_ENV = "FORECASTING_SERIES_PER_TASK"
LOCK_DATABASE_ENV = "FORECASTING_LOCK_DATABASE_URL"
HARDWARE_ENV = {
    "accelerator": "FORECASTING_ACCELERATOR", "devices": "FORECASTING_DEVICES", "strategy": "FORECASTING_STRATEGY",
    "precision": "FORECASTING_PRECISION",
}
TASK_RUNNERS = ("sequential", "thread", "dask")


@dataclass(frozen=True)
class Settings:
    """Resolved locations of every piece of state the service keeps."""

    home: Path
    mlflow_tracking_uri: str
    task_runner: str = "sequential"
    """Where a flow's fan-out tasks (per-series prediction chunks, per-fold trainings) run:
    ``sequential`` (one after another, the default: one machine's cores already go to torch),
    ``thread`` (a thread pool in the flow's process) or ``dask`` (a Dask cluster)."""
    task_workers: int = 2
    """Threads of the ``thread`` runner, or workers of the local Dask cluster when no address is given
    (one thread each, so torch does not oversubscribe the cores)."""
    dask_address: str | None = None
    """Scheduler of an existing Dask cluster (``tcp://host:8786``); setting it alone selects ``dask``."""
    series_per_task: int = 1000
    """Series per prediction task: one batched forward pass over a thousand series takes about a second,
    so splitting finer only pays when the chunks go to other machines."""
    lock_database_url: str | None = None
    """PostgreSQL database whose advisory locks serialise promotions across machines (see
    ``lock_database_url``); None: a file lock in ``<home>/locks``, which holds on one machine only."""
    hardware: tuple[tuple[str, str], ...] = ()
    """``training.accelerator/devices/strategy/precision`` overrides of this machine (``FORECASTING_ACCELERATOR``,
    ``FORECASTING_DEVICES``, ``FORECASTING_STRATEGY``, ``FORECASTING_PRECISION``): hardware belongs to the machine, not the model,
    so one config trains on a CPU box and, with ``strategy=ddp_spawn devices=4``, on a 4-GPU worker."""

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Resolve the home folder (argument, ``FORECASTING_HOME``, ``./.forecasting``), the MLflow URI
        the fan-out settings (``FORECASTING_TASK_RUNNER``, ``FORECASTING_TASK_WORKERS``,
        ``FORECASTING_DASK_ADDRESS``, ``FORECASTING_SERIES_PER_TASK``), the promotion lock and the training
        hardware; bad fan-out values are one error naming them all."""
        root = Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
        address = os.environ.get(DASK_ADDRESS_ENV, "").strip() or None
        runner = os.environ.get(TASK_RUNNER_ENV, "").strip().lower() or ("dask" if address else "sequential")
        problems = []
        if runner not in TASK_RUNNERS:
            problems.append(f"{TASK_RUNNER_ENV}={runner!r} is not one of {', '.join(TASK_RUNNERS)}")
        if address and runner != "dask":
            problems.append(f"{DASK_ADDRESS_ENV} is set but {TASK_RUNNER_ENV}={runner!r}: unset one or use 'dask'")
        workers = _positive_int(TASK_WORKERS_ENV, 2, problems)
        chunk = _positive_int(SERIES_PER_TASK_ENV, 1000, problems)
        if problems:
            raise ConfigError("bad fan-out settings:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(home=root, mlflow_tracking_uri=uri, task_runner=runner, task_workers=workers,
                   dask_address=address, series_per_task=chunk, lock_database_url=lock_database_url(uri),
                   hardware=tuple((key, os.environ[env].strip()) for key, env in HARDWARE_ENV.items()
                                  if os.environ.get(env, "").strip()))

    @property
    def store_dir(self) -> Path:
        """Parquet observation store."""
        return self.home / "store"

    @property
    def forecasts_dir(self) -> Path:
        """Batch forecasts, one Parquet file per model and origin."""
        return self.home / "forecasts"

    @property
    def artifacts_dir(self) -> Path:
        """MLflow artifact root for experiments created on the local (SQLite) store."""
        return self.home / "mlartifacts"

    @property
    def checkpoints_dir(self) -> Path:
        """Lightning checkpoints of in-progress trainings."""
        return self.home / "checkpoints"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    def ui_command(self) -> str:
        """The one command that opens the MLflow UI on this store."""
        if self.mlflow_tracking_uri.startswith("sqlite:"):
            return f"mlflow ui --backend-store-uri {self.mlflow_tracking_uri} --host 127.0.0.1 --port 5000"
        return f"open {self.mlflow_tracking_uri} in a browser"


def with_hardware(config: ForecasterConfig, settings: Settings) -> ForecasterConfig:
    """``config`` with this machine's ``training.accelerator/devices/strategy`` (``FORECASTING_ACCELERATOR`` ...).

    So a stack switches its GPU workers to DDP in their environment, not in every model's YAML; the
    values are validated like the YAML's, and the run's logged params show what was used.
    """
    if not settings.hardware:
        return config
    from pydantic import ValidationError

    from forecasting.config.model import TrainingConfig

    overrides = {k: int(v) if k == "devices" and v.isdigit() else v for k, v in settings.hardware}
    try:
        training = TrainingConfig.model_validate({**config.training.model_dump(), **overrides})
    except ValidationError as exc:
        raise ConfigError(f"training overrides from the environment {overrides}: {exc}") from None
    return config.model_copy(update={"training": training})


def lock_database_url(tracking_uri: str) -> str | None:
    """Where promotions take their cross-machine lock: ``FORECASTING_LOCK_DATABASE_URL`` if set, else the
    MLflow tracking URI when that is a PostgreSQL database, else None (a per-machine file lock).

    An MLflow *server* (``http://...``) hides its database, so a stack whose workers talk HTTP names the
    database here; the URL is returned as libpq takes it (``postgresql://``, no ``+driver``).
    """
    explicit = os.environ.get(LOCK_DATABASE_ENV, "").strip()
    scheme, sep, rest = (explicit or tracking_uri).partition("://")
    if sep and scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        return f"postgresql://{rest}"
    if explicit:
        raise ConfigError(f"{LOCK_DATABASE_ENV} must be a postgresql:// URL, not {explicit!r}")
    return None


def _positive_int(name: str, default: int, problems: list[str]) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        problems.append(f"{name}={raw!r} is not a whole number >= 1")
        return default
    return value


PROJECT_LOGGER = "forecasting"
"""Parent of the library's loggers; under a flow run its records go to the run's log in the Prefect API."""


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect's settings for this home: its own database, no telemetry, a startup timeout that suits a
    busy machine, and logs at INFO, so a run's page in the UI shows what happened.

    ``PREFECT_LOGGING_EXTRA_LOGGERS`` sends the library's loggers to the flow run's log too; outside a run
    they stay local (``..._WHEN_MISSING_FLOW=ignore``, not a warning per line). The terminal is kept
    readable by the CLI's console filter, not by dropping records before they reach the API.
    """
    return {
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",  # Prefect's 20 s is too tight on 2 busy cores
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_LOGGING_EXTRA_LOGGERS": PROJECT_LOGGER,
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    }


def apply_environment(settings: Settings) -> None:
    """Point prefect and mlflow at the home folder; quiet their telemetry. Imports neither.

    Values the user already set win (``setdefault``), so ``PREFECT_API_URL`` or
    ``MLFLOW_TRACKING_URI`` aimed at a server keep working.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        **prefect_environment(settings),
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MPLBACKEND", "Agg")
