"""What every flow does first: resolve the home folder and point MLflow at its store."""

from __future__ import annotations

from forecasting.settings import Settings


def resolve_settings(home: str | None) -> Settings:
    """Settings for a flow run; the registry is configured here, not at import."""
    from forecasting import registry

    settings = Settings.from_env(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    registry.configure(settings.mlflow_tracking_uri)
    return settings
