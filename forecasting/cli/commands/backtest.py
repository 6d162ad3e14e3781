"""`forecast backtest`: rolling-origin evaluation of a registered model, or of models trained per fold.

``--model NAME[@ALIAS] --dataset D`` judges a registered model on another dataset of its frequency,
without a config file; the model's frequency and columns are checked against the store before any
data loads (and before any server starts).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from forecasting.cli.app import HomeOption, console, err_console, run_or_exit, setup_home  # imported once app's names exist


def register(app: typer.Typer) -> None:
    app.command(name="backtest")(backtest)


def backtest(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Forecaster YAML; an optional 'backtest:' section holds the settings. Optional with --model.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="NAME, NAME@ALIAS or models:/NAME@ALIAS (alias default champion); default the config's name.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Judge the model on this stored dataset (same frequency) instead of its own.")] = None,
    train: Annotated[bool, typer.Option("--train", help="Train a model per fold from the config instead of loading one.")] = False,
    origins: Annotated[int | None, typer.Option("--origins", min=1, help="Most recent origins per series (default 30).")] = None,
    all_origins: Annotated[bool, typer.Option("--all-origins", help="Every allowed origin instead of the most recent N.")] = False,
    stride: Annotated[int | None, typer.Option("--stride", min=1, help="Steps between origins (default the horizon).")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", min=1, help="Steps scored per origin (default the model's).")] = None,
    refit: Annotated[str | None, typer.Option("--refit", help="With --train: never | always | N (every N origins).")] = None,
    window: Annotated[str | None, typer.Option("--window", help="With --train: expanding | sliding.")] = None,
    train_size: Annotated[int | None, typer.Option("--train-size", min=1, help="Points per series of a sliding window.")] = None,
    include_in_sample: Annotated[bool, typer.Option("--include-in-sample", help="Also score origins the model learned from (flagged).")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default <home>/backtests/<model>/<version>).")] = None,
    home: HomeOption = None,
) -> None:
    """Backtest over rolling origins against naive, seasonal naive, drift and mean; write a report, log to MLflow."""
    if model is not None and train:
        err_console.print("[bold red]error:[/] pass --model NAME@ALIAS or --train, not both")
        raise typer.Exit(2)
    if origins is not None and all_origins:
        err_console.print("[bold red]error:[/] pass --origins N or --all-origins, not both")
        raise typer.Exit(2)
    if config is None and model is None:
        err_console.print("[bold red]error:[/] pass --config FILE, --model NAME@ALIAS, or both")
        raise typer.Exit(2)
    if config is None and train:
        err_console.print("[bold red]error:[/] --train trains from a config: pass --config FILE")
        raise typer.Exit(2)
    settings = setup_home(home)
    overrides = _overrides(origins, all_origins, stride, horizon, refit, window, train_size, include_in_sample)
    from forecasting.config.backtest import check_mode, parse_backtest, parse_model_ref  # cheap: config only
    from forecasting.config.model import load_backtest_config

    if config is not None:
        _, bt = run_or_exit(load_backtest_config, config, overrides)  # fail fast, before any server starts
    else:
        bt = run_or_exit(parse_backtest, overrides, source="backtest options")
    run_or_exit(check_mode, bt, train=train)
    if model is not None:
        name, alias = run_or_exit(parse_model_ref, model)
        if dataset is not None:
            run_or_exit(_check_dataset, settings, name, alias, dataset)  # before any row loads or server starts
    from pipelines.backtest import backtest_flow  # Prefect and MLflow: only after setup_home points them at the home

    summary = run_or_exit(
        backtest_flow, str(config) if config else None, model=model, train=train, overrides=overrides,
        out_dir=str(out) if out else None, home=str(settings.home), dataset=dataset,
    )
    _print(summary)


def _check_dataset(settings: Any, name: str, alias: str, dataset: str) -> None:
    """The registered model's frequency and columns against the dataset's file footers: refuses in seconds."""
    from forecasting.data.store import ObservationStore
    from forecasting.evaluation.dataset_fit import check_dataset_fits, profile_dataset
    from forecasting.registry import models as registry

    registry.configure(settings.mlflow_tracking_uri)
    trained = registry.load_trained(name, registry.resolve(name, alias).version)
    if dataset == trained.config.data.dataset:
        return  # its own data: it was trained on it
    check_dataset_fits(trained.config, profile_dataset(ObservationStore(settings.store_dir), dataset))


def _overrides(
    origins: int | None,
    all_origins: bool,
    stride: int | None,
    horizon: int | None,
    refit: str | None,
    window: str | None,
    train_size: int | None,
    include_in_sample: bool,
) -> dict[str, Any]:
    """Only the options given: they win over the YAML section, which wins over the defaults."""
    given = {"origins": origins, "stride": stride, "horizon": horizon, "refit": refit, "window": window, "train_size": train_size}
    out: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if all_origins:
        out["origins"] = None
    if include_in_sample:
        out["in_sample"] = "include"
    return out


def _print(summary: dict) -> None:
    from forecasting.evaluation.report import LABELS  # reaches torch through evaluation.backtest

    rows = summary["rows"]
    metrics = [k for k in rows[0] if k not in ("forecaster", "skill")]
    table = Table(
        title=f"Backtest of {summary['label']}: {summary['origins']} origins x {summary['series']} series, "
        f"horizon {summary['horizon']} (lower is better)"
    )
    table.add_column("forecaster", no_wrap=True)
    for metric in [*metrics, "skill"]:
        table.add_column(LABELS.get(metric, metric.replace("_", " ")), justify="right", no_wrap=True)
    for row in rows:
        cells = ["-" if isinstance(row[m], float) and math.isnan(row[m]) else f"{row[m]:.4g}" for m in metrics]
        skill = row["skill"]
        shown = "-" if math.isnan(skill) else f"{skill:+.1%}"
        name = f"[bold]{row['forecaster']}[/]" if row["forecaster"] == "model" else row["forecaster"]
        table.add_row(name, *cells, shown)
    console.print(table)
    colour = "green" if summary["beats_seasonal_naive"] else "bold red"
    console.print(f"[{colour}]{summary['verdict']}[/]", highlight=False)
    for note in summary["notes"]:
        console.print(f"[dim]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"report  {summary['report_dir']}/report.md", soft_wrap=True)
    console.print(f"MLflow run {summary['run_id']} (experiment of backtests, tags model_name/model_version)", soft_wrap=True)
