"""`forecast ingest`: observations into the Parquet store, from live sources or the bundled data."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from forecasting.cli.app import HomeOption, console, err_console, run_or_exit, setup_home  # imported once app's names exist


def register(app: typer.Typer) -> None:
    app.command(name="ingest")(ingest)


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


