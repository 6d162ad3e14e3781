"""Shared test settings: every piece of state in one temp dir, set before prefect or mlflow import.

Slow things are built once per session: the Prefect test harness (a real
temporary API server and database) and a tiny trained model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="forecasting-tests-"))
for _key, _value in {
    "PREFECT_HOME": str(_ROOT / "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_TRACKING_URI": f"sqlite:///{_ROOT / 'session-mlflow.db'}",
    "FORECASTING_HOME": str(_ROOT / "home"),
    "MPLCONFIGDIR": str(_ROOT / "mpl"),
    "MPLBACKEND": "Agg",
    "XDG_CACHE_HOME": str(_ROOT / "cache"),
    "XDG_CONFIG_HOME": str(_ROOT / "config"),
    "GIT_PYTHON_REFRESH": "quiet",
    "OMP_NUM_THREADS": "2",
}.items():
    os.environ[_key] = _value
os.environ.pop("PREFECT_API_URL", None)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def synthetic_frame(
    n_series: int = 3,
    length: int = 400,
    *,
    freq: str = "h",
    period: int = 24,
    noise: float = 0.05,
    seed: int = 0,
    covariates: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Noisy seasonal series with different levels: learnable, deterministic."""
    rng = np.random.default_rng(seed)
    frames = []
    t = np.arange(length)
    for i in range(n_series):
        level = 10.0 * (i + 1)
        values = level + 3.0 * np.sin(2 * np.pi * (t + 3 * i) / period) + noise * rng.standard_normal(length)
        frame = pd.DataFrame(
            {
                "series_id": f"synthetic/s{i}",
                "timestamp": pd.date_range("2024-01-01", periods=length, freq=freq, tz="UTC"),
                "target": values,
            }
        )
        for c in covariates:
            frame[c] = np.cos(2 * np.pi * t / period) + 0.01 * rng.standard_normal(length)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def tiny_config_dict(**overrides) -> dict:
    """A config that trains in about a second on ``synthetic_frame``."""
    raw = {
        "name": "tiny-synthetic",
        "data": {"dataset": "synthetic", "freq": "h"},
        "window": {"lookback": 48, "horizon": 12, "stride": 2},
        "model": {"hidden_size": 16, "num_layers": 2, "dropout": 0.0},
        "training": {"max_epochs": 4, "batch_size": 64, "learning_rate": 0.01, "patience": 2},
        # Statistical baselines off: each would add seconds to every tiny training; tests that check them
        # (and the shared tiny_fit) turn them on.
        "baseline": {"season_length": 24, "statistical": []},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            raw[key] = {**raw.get(key, {}), **value}
        else:
            raw[key] = value
    return raw


@pytest.fixture(scope="session")
def prefect_harness():
    """One real temporary Prefect API + database for the whole session (~16 s to start)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        # A sync flow otherwise waits ~1 s for its heartbeat thread at the end.
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture(scope="session")
def tiny_fit():
    """A tiny model trained once on synthetic data, shared by read-only tests."""
    from forecasting.config.model import parse_config
    from forecasting.train import fit

    config = parse_config(tiny_config_dict(baseline={"statistical": ["ets", "theta"]}))
    frame = synthetic_frame()
    return config, frame, fit(config, frame, checkpoint_dir=_ROOT)


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A fresh SQLite MLflow store with artifacts in ``tmp_path``."""
    from forecasting.registry import models as registry

    previous = os.environ["MLFLOW_TRACKING_URI"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    registry.configure(uri)
    yield tmp_path
    registry.configure(previous)
