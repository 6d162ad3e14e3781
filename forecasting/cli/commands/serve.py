"""`forecast serve`: run every scheduled deployment (configs/schedules.yaml) on this machine."""

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from forecasting.cli.app import HomeOption, console, err_console, run_or_exit, setup_home  # imported once app's names exist


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        schedules: Annotated[Path | None, typer.Option("--schedules", "-s", help="Schedules file (default configs/schedules.yaml).")] = None,
        only: Annotated[list[str] | None, typer.Option("--only", help="Serve only these deployments (repeatable).")] = None,
        limit: Annotated[int | None, typer.Option("--limit", help="Most flow runs at once.")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List the deployments and their schedules, then exit.")] = False,
        home: HomeOption = None,
    ) -> None:
        """Run ingest, predict, retrain, backtest and monitor on their cron schedules until stopped (Ctrl-C).

        Prints each served model's pipeline (ingest -> dataset -> train -> predict -> monitor) and warns
        about a broken link, such as a model trained on a dataset that no ingest deployment writes.

        Uses PREFECT_API_URL when set (a Prefect server), else a temporary local one.
        """
        settings = setup_home(home)
        from pipelines.deployments import DEFAULT_SCHEDULES, build_deployments, load_schedules, model_pipelines  # Prefect: only after setup_home

        path = schedules or DEFAULT_SCHEDULES
        deployments = run_or_exit(build_deployments, path, only=only or None)
        for d in deployments:
            s = d.schedules[0].schedule
            console.print(f"{d.flow_name}/{d.name}  cron '{s.cron}' ({s.timezone})  {d.parameters}", soft_wrap=True, highlight=False)
        # One line per served model: ingest -> dataset -> train -> predict -> monitor, then any broken link.
        try:
            pipelines, problems = model_pipelines(load_schedules(path))
        except Exception as exc:  # noqa: BLE001 - a report about the schedules never stops them from being served
            pipelines, problems = [], [f"could not trace the pipelines of {path}: {exc}"]
        if only:  # the pipelines the selected deployments belong to; the whole file's problems are not theirs
            pipelines = [p for p in pipelines if set(only) & {*p.ingest, *p.train, *p.predict, *p.monitor, *p.backtest}]
            problems = [p for p in problems if any(f"'{name}'" in p for name in only)]
        for pipeline in pipelines:
            console.print(f"pipeline {pipeline.describe()}", soft_wrap=True, highlight=False)
        for problem in problems:
            err_console.print(Text.assemble(("warning:", "yellow"), " ", problem), soft_wrap=True, highlight=False)
        if dry_run:
            return
        from prefect import serve as prefect_serve  # Prefect: only after setup_home

        console.print(f"serving {len(deployments)} deployments; state in {settings.home}", highlight=False)
        run_or_exit(prefect_serve, *deployments, limit=limit, print_starting_message=False)
