"""`forecast train`, `forecast predict` and `forecast quickstart`: the main job, one flow per command."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from forecasting.cli.app import (  # imported once app's names exist
    ConfigOption,
    HomeOption,
    ModelOption,
    console,
    default_configs,
    error_line,
    model_or_exit,
    run_or_exit,
    setup_home,
)


def register(app: typer.Typer) -> None:
    app.command(name="train")(train)
    app.command(name="predict")(predict)
    app.command(name="quickstart")(quickstart)


def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Forecaster YAML, e.g. configs/weather.yaml.")],
    fresh: Annotated[bool, typer.Option("--fresh", help="Start over: ignore the checkpoint an interrupted training of this config and data left behind.")] = False,
    home: HomeOption = None,
) -> None:
    """Train one model and register it in MLflow as the challenger; the promotion gate decides whether it becomes champion."""
    settings = setup_home(home)
    from forecasting.config.model import load_config

    run_or_exit(load_config, config)  # fail fast on a bad config, before any server starts
    from pipelines.train import train_flow

    summary = run_or_exit(train_flow, str(config), home=str(settings.home), fresh=fresh)
    print_training([summary])


def predict(
    model: ModelOption = None,
    config: ConfigOption = None,
    alias: Annotated[str | None, typer.Option("--alias", hidden=True, help="Older spelling of --model NAME@ALIAS.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Forecast as on this date (UTC), seeing only data through it.")] = None,
    home: HomeOption = None,
) -> None:
    """Forecast every series of the model's dataset with models:/NAME@ALIAS (default the champion); write Parquet."""
    name, given = model_or_exit(model, config, default_alias=None)
    if alias is not None and given is not None and alias != given:
        error_line(f"--model names alias '{given}' and --alias '{alias}': pass one")
        raise typer.Exit(2)
    alias = given or alias or "champion"
    settings = setup_home(home)
    from forecasting.registry import models as registry  # MLflow: only after setup_home points it at the home
    from forecasting.registry.promotion import require_champion

    registry.configure(settings.mlflow_tracking_uri)
    # An unknown model, alias or a name without champion: one line, before any server starts.
    if alias == registry.CHAMPION:
        run_or_exit(require_champion, name)
    else:
        run_or_exit(registry.resolve, name, alias)
    from pipelines.predict import predict_flow

    summary = run_or_exit(predict_flow, name, alias=alias, home=str(settings.home), as_of=as_of)
    console.print(f"{summary['name']} v{summary['version']}: {summary['rows']} rows ({summary['series']} series x "
                  f"{summary['horizon']} steps) -> {summary['path']}", soft_wrap=True, highlight=False)


def quickstart(
    config: Annotated[list[Path] | None, typer.Option("--config", "-c", help="Configs to train; default weather + stocks.")] = None,
    home: HomeOption = None,
) -> None:
    """Ingest the bundled data, then train, register and forecast each config: the whole service in one command."""
    settings = setup_home(home)
    from forecasting.config.model import load_config

    paths = config or run_or_exit(default_configs)
    for path in paths:
        run_or_exit(load_config, path)
    from pipelines.quickstart import quickstart_flow

    result = run_or_exit(quickstart_flow, [str(p) for p in paths], home=str(settings.home))
    print_training(result["trained"])
    for p in result["predicted"]:
        if "skipped" in p:
            console.print(f"forecasts  {p['name']}: none, {p['skipped']}", soft_wrap=True, highlight=False)
            continue
        console.print(f"forecasts  {p['name']} v{p['version']}: {p['rows']} rows -> {p['path']}", soft_wrap=True)
    console.print(f"\nBrowse the models:  [bold]{settings.ui_command()}[/]  then open http://127.0.0.1:5000", soft_wrap=True)


def print_training(summaries: list[dict]) -> None:
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


