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
from rich.table import Table

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


def _default_configs() -> list[Path]:
    for root in (Path.cwd() / "configs", Path(__file__).resolve().parents[2] / "configs"):
        paths = [root / name for name in DEFAULT_CONFIGS]
        if all(p.is_file() for p in paths):
            return paths
    raise ForecastingError(f"could not find {DEFAULT_CONFIGS} in ./configs; pass --config")


@app.command()
def ingest(
    config: Annotated[list[Path] | None, typer.Option("--config", "-c", help="Ingest config(s) of live sources, e.g. configs/ingest/weather.yaml.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Ingest the bundled sample data instead (no network).")] = False,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="With --offline: bundled dataset(s); default all.")] = None,
    home: HomeOption = None,
) -> None:
    """Fetch new observations incrementally into the Parquet store: live (--config) or bundled (--offline)."""
    if bool(config) == offline or (dataset and not offline):
        err_console.print("[bold red]error:[/] pass --config FILE (live sources) or --offline [--dataset NAME] (bundled data)")
        raise typer.Exit(2)
    settings = setup_home(home)
    if config:
        from forecasting.config.ingest import load_ingest_config

        for path in config:
            run_or_exit(load_ingest_config, path)  # every config checked before anything is fetched
        from pipelines.ingest import ingest_source_flow

        results = [row for path in config for row in run_or_exit(ingest_source_flow, str(path), home=str(settings.home))]
    else:
        from pipelines.ingest import ingest_flow

        results = run_or_exit(ingest_flow, datasets=dataset or None, home=str(settings.home))
    table = Table(title=f"Ingested into {settings.store_dir}")
    columns = ("dataset", "series", "status", "fetched", "added", "updated", "quarantined", "filled", "open_gaps", "pending")
    for col in columns:
        table.add_column(col.replace("_", " "), justify="left" if col in columns[:3] else "right", no_wrap=True)
    for r in (s for d in results for s in d["series_reports"]):
        table.add_row(r["dataset"], r["series_id"], r["status"], *(str(r[c]) for c in columns[3:]))
    console.print(table)
    problems = [p for d in results for s in d["series_reports"] for p in s["problems"]]
    for line in problems:
        console.print(f"[yellow]data check:[/] {line}", highlight=False, soft_wrap=True)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config, e.g. configs/weather.yaml.")],
    home: HomeOption = None,
) -> None:
    """Train one model and register it in MLflow as the challenger; the promotion gate decides whether it becomes champion."""
    settings = setup_home(home)
    from forecasting.config.model import load_config

    run_or_exit(load_config, config)  # fail fast on a bad config, before any server starts
    from pipelines.train import train_flow

    summary = run_or_exit(train_flow, str(config), home=str(settings.home))
    _print_training([summary])


@app.command()
def predict(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Registered model name.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Take the model name from this config.")] = None,
    alias: Annotated[str, typer.Option(help="Registry alias to load.")] = "champion",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Forecast as on this date (UTC), seeing only data through it.")] = None,
    home: HomeOption = None,
) -> None:
    """Forecast every series of the model's dataset from models:/NAME@ALIAS; write Parquet."""
    settings = setup_home(home)
    if (model is None) == (config is None):
        err_console.print("[bold red]error:[/] pass exactly one of --model NAME or --config FILE")
        raise typer.Exit(2)
    if config is not None:
        from forecasting.config.model import load_config

        model = run_or_exit(load_config, config).name
    from rich.text import Text

    from pipelines.predict import predict_flow

    try:
        summary = predict_flow(model, alias=alias, home=str(settings.home), as_of=as_of)
    except ForecastingError as exc:
        # Soft-wrapped, unmarked: "model 'm' has no champion: ...; promote one with ..." stays one line in any log.
        err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)), soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"{summary['name']} v{summary['version']}: {summary['rows']} rows ({summary['series']} series x {summary['horizon']} steps) -> {summary['path']}")


@app.command()
def quickstart(
    config: Annotated[list[Path] | None, typer.Option("--config", "-c", help="Configs to train; default weather + stocks.")] = None,
    home: HomeOption = None,
) -> None:
    """Ingest, train and predict end to end on the bundled data, then print a summary."""
    settings = setup_home(home)
    from forecasting.config.model import load_config

    paths = config or run_or_exit(_default_configs)
    for path in paths:
        run_or_exit(load_config, path)
    from pipelines.quickstart import quickstart_flow

    result = run_or_exit(quickstart_flow, [str(p) for p in paths], home=str(settings.home))
    _print_training(result["trained"])
    for p in result["predicted"]:
        if "skipped" in p:
            console.print(f"forecasts  {p['name']}: none, {p['skipped']}", soft_wrap=True, highlight=False)
            continue
        console.print(f"forecasts  {p['name']} v{p['version']}: {p['rows']} rows -> {p['path']}", soft_wrap=True)
    console.print(f"\nBrowse the models:  [bold]{settings.ui_command()}[/]  then open http://127.0.0.1:5000", soft_wrap=True)


def _print_training(summaries: list[dict]) -> None:
    """One row per model and baseline: seasonal naive on every validation window, the statistical
    baselines (baseline.statistical) on the most recent windows of each series, the model on the same."""
    table = Table(title="Validation, original units (lower is better): the model against each baseline on the same windows")
    for col in ("model", "version", "baseline", "windows", "MAE", "base MAE", "RMSE", "base RMSE", "beats"):
        table.add_column(col, justify="left" if col in ("model", "baseline") else "right", no_wrap=True)
    for s in summaries:
        m = s["metrics"]
        if "val_mae" not in m:
            table.add_row(s["name"], s["version"], "-", "-", "-", "-", "-", "-", "no validation")
            continue
        season = s.get("season_length", 1)
        rows = [(f"seasonal naive ({season})" if season > 1 else "naive", int(m.get("val_windows", 0)) or "all",
                 m["val_mae"], m["val_baseline_mae"], m["val_rmse"], m["val_baseline_rmse"])]
        for name in ("ets", "theta", "arima"):
            if f"val_{name}_mae" in m:
                rows.append((name, int(m["val_stat_windows"]), m["val_stat_model_mae"], m[f"val_{name}_mae"],
                             m["val_stat_model_rmse"], m[f"val_{name}_rmse"]))
        for k, (baseline, windows, mae, base_mae, rmse, base_rmse) in enumerate(rows):
            table.add_row(
                s["name"] if k == 0 else "", s["version"] if k == 0 else "", baseline, str(windows),
                f"{mae:.4g}", f"{base_mae:.4g}", f"{rmse:.4g}", f"{base_rmse:.4g}",
                "[green]yes[/]" if mae < base_mae else "[red]no[/]",
            )
    console.print(table)
    for s in summaries:
        if "reason" in s:
            verdict = "[green]champion[/]" if s["promoted"] else "[yellow]not promoted[/]"
            console.print(f"{s['name']} v{s['version']}: {verdict}: {s['reason']}", soft_wrap=True, highlight=False)


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
