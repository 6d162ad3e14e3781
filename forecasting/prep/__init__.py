"""Everything between stored observations and tensors: the zero-copy window index and its
splits (``windows``), target transforms, per-series scaling and calendar/covariate features.

Used alike by training, inference and backtests. May import ``config``, ``data`` and
``errors``; never the model, MLflow or Prefect.
"""
