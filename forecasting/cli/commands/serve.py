"""`forecast serve`: run every scheduled deployment (configs/schedules.yaml) on this machine."""

from pathlib import Path
from typing import Annotated

import typer

from forecasting.cli.app import HomeOption, console, run_or_exit, setup_home  # imported once app's names exist


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        schedules: Annotated[Path | None, typer.Option("--schedules", "-s", help="Schedules file (default configs/schedules.yaml).")] = None,
        only: Annotated[list[str] | None, typer.Option("--only", help="Serve only these deployments (repeatable).")] = None,
        limit: Annotated[int | None, typer.Option("--limit", help="Most flow runs at once.")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List the deployments and their schedules, then exit.")] = False,
        home: HomeOption = None,
    ) -> None:
        """Run ingest, predict, retrain and backtest on their cron schedules until stopped (Ctrl-C).

        Uses PREFECT_API_URL when set (a Prefect server), else a temporary local one.
        """
        settings = setup_home(home)
        from pipelines.deployments import DEFAULT_SCHEDULES, build_deployments  # Prefect: only after setup_home

        deployments = run_or_exit(build_deployments, schedules or DEFAULT_SCHEDULES, only=only or None)
        for d in deployments:
            s = d.schedules[0].schedule
            console.print(f"{d.flow_name}/{d.name}  cron '{s.cron}' ({s.timezone})  {d.parameters}", soft_wrap=True, highlight=False)
        if dry_run:
            return
        from prefect import serve as prefect_serve  # Prefect: only after setup_home

        console.print(f"serving {len(deployments)} deployments; state in {settings.home}", highlight=False)
        prefect_serve(*deployments, limit=limit, print_starting_message=False)
