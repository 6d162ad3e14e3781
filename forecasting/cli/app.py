"""`forecast`: the command line. Thin: parse, set up the home folder, call a flow, print.

Prefect and MLflow are imported only inside commands, after the environment
points them at the home folder (both read their settings at import). Prefect is
touched only by commands that run a flow: ``promote``, ``rollback``, ``status``
and ``serve --dry-run`` start no API server, and a config is checked before any
server starts.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from forecasting.errors import ConfigError, ForecastingError
from forecasting.settings import Settings, apply_environment

PIPED_WIDTH = 10_000
"""Console width when output goes to a file or pipe (scheduled jobs' logs): wide enough that no table
cell is cut ("chang…") and no line wraps; Rich sizes tables to their content, not to this width."""


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPED_WIDTH)


class _App(typer.Typer):
    """The ``forecast`` entry point: as Typer, plus SIGTERM/Ctrl-C handling for the real process only
    (``CliRunner`` calls the click command directly, so a test process keeps its own handlers)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _install_signal_handlers()
        return super().__call__(*args, **kwargs)


app = _App(add_completion=False, no_args_is_help=True, help="Train, register and run LSTM forecasters.")
console = _console()
err_console = _console(stderr=True)

HomeOption = Annotated[Path | None, typer.Option("--home", help="State folder (default $FORECASTING_HOME or ./.forecasting).")]
ModelOption = Annotated[str | None, typer.Option("--model", "-m", help="Registered model: NAME, NAME@ALIAS or models:/NAME@ALIAS.")]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Forecaster YAML; the model is the one it names.")]
DEFAULT_CONFIGS = ("weather.yaml", "stocks.yaml")


def error_line(message: object) -> None:
    """One ``error: ...`` line on stderr, unwrapped and without markup, so a log keeps it whole."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(message)), soft_wrap=True, highlight=False)


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


_ROOT = Path(__file__).resolve().parents[2]
_PROJECT_DIRS = (str(_ROOT / "forecasting") + os.sep, str(_ROOT / "pipelines") + os.sep)


class _TerminalNoise(logging.Filter):
    """The terminal shows the project's INFO lines (its own loggers and its flows' ``get_run_logger``) and
    only warnings and errors of everything else: Prefect's "Beginning flow run", "Finished in state",
    "Starting temporary server" stay in the Prefect API and UI, where they belong.

    A run logger is Prefect's, whoever calls it; the caller's file tells the project's lines apart.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or record.name.split(".")[0] in ("forecasting", "pipelines"):
            return True
        return record.pathname.startswith(_PROJECT_DIRS)


def prepare_flow_logging() -> None:
    """Once Prefect is imported (a command is about to run a flow): filter its console, let the project's
    INFO lines reach the flow run's log in the API. Never imports Prefect itself; runs before every flow,
    because Prefect may have set up its logging again since (new handlers get the filters too)."""
    if "prefect.logging.configuration" not in sys.modules:
        return
    logging.getLogger("forecasting").setLevel(logging.INFO)  # sent to the API by PREFECT_LOGGING_EXTRA_LOGGERS
    for handler in [h for name in ("prefect", "mlflow", "") for h in logging.getLogger(name or None).handlers]:
        console_like = isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
        if not console_like or type(handler).__module__.startswith("_pytest"):  # pytest's capture sees everything
            continue
        if not any(isinstance(f, _TerminalNoise) for f in handler.filters):
            handler.addFilter(_HideUserErrors())
            handler.addFilter(_TerminalNoise())


def setup_home(home: Path | None) -> Settings:
    """Resolve the home folder and set the environment; call first in every command. Imports neither
    Prefect nor MLflow, so a command that runs no flow starts no server."""
    try:
        settings = Settings.from_env(home)
    except ForecastingError as exc:
        error_line(exc)
        raise typer.Exit(1) from None
    apply_environment(settings)
    # Library notices that say nothing to an operator (deprecations inside Lightning,
    # MLflow's schema hints and pickling advice).
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\.|$)")
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    return settings


def prefect_failure(exc: BaseException) -> str | None:
    """The one line for Prefect failing to start or reach its API (with the remedy), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if isinstance(exc, RuntimeError) and "ephemeral Prefect API server" in text:
            timeout = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20")
            return (
                f"the temporary Prefect API server did not start within {timeout} s; set PREFECT_API_URL to a "
                "running Prefect server (`prefect server start`), or raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
            )
        if isinstance(exc, RuntimeError) and "Failed to reach API" in text:
            return (
                f"cannot reach the Prefect API at PREFECT_API_URL={os.environ.get('PREFECT_API_URL', '')!r}; start that "
                "server, or unset PREFECT_API_URL to use a temporary local one"
            )
        exc = exc.__cause__ or exc.__context__
    return None


def run_or_exit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a flow (or a config check); a user error, or Prefect failing to start, becomes one
    ``error:`` line and exit code 1."""
    prepare_flow_logging()
    try:
        return fn(*args, **kwargs)
    except ForecastingError as exc:
        error_line(exc)
        raise typer.Exit(1) from None
    except RuntimeError as exc:
        line = prefect_failure(exc)
        if line is None:
            raise
        error_line(line)
        raise typer.Exit(1) from None


def default_configs() -> list[Path]:
    for root in (Path.cwd() / "configs", Path(__file__).resolve().parents[2] / "configs"):
        paths = [root / name for name in DEFAULT_CONFIGS]
        if all(p.is_file() for p in paths):
            return paths
    raise ForecastingError(f"could not find {DEFAULT_CONFIGS} in ./configs; pass --config")


def model_ref(
    model: str | None, config: Path | None, *, default_alias: str | None = "champion", allow_alias: bool = True
) -> tuple[str, str | None]:
    """``--model NAME[@ALIAS]`` or ``--config FILE`` -> ``(name, alias)``: the one way every command names a model.

    ``default_alias`` applies when ``--model`` names no alias, or the config gives the name;
    ``allow_alias=False`` for commands that work on the name itself (rollback, monitor). Exactly one of the
    two options is required; a config is loaded and checked, so a bad one fails before any server starts.
    """
    if (model is None) == (config is None):
        raise ConfigError("pass exactly one of --model NAME[@ALIAS] or --config FILE")
    if config is not None:
        from forecasting.config.model import load_config

        return load_config(config).name, default_alias
    text = model.strip().removeprefix("models:/")
    name, at, given = text.partition("@")
    if not name or "/" in name or (at and not given):
        raise ConfigError(f"--model {model!r} is not NAME, NAME@ALIAS or models:/NAME@ALIAS")
    if given and not allow_alias:
        raise ConfigError(f"--model {model!r}: this command works on every version of the model; pass --model {name}")
    return name, given or default_alias


def model_or_exit(
    model: str | None, config: Path | None, *, default_alias: str | None = "champion", allow_alias: bool = True
) -> tuple[str, str | None]:
    """``model_ref``; a bad reference is a usage error (exit 2), a bad config file a user error (exit 1)."""
    try:
        return model_ref(model, config, default_alias=default_alias, allow_alias=allow_alias)
    except ForecastingError as exc:
        error_line(exc)
        usage = config is None or model is not None  # not a config that failed its checks
        raise typer.Exit(2 if usage else 1) from None


# --- Stopping: SIGTERM and Ctrl-C leave nothing running -------------------------------------------

GRACE_SECONDS = 10.0
"""After SIGTERM or Ctrl-C: time for the flow to be marked crashed and Prefect's temporary server to stop
through the normal exit path, before the watchdog stops the server itself and ends the process."""
_stopping = threading.Event()


def stop_prefect_servers() -> None:
    """Stop Prefect's temporary API servers (uvicorn child processes) this process started, if any."""
    module = sys.modules.get("prefect.server.api.server")
    if module is None:
        return
    for server in list(module.SubprocessASGIServer._instances.values()):
        try:
            server.stop()
        except Exception:  # noqa: BLE001, S110 - best effort while exiting; the next server still gets stopped
            pass


def _exit_now(code: int) -> None:
    stop_prefect_servers()
    os._exit(code)


def _on_signal(signum: int, frame: object) -> None:
    """First signal: unwind normally (the flow run is recorded as crashed, ``atexit`` stops Prefect's
    temporary server), with a watchdog in case unwinding stalls; a second signal: stop now."""
    code = 128 + signum
    if _stopping.is_set():
        _exit_now(code)
    _stopping.set()
    name = signal.Signals(signum).name
    os.write(2, f"\nstopping ({name})...\n".encode())  # not Rich: the main thread may be inside a print

    def watchdog() -> None:
        time.sleep(GRACE_SECONDS)
        os.write(2, f"still stopping after {GRACE_SECONDS:.0f} s: ending now\n".encode())
        _exit_now(code)

    threading.Thread(target=watchdog, name="forecast-stop-watchdog", daemon=True).start()
    fetching = sys.modules.get("forecasting.data.sources.http")  # loaded only by commands that fetch
    if fetching is not None:
        fetching.request_stop()  # a fetch in a worker thread ends at its next chunk, not when its server stops trickling
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(code)


def _install_signal_handlers() -> None:
    """SIGTERM (a scheduler, ``kill``, a container stop) is handled like Ctrl-C: Python unwinds.

    Python's default SIGTERM action ends the process at once, so ``atexit`` never stops Prefect's
    temporary server and its uvicorn process is orphaned. Prefect's own SIGTERM bridge (during a flow
    run) re-sends the signal to the handler it found, which is this one.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _on_signal)


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
