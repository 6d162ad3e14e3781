"""`forecast tune`: hyperparameter search of a config with Optuna; write the best config, optionally train it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from forecasting.cli.app import HomeOption  # cli imports this module once its own names exist


def register(app: typer.Typer) -> None:
    app.command(name="tune")(tune)


def tune(
    config: Annotated[Path, typer.Option("--config", "-c", help="Forecaster YAML to tune, e.g. configs/weather.yaml.")],
    trials: Annotated[str, typer.Option("--trials", "-n", help="Trials to run (a whole number >= 1).")],
    timeout: Annotated[str | None, typer.Option("--timeout", help="Start no new trial after this many seconds (> 0).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Best config YAML (default <home>/tuning/<name>/<study>.best.yaml).")] = None,
    space: Annotated[Path | None, typer.Option("--space", help="Search space YAML (default: forecasting.tune.SearchSpace; see configs/tune/space.yaml).")] = None,
    register_best: Annotated[bool, typer.Option("--register", help="Train the best config and register it, as `forecast train` does.")] = False,
    home: HomeOption = None,
) -> None:
    """Search lookback, layers, hidden size, dropout, learning rate, transform and anchor by validation MASE.

    Each trial is a nested MLflow run under one parent run (experiment 'tuning') that keeps the
    best parameters, the best value and Optuna's plots. Trials run on the configured task runner
    (FORECASTING_TASK_RUNNER / FORECASTING_TASK_WORKERS), one at a time by default.
    """
    from forecasting.cli.app import err_console, run_or_exit, setup_home

    n_trials, seconds = _check_budget(trials, timeout, err_console)
    settings = setup_home(home)
    from forecasting.config.model import load_config

    loaded = run_or_exit(load_config, config)  # fail fast on a bad config or space, before any server starts
    from forecasting.tune import check_tunable, load_space

    run_or_exit(check_tunable, loaded)
    run_or_exit(load_space, space)
    from pipelines.tune import tune_flow

    summary = run_or_exit(
        tune_flow, str(config), n_trials, timeout=seconds, out=str(out) if out else None,
        space_path=str(space) if space else None, home=str(settings.home),
    )
    _print(summary)
    if register_best:
        from forecasting.cli.commands.run import print_training
        from pipelines.train import train_flow

        trained = run_or_exit(train_flow, summary["out"], home=str(settings.home))
        print_training([trained])


def _check_budget(trials: str, timeout: str | None, err_console) -> tuple[int, float | None]:  # noqa: ANN001 - a rich Console
    """``--trials`` a whole number >= 1, ``--timeout`` a finite number of seconds > 0: else one line and exit 2."""
    problems = []
    try:
        n_trials = int(trials)
        if n_trials < 1:
            raise ValueError
    except ValueError:
        n_trials = 0
        problems.append(f"--trials must be a whole number >= 1, got {trials!r}")
    seconds = None
    if timeout is not None:
        try:
            seconds = float(timeout)
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError
        except ValueError:
            problems.append(f"--timeout must be a number of seconds > 0, got {timeout!r}")
    if problems:
        err_console.print("[bold red]error:[/] " + "; ".join(problems), highlight=False)
        raise typer.Exit(2)
    return n_trials, seconds


def _print(summary: dict) -> None:
    from rich.table import Table

    from forecasting.cli.app import console
    from forecasting.tune import OBJECTIVE  # already imported by the tuning that made ``summary``

    best = summary["best"]["number"]
    rows = summary["trials"]
    params = sorted({k for r in rows for k in r} - {"trial", "state", OBJECTIVE, "epochs", "seconds", "error"})
    table = Table(title=f"Tuning {summary['name']}: {len(rows)} trials, validation MASE (lower is better)")
    for col in ("trial", "state", "val MASE", *params, "epochs", "seconds"):
        table.add_column(SHORT.get(col, col.replace("_", " ")), justify="left" if col == "state" else "right", no_wrap=True)
    for r in rows:
        cells = [_cell(r.get(p)) for p in params]
        mark = "[bold green]" if r["trial"] == best else ""
        end = "[/]" if mark else ""
        table.add_row(f"{mark}{r['trial']}{end}", r["state"], f"{mark}{_cell(r[OBJECTIVE])}{end}", *cells,
                      _cell(r["epochs"]), _cell(r["seconds"]))
    console.print(table)
    for r in rows:
        if r["error"] and r["state"] == "fail":
            console.print(f"[yellow]trial {r['trial']} failed:[/] {r['error']}", highlight=False, soft_wrap=True)
    for note in summary["notes"]:
        console.print(f"[dim]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(f"best trial {best}: val MASE {summary['best']['value']:.4g} -> {summary['out']}", soft_wrap=True,
                  highlight=False)
    console.print(f"MLflow parent run {summary['parent_run_id']} (experiment 'tuning', study {summary['study']})",
                  soft_wrap=True, highlight=False)


SHORT = {"trial": "#", "hidden_size": "hidden", "num_layers": "layers", "learning_rate": "lr",
         "target_transform": "transform", "seconds": "s"}


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
