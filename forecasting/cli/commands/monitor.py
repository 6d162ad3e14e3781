"""`forecast monitor`: realised vs promised error of the forecasts a model issued."""

import math
from typing import Annotated

import typer
from rich.table import Table

from forecasting.cli.app import (  # imported once app's names exist
    ConfigOption,
    HomeOption,
    console,
    error_line,
    model_or_exit,
    run_or_exit,
    setup_home,
)


def register(app: typer.Typer) -> None:
    app.command(name="monitor")(monitor)


def monitor(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Registered model NAME (every version it logged forecasts with).")] = None,
    config: ConfigOption = None,
    window_days: Annotated[str | None, typer.Option("--window-days", help="Rolling windows in days, comma separated (default from the monitor settings: 7,30).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as on this date (actuals through it only).")] = None,
    mase_factor: Annotated[float | None, typer.Option("--mase-factor", help="Alert when realised MASE > factor x promised (default 1.5).")] = None,
    max_level_shift: Annotated[float | None, typer.Option("--max-level-shift", help="Drift alert: recent mean vs the same season in training, in std (default 1.0).")] = None,
    max_scale_ratio: Annotated[float | None, typer.Option("--max-scale-ratio", help="Drift alert: recent std / reference std outside [1/r, r] (default 2.0).")] = None,
    retrain: Annotated[bool | None, typer.Option("--retrain/--no-retrain", help="On alert, start the retrain deployment (default: retrain_on_alert of the monitor settings).")] = None,
    retrain_deployment: Annotated[str | None, typer.Option("--retrain-deployment", help="'flow/deployment' to start on alert (default: the train deployment of configs/schedules.yaml for this model).")] = None,
    settings_file: Annotated[str | None, typer.Option("--settings", help="Monitor settings YAML (default configs/monitor/settings.yaml).")] = None,
    home: HomeOption = None,
) -> None:
    """Score logged forecasts against the actuals that arrived; print realised vs promised; exit 1 on alert.

    Unset options come from the monitor settings file (docs/monitoring.md), so
    the CLI and the scheduled flow judge a model by the same thresholds.
    """
    windows = None
    if window_days is not None:
        try:
            windows = [int(d) for d in window_days.split(",") if d.strip()]
        except ValueError:
            error_line(f"--window-days {window_days!r} is not a list of day counts, e.g. 7,30")
            raise typer.Exit(2) from None
    name, _ = model_or_exit(model, config, allow_alias=False)
    settings = setup_home(home)
    from forecasting.config.monitor import load_settings

    run_or_exit(load_settings, name, settings_file, {  # a bad settings file fails before any server starts
        "windows_days": tuple(windows) if windows else None, "mase_factor": mase_factor, "level_shift": max_level_shift,
        "scale_ratio": max_scale_ratio, "retrain_on_alert": retrain, "retrain_deployment": retrain_deployment,
    })
    from pipelines.monitor import monitor_flow  # Prefect and MLflow: only after setup_home points them at the home

    summary = run_or_exit(monitor_flow, name, window_days=windows, home=str(settings.home), as_of=as_of,
                          mase_factor=mase_factor, level_shift=max_level_shift, scale_ratio=max_scale_ratio,
                          retrain_on_alert=retrain, retrain_deployment=retrain_deployment,
                          settings_path=settings_file, fail_on_alert=False)
    _print(summary)
    if summary["alert"]:
        raise typer.Exit(1)


def _print(summary: dict) -> None:
    table = Table(title=f"Realised vs promised error of {summary['name']} ({summary['scored']} of {summary['logged']} forecasts scored)")
    for col in ("version", "window", "points", "MAE", "MASE", "promised", "ratio", "bias", "coverage", "alert"):
        table.add_column(col, justify="left" if col in ("version", "alert") else "right", no_wrap=col != "alert")

    def fmt(value: object, spec: str) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)

    for r in summary["versions"]:
        table.add_row(
            f"v{r['model_version']}", f"{r['window_days']}d", str(r["n"]), fmt(r["mae"], ".4g"), fmt(r["mase"], ".3g"),
            fmt(r["promised_mase"], ".3g"), fmt(r["ratio"], ".2f"), fmt(r["bias"], "+.4g"), fmt(r.get("coverage"), ".0%"),
            f"[red]{r['alert']}[/]" if r["alert"] else "[green]ok[/]",
        )
    console.print(table)
    for line in summary["alerts"]:
        console.print(f"[bold red]alert:[/] {line}", highlight=False, soft_wrap=True)
    if not summary["alerts"]:
        console.print("[green]no alert[/]")
    else:
        console.print(summary["retrain"]["message"], highlight=False, soft_wrap=True)
    console.print(f"MLflow run {summary['run_id']} (experiment monitoring)", soft_wrap=True)
