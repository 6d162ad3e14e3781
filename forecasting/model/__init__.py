"""The forecaster itself: the recurrent network (``network``, shapes commented), the
Lightning module and its batchers (``lightning``), and ``TrainedForecaster``, the
plain-file bundle of config, scaler, window spec and weights (``forecaster``).

May import ``prep``, ``config`` and ``errors``; never MLflow or Prefect.
"""
