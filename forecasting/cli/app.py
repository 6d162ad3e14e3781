"""`forecast`: the command line. Thin: parse, set up the home folder, call a flow, print.

Prefect and MLflow are imported only inside commands, after the environment
points them at the home folder (both read their settings at import).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from forecasting.errors import ForecastingError
from forecasting.settings import Settings, apply_environment

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train, register and run LSTM forecasters.")
# Wide enough for the summary table and unbroken paths when output is piped or logged.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

HomeOption = Annotated[Path | None, typer.Option("--home", help="State folder (default $FORECASTING_HOME or ./.forecasting).")]
DEFAULT_CONFIGS = ("weather.yaml", "stocks.yaml")


def _user_error_names() -> set[str]:
    names, todo = set(), [ForecastingError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


class _HideUserErrors(logging.Filter):
    """Keeps Prefect's console quiet about user errors: the CLI prints them once, without a traceback.

    Sits on console handlers only, so the Prefect API (and UI) still records the failed runs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ForecastingError):
            return False
        message = record.getMessage()
        return not any(f"{name}(" in message or f"{name}:" in message for name in _user_error_names())


def setup_home(home: Path | None) -> Settings:
    """Resolve the home folder and set the environment; call first in every command."""
    settings = Settings.from_env(home)
    apply_environment(settings)
    # Library notices that say nothing to an operator (deprecations inside Lightning,
    # MLflow's schema hints and pickling advice).
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\.|$)")
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    import prefect.main  # noqa: F401  (sets up logging handlers; the filter must sit on them)

    log_filter = _HideUserErrors()
    for handler in logging.getLogger("prefect").handlers + logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.addFilter(log_filter)
    return settings


def run_or_exit(fn, *args, **kwargs):  # noqa: ANN001, ANN201 - any callable
    """Call a flow; a user error becomes one red line and exit code 1."""
    try:
        return fn(*args, **kwargs)
    except ForecastingError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


def default_configs() -> list[Path]:
    for root in (Path.cwd() / "configs", Path(__file__).resolve().parents[2] / "configs"):
        paths = [root / name for name in DEFAULT_CONFIGS]
        if all(p.is_file() for p in paths):
            return paths
    raise ForecastingError(f"could not find {DEFAULT_CONFIGS} in ./configs; pass --config")


def _register_commands() -> None:
    import importlib
    import pkgutil

    from forecasting.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"forecasting.cli.commands.{info.name}").register(app)


_register_commands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
