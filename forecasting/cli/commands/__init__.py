"""Extra `forecast` sub-commands, one module each.

Every module here defines ``register(app: typer.Typer) -> None``; ``forecasting.cli.app``
discovers and registers them, so a new command never edits the core CLI.
Modules must import cheaply (heavy imports inside the command function).
"""
