"""LSTM forecasting service: the library (knows nothing of Prefect)."""

__version__ = "0.1.0"
