"""LSTM forecasting service: the library (knows nothing of Prefect).

The Python API (docs/python-api.md) is re-exported here from ``forecasting.api``:

    from forecasting import Forecaster, load_config, fit, forecast, backtest

Its names are resolved on first use, so ``import forecasting`` (and every ``forecasting.*`` import,
which runs this file first) loads neither torch nor MLflow and changes no settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["BacktestRun", "Forecaster", "backtest", "fit", "forecast", "load_config"]

if TYPE_CHECKING:
    from forecasting.api import BacktestRun, Forecaster, backtest, fit, forecast, load_config


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("forecasting.api"), name)
    raise AttributeError(f"module 'forecasting' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
