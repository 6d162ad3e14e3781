"""`forecast ingest`: observations into the Parquet store, from live sources, one file, or the bundled data.

The summary scales to thousands of series: totals per dataset, then only the
series with problems (at most ten, and the count of the rest); ``--details``
lists every series, and the full per-series report is a CSV beside the store.
"""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forecasting.cli.app import HomeOption, console, err_console, run_or_exit, setup_home  # imported once app's names exist

PROBLEMS_SHOWN = 10


def register(app: typer.Typer) -> None:
    app.command(name="ingest")(ingest)


def ingest(
    config: Annotated[list[Path] | None, typer.Option("--config", "-c", help="Ingest config(s), e.g. configs/ingest/weather.yaml.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Ingest the bundled sample data instead (no network).")] = False,
    file: Annotated[str | None, typer.Option("--file", "-f", help="One CSV or Parquet file (path or URL) into --dataset, without a config.")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="With --file: the dataset to land in. With --offline: bundled dataset(s); default all.")] = None,
    time_col: Annotated[str, typer.Option("--time-col", help="With --file: the column of dates or timestamps.")] = "date",
    target_col: Annotated[str, typer.Option("--target-col", help="With --file: the column of values to forecast.")] = "value",
    id_col: Annotated[str | None, typer.Option("--id-col", help="With --file: a column naming each series (omit for a one-series file).")] = None,
    series_id: Annotated[str | None, typer.Option("--series-id", help="With --file and no --id-col: the series' name (default the dataset's).")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="With --file: the zone the data was recorded in (days start at its midnight).")] = None,
    freq: Annotated[str | None, typer.Option("--freq", help="With --file: the grid ('D', 'h', 'XNYS', 'MS', ...); inferred from the file when omitted.")] = None,
    details: Annotated[bool, typer.Option("--details", help="List every series, not only the ones with problems.")] = False,
    home: HomeOption = None,
) -> None:
    """Fetch new observations into the Parquet store: live (--config), one file (--file), or bundled (--offline)."""
    modes = sum([bool(config), offline, file is not None])
    if modes != 1 or (dataset and config) or (file is not None and len(dataset or []) != 1):
        err_console.print(
            "[bold red]error:[/] pass --config FILE (ingest configs), --file DATA.csv --dataset NAME (one file), "
            "or --offline [--dataset NAME] (bundled data)",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(2)
    settings = setup_home(home)
    if file is not None:
        from forecasting.config.ingest import one_off_file_config

        parsed = run_or_exit(
            one_off_file_config, file, dataset=dataset[0], time_col=time_col, target_col=target_col, id_col=id_col,
            series_id=series_id, timezone=timezone, freq=freq,
        )
        how = "given" if freq else "inferred from the file; pass --freq to set it"
        zone = f" in {parsed.timezone}" if parsed.timezone else ""
        console.print(f"frequency: {parsed.freq}{zone} ({how})", highlight=False, soft_wrap=True)
        from pipelines.ingest import ingest_source_flow

        results = run_or_exit(ingest_source_flow, parsed.model_dump(mode="json"), home=str(settings.home))
    elif config:
        from forecasting.config.ingest import load_ingest_config

        for path in config:
            run_or_exit(load_ingest_config, path)  # every config checked before anything is fetched
        from pipelines.ingest import ingest_source_flow

        results = [row for path in config for row in run_or_exit(ingest_source_flow, str(path), home=str(settings.home))]
    else:
        from pipelines.ingest import ingest_flow

        results = run_or_exit(ingest_flow, datasets=dataset or None, home=str(settings.home))
    _print_summary(results, store_dir=str(settings.store_dir), details=details)


def _print_summary(results: list[dict], *, store_dir: str, details: bool) -> None:
    """Totals per dataset, then the series with problems (all of them with ``details``)."""
    from forecasting.data.ingest import SeriesReport, problem_lines

    table = Table(title=f"Ingested into {store_dir}")
    columns = ("dataset", "series", "fetched", "added", "updated", "unchanged", "quarantined", "filled", "failed")
    for col in columns:
        table.add_column(col, justify="left" if col == "dataset" else "right", no_wrap=True)
    for d in results:
        table.add_row(d["dataset"], *(str(d.get(c, 0)) for c in columns[1:]))
    console.print(table)
    reports = [SeriesReport(**{k: v for k, v in s.items()}) for d in results for s in d["series_reports"]]
    if details:
        _print_series(reports)
    for line in problem_lines(reports, limit=None if details else PROBLEMS_SHOWN):
        console.print(f"[yellow]data check:[/] {escape(line)}", highlight=False, soft_wrap=True)
    for d in results:
        if d.get("report_csv"):
            console.print(f"per-series report: {d['report_csv']}", highlight=False, soft_wrap=True)


def _print_series(reports: list) -> None:
    table = Table(title="Series")
    columns = ("dataset", "series_id", "status", "fetched", "added", "updated", "quarantined", "filled", "open_gaps", "pending")
    for col in columns:
        table.add_column(col.replace("_", " "), justify="left" if col in columns[:3] else "right", no_wrap=True)
    for r in reports:
        table.add_row(escape(r.dataset), escape(r.series_id), r.status, *(str(getattr(r, c)) for c in columns[3:]))
    console.print(table)
