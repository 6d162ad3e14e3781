"""Every scheduled deployment of the service, declared in one place.

Schedules, time zones and parameters come from ``configs/schedules.yaml``
(validated by :class:`ScheduleConfig`, which knows flows by name only);
:func:`build_deployments` binds each entry to its flow, checks the parameters
against the flow's signature and turns them into Prefect ``RunnerDeployment``
objects. Reading the schedules (as the monitor flow does to find a model's
train deployment) imports no flow. Two ways to run them:

- ``forecast serve``: ``prefect.serve(*build_deployments())`` on one machine,
  against the ephemeral or the configured (``PREFECT_API_URL``) Prefect API.
- The compose stack: ``python -m pipelines.deployments --work-pool forecasting``
  registers the same deployments on a process work pool for the workers.

Entrypoints are module paths (``pipelines.predict.predict_flow``), so a served
process or a worker finds the flows wherever the package is installed.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting.errors import ConfigError

DEFAULT_SCHEDULES = Path(__file__).resolve().parent.parent / "configs" / "schedules.yaml"
FlowName = Literal["ingest-source", "predict", "train", "backtest", "monitor"]
# Parameters that name a file: relative values are read from the schedules file's folder.
PATH_PARAMETERS = ("config", "config_path")


def _flows() -> dict[str, Any]:
    # Imported when deployments are built, not with this module: the flows read the schedules
    # through it (pipelines.monitor), and reading them needs no flow.
    from pipelines.backtest import backtest_flow
    from pipelines.ingest import ingest_source_flow
    from pipelines.monitor import monitor_flow
    from pipelines.predict import predict_flow
    from pipelines.train import train_flow

    return {
        "ingest-source": ingest_source_flow,
        "predict": predict_flow,
        "train": train_flow,
        "backtest": backtest_flow,
        "monitor": monitor_flow,
    }


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow: FlowName
    cron: str
    timezone: str | None = None  # None: the file's default
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    paused: bool = False

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from prefect.client.schemas.schedules import CronSchedule

        if len(value.split()) != 5:
            raise ValueError(f"cron {value!r} needs five fields (minute hour day month weekday)")
        try:
            CronSchedule(cron=value)
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"invalid cron {value!r}: {exc}") from None
        return value


class ScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    deployments: dict[str, DeploymentSpec]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _check(self) -> ScheduleConfig:
        if not self.deployments:
            raise ValueError("no deployments declared")
        for spec in self.deployments.values():
            if spec.timezone is not None:
                _check_timezone(spec.timezone)
        return self


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value


def load_schedules(path: str | Path = DEFAULT_SCHEDULES) -> ScheduleConfig:
    """Read and validate a schedules file; relative file parameters become absolute paths."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"schedules file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        config = ScheduleConfig.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for spec in config.deployments.values():
        for key in PATH_PARAMETERS:
            value = spec.parameters.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                spec.parameters[key] = str((path.parent / value).resolve())
    return config


def build_deployments(path: str | Path = DEFAULT_SCHEDULES, *, only: list[str] | None = None, work_pool: str | None = None) -> list:
    """One RunnerDeployment per entry of the schedules file (``only``: a subset by name)."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    config = load_schedules(path)
    unknown = sorted(set(only or ()) - set(config.deployments))
    if unknown:
        raise ConfigError(f"no deployment named {', '.join(unknown)} in {path}; known: {', '.join(config.deployments)}")
    flows = _flows()
    _check_parameters(config, flows, path)
    deployments = []
    for name, spec in config.deployments.items():
        if only and name not in only:
            continue
        extra = {"work_pool_name": work_pool} if work_pool else {}
        deployments.append(
            flows[spec.flow].to_deployment(
                name=name,
                schedule=Cron(spec.cron, timezone=spec.timezone or config.timezone),
                parameters=dict(spec.parameters),
                description=spec.description or f"{spec.flow} on cron '{spec.cron}' ({spec.timezone or config.timezone})",
                tags=["forecasting", spec.flow],
                paused=spec.paused,
                entrypoint_type=EntrypointType.MODULE_PATH,
                **extra,
            )
        )
    return deployments


def _check_parameters(config: ScheduleConfig, flows: dict[str, Any], path: str | Path) -> None:
    """Every deployment's parameters must bind to its flow's signature; one ConfigError names each that does not."""
    problems = []
    for name, spec in config.deployments.items():
        try:
            inspect.signature(flows[spec.flow].fn).bind(**spec.parameters)
        except TypeError as exc:
            problems.append(f"deployment {name!r}: parameters {sorted(spec.parameters)} do not fit flow {spec.flow!r}: {exc}")
    if problems:
        raise ConfigError(f"{Path(path).resolve()}: " + "; ".join(problems))


def deploy_to_work_pool(path: str | Path, work_pool: str) -> list[str]:
    """Create the process work pool if missing and register every deployment on it (the compose deploy service)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=work_pool, type="process"))
        except ObjectAlreadyExists:
            pass
    return [str(d.apply(work_pool_name=work_pool)) for d in build_deployments(path, work_pool=work_pool)]


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - the compose deploy service
    import argparse

    parser = argparse.ArgumentParser(description="Register the scheduled deployments on a Prefect work pool.")
    parser.add_argument("--schedules", default=str(DEFAULT_SCHEDULES))
    parser.add_argument("--work-pool", required=True)
    args = parser.parse_args(argv)
    ids = deploy_to_work_pool(args.schedules, args.work_pool)
    print(f"registered {len(ids)} deployments on work pool {args.work_pool!r}")


if __name__ == "__main__":  # pragma: no cover
    main()
