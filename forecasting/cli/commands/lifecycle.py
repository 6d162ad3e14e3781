"""`forecast promote` and `forecast rollback`: humans moving the champion alias, on the record."""

from typing import Annotated

import typer

from forecasting.cli.app import HomeOption, console, run_or_exit, setup_home  # imported once app's names exist


def register(app: typer.Typer) -> None:
    def locks_dir(home):  # noqa: ANN001, ANN202
        """Set up the home folder, point the registry at its store; the promotion locks live there."""
        settings = setup_home(home)
        from forecasting.registry import models as registry  # MLflow: only after setup_home points it at the home

        registry.configure(settings.mlflow_tracking_uri)
        return settings.home / "locks"

    @app.command()
    def promote(
        name: Annotated[str, typer.Argument(help="Registered model name.")],
        version: Annotated[str, typer.Argument(help="Version to make the champion.")],
        why: Annotated[str, typer.Option("--why", help="Reason, recorded on the version.")] = "promoted by hand",
        home: HomeOption = None,
    ) -> None:
        """Make VERSION the champion of NAME (recorded with who and why)."""
        lock_dir = locks_dir(home)
        from forecasting.registry import promotion

        previous = run_or_exit(promotion.promote, name, version, why=why, lock_dir=lock_dir)
        console.print(f"{name}: champion is now v{version}" + (f" (was v{previous})" if previous else ""))

    @app.command()
    def rollback(
        name: Annotated[str, typer.Argument(help="Registered model name.")],
        why: Annotated[str, typer.Option("--why", help="Reason, recorded on the version.")] = "rolled back by hand",
        home: HomeOption = None,
    ) -> None:
        """Give the champion alias back to the version the current champion replaced."""
        lock_dir = locks_dir(home)
        from forecasting.registry import promotion

        old, restored = run_or_exit(promotion.rollback, name, why=why, lock_dir=lock_dir)
        console.print(f"{name}: champion rolled back from v{old} to v{restored}")
