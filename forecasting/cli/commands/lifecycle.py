"""`forecast promote` and `forecast rollback`: humans moving the champion alias, on the record.

Neither runs a flow, so neither imports Prefect or starts its server: they take seconds.
"""

from pathlib import Path
from typing import Annotated

import typer

from forecasting.cli.app import (  # imported once app's names exist
    ConfigOption,
    HomeOption,
    ModelOption,
    console,
    error_line,
    model_or_exit,
    run_or_exit,
    setup_home,
)

LegacyArgs = Annotated[
    list[str] | None,
    typer.Argument(metavar="NAME VERSION", show_default=False,
                   help="The older spelling, still accepted: the model name (and version) as positional arguments."),
]


def _locks_dir(home: Path | None) -> Path:
    """Set up the home folder, point the registry at its store; the promotion locks live there."""
    settings = setup_home(home)
    from forecasting.registry import models as registry  # MLflow: only after setup_home points it at the home

    registry.configure(settings.mlflow_tracking_uri)
    return settings.home / "locks"


def _from_positional(positional: list[str] | None, model: str | None, config: Path | None, version: str | None,
                     *, takes_version: bool) -> tuple[str | None, str | None]:
    """Fold ``NAME [VERSION]`` given as arguments into ``--model`` and ``--version``."""
    rest = list(positional or [])
    if rest and model is None and config is None:
        model = rest.pop(0)
    if rest and takes_version and version is None:
        version = rest.pop(0)
    if rest:
        error_line(f"unexpected argument(s) {rest}: name the model with --model NAME or --config FILE"
                   + (" and the version with --version V" if takes_version else ""))
        raise typer.Exit(2)
    return model, version


def register(app: typer.Typer) -> None:
    @app.command()
    def promote(
        positional: LegacyArgs = None,
        model: ModelOption = None,
        config: ConfigOption = None,
        version: Annotated[str | None, typer.Option("--version", help="Version to make the champion.")] = None,
        why: Annotated[str, typer.Option("--why", help="Reason, recorded on the version.")] = "promoted by hand",
        home: HomeOption = None,
    ) -> None:
        """Make a version the champion by hand, recording who and why; `forecast rollback` undoes it.

        The version is --version V, or the one an alias points at (--model NAME@challenger).
        Examples: forecast promote --model weather-lstm --version 3 --why "..."; forecast promote weather-lstm 3.
        """
        model, version = _from_positional(positional, model, config, version, takes_version=True)
        name, alias = model_or_exit(model, config, default_alias=None)
        if (version is None) == (alias is None):
            error_line("pass the version to promote: --version V, or --model NAME@ALIAS for the version an alias "
                       "points at (not both)")
            raise typer.Exit(2)
        lock_dir = _locks_dir(home)
        from forecasting.registry import promotion
        from forecasting.registry.models import resolve

        if version is None:
            version = run_or_exit(resolve, name, alias).version
        previous = run_or_exit(promotion.promote, name, version, why=why, lock_dir=lock_dir)
        console.print(f"{name}: champion is now v{version}" + (f" (was v{previous})" if previous else ""), highlight=False)

    @app.command()
    def rollback(
        positional: LegacyArgs = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Registered model NAME.")] = None,
        config: ConfigOption = None,
        why: Annotated[str, typer.Option("--why", help="Reason, recorded on the version.")] = "rolled back by hand",
        home: HomeOption = None,
    ) -> None:
        """Give the champion alias back to the version the current champion replaced, recording who and why."""
        model, _ = _from_positional(positional, model, config, None, takes_version=False)
        name, _ = model_or_exit(model, config, allow_alias=False)
        lock_dir = _locks_dir(home)
        from forecasting.registry import promotion

        old, restored = run_or_exit(promotion.rollback, name, why=why, lock_dir=lock_dir)
        console.print(f"{name}: champion rolled back from v{old} to v{restored}", highlight=False)
