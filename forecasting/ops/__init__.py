"""Running the service over time: the forecast log (what was promised), monitoring
(realised error, coverage and drift against what was promised) and health (what needs a person).

May import ``evaluation``, ``config``, ``data`` and ``errors``; never MLflow or Prefect.
"""
