"""The only place that imports MLflow: logging runs, registering versions and their pyfunc
(``models``; the pyfunc class is ``serving``, logged as code through ``pyfunc_model``), the
promotion rule (``policy``) and champion/challenger promotion with its locks (``promotion``).

May import everything in the library below it; never Prefect.
"""
