"""Judging forecasts: metrics as pure functions, the naive-family baselines, rolling-origin
origins and backtests, and the backtest report with its plots.

May import the model, ``inference``, ``train`` (refit backtests), ``prep``, ``config`` and
``data``; never MLflow or Prefect.
"""
