"""Typed configs for every YAML the service reads: model (``model``), backtest settings
(``backtest``), ingestion (``ingest``) and monitoring thresholds (``monitor``).

Validation collects every problem and raises one ``ConfigError``. Config modules may import
``forecasting.errors`` and the data layer's calendar/source registries (to validate names);
nothing that trains, predicts or talks to MLflow or Prefect.
"""
