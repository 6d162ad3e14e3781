"""Running the service over time: the forecast log (what was promised) and monitoring
(realised error, coverage and drift against what was promised).

May import ``evaluation``, ``config``, ``data`` and ``errors``; never MLflow or Prefect.
"""
