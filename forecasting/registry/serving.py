"""The pyfunc a registered version serves: history frame in, forecast frame (DESIGN.md contract) out.

Logged as code, not as a pickle: ``pyfunc_model.py`` (MLflow's "models from code") is the file
MLflow stores and runs to build this class, and the weights, config and scaler sit beside it as plain
files. Nothing in a version is unpickled when it loads (docs/security.md).
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd

from forecasting.errors import ForecastingError


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
        out = select_quantiles(out, (params or {}).get("quantiles"), self.trained.config.name)
        out["model_name"] = self.model_name
        out["model_version"] = self.model_version
        out["run_id"] = self.run_id
        return out


def select_quantiles(out: pd.DataFrame, wanted: Any, name: str) -> pd.DataFrame:
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
