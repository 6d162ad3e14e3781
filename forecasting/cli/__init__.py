"""The ``forecast`` command line: the Typer app (``app``) and one module per command group
(``commands``, auto-registered).

The top of the stack: it parses, validates and calls the library or a Prefect flow in
``pipelines``; it holds no logic the library lacks.
"""
