"""Where state lives: one home folder, overridable by environment variables.

Nothing happens at import. Entry points (CLI, tests) call ``Settings.from_env``
and then ``apply_environment`` *before* importing prefect or mlflow, because
both read their settings at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "FORECASTING_HOME"
DEFAULT_HOME = ".forecasting"


@dataclass(frozen=True)
class Settings:
    """Resolved locations of every piece of state the service keeps."""

    home: Path
    mlflow_tracking_uri: str

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Resolve the home folder (argument, ``FORECASTING_HOME``, ``./.forecasting``) and the MLflow URI."""
        root = Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
        return cls(home=root, mlflow_tracking_uri=uri)

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


def apply_environment(settings: Settings) -> None:
    """Point prefect and mlflow at the home folder; quiet their telemetry.

    Values the user already set win (``setdefault``), so ``PREFECT_API_URL`` or
    ``MLFLOW_TRACKING_URI`` aimed at a server keep working.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MPLBACKEND", "Agg")
