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

The deployments of one served model form a pipeline: an ingest writes the dataset that the model's
train config reads, train promotes a champion, predict forecasts with it from the newest rows, monitor
scores those forecasts. :func:`model_pipelines` follows those links through the configs the
deployments name and lists every broken one (a model trained on a dataset no ingest writes forecasts
from frozen history); ``forecast serve`` prints both.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
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


@dataclass
class ModelPipeline:
    """The deployments that feed, train, use and watch one registered model, in pipeline order."""

    model: str
    dataset: str
    freq: str
    ingest: list[str] = field(default_factory=list)
    train: list[str] = field(default_factory=list)
    predict: list[str] = field(default_factory=list)
    monitor: list[str] = field(default_factory=list)
    backtest: list[str] = field(default_factory=list)

    def describe(self) -> str:
        def names(kind: str, items: list[str]) -> str:
            return ",".join(items) if items else f"(no {kind})"

        return (
            f"{self.model}: {names('ingest', self.ingest)} -> {self.dataset} ({self.freq}) -> {names('train', self.train)} "
            f"-> {names('predict', self.predict)} -> {names('monitor', self.monitor)}"
            + (f"; backtest {','.join(self.backtest)}" if self.backtest else "")
        )


@dataclass(frozen=True)
class _Ingest:
    deployment: str
    dataset: str
    freq: str
    columns: frozenset[str] | None  # covariate columns it writes; None when the config cannot tell (files, bundled)


def model_pipelines(config: ScheduleConfig) -> tuple[list[ModelPipeline], list[str]]:
    """Each model some train deployment trains, with its ingest, predict, monitor and backtest deployments,
    and one line per broken link: a dataset nothing ingests, another frequency, a covariate the ingest does
    not write, a predict or monitor of a model nothing trains, a trained model nothing predicts with.

    Reads the ingest and model configs the deployments name (no flow, no data).
    """
    from forecasting.config.ingest import load_ingest_config
    from forecasting.config.model import load_config

    problems: list[str] = []
    ingests: list[_Ingest] = []
    trains: list[tuple[str, Any]] = []  # (deployment, model config)
    pipelines: dict[str, ModelPipeline] = {}
    users: list[tuple[str, str, str]] = []  # (deployment, flow, model name)
    for name, spec in config.deployments.items():
        try:
            if spec.flow == "ingest-source" and "config" in spec.parameters:
                ingest = load_ingest_config(spec.parameters["config"])
                ingests.append(_Ingest(name, ingest.dataset, ingest.freq, _written_columns(ingest)))
            elif spec.flow in ("train", "backtest") and "config_path" in spec.parameters:
                model = load_config(spec.parameters["config_path"])
                entry = pipelines.setdefault(model.name, ModelPipeline(model.name, model.data.dataset, model.data.freq))
                if (entry.dataset, entry.freq) != (model.data.dataset, model.data.freq):
                    problems.append(f"deployment '{name}': model '{model.name}' reads dataset '{model.data.dataset}' "
                                    f"({model.data.freq}), another deployment's config says '{entry.dataset}' ({entry.freq})")
                if spec.flow == "train":
                    entry.train.append(name)
                    trains.append((name, model))
                elif spec.parameters.get("model") in (None, model.name):
                    entry.backtest.append(name)
            elif spec.flow in ("predict", "monitor") and "model_name" in spec.parameters:
                users.append((name, spec.flow, spec.parameters["model_name"]))
        except ConfigError as exc:
            problems.append(f"deployment '{name}': {str(exc).splitlines()[0]}")
    for name, model in trains:  # after the loop: the order of the file does not matter
        problems += _feed_problems(name, model, [i for i in ingests if i.dataset == model.data.dataset], ingests)
    for entry in pipelines.values():
        entry.ingest = [i.deployment for i in ingests if i.dataset == entry.dataset]
    for name, flow, model_name in users:
        entry = pipelines.get(model_name)
        if entry is None:
            problems.append(f"deployment '{name}' ({flow}) uses model '{model_name}', which no train deployment trains")
        else:
            getattr(entry, flow).append(name)
    for entry in pipelines.values():
        if entry.train and not entry.predict:
            problems.append(f"model '{entry.model}' is trained by {', '.join(entry.train)} but no predict deployment forecasts with it")
        if entry.monitor and not entry.predict:
            problems.append(f"model '{entry.model}' is monitored by {', '.join(entry.monitor)} but nothing logs its forecasts")
    return list(pipelines.values()), problems


def _feed_problems(name: str, model: Any, feeds: list[_Ingest], ingests: list[_Ingest]) -> list[str]:
    """What is wrong with the ingests that feed one train deployment's model (nothing: an empty list)."""
    data = model.data
    if not feeds:
        written = ", ".join(sorted({i.dataset for i in ingests})) or "none"
        return [f"deployment '{name}' trains model '{model.name}' on dataset '{data.dataset}', which no ingest deployment "
                f"writes, so its forecasts would start from frozen history (ingested datasets: {written})"]
    problems = []
    for feed in feeds:
        if feed.freq != data.freq:
            problems.append(f"deployment '{name}': model '{model.name}' forecasts on '{data.freq}' but '{feed.deployment}' "
                            f"writes dataset '{data.dataset}' on '{feed.freq}'")
        missing = [c for c in (*data.covariates, *data.future_covariates) if feed.columns is not None and c not in feed.columns]
        if missing:
            problems.append(f"deployment '{name}': model '{model.name}' reads column(s) {missing} that '{feed.deployment}' "
                            f"does not write (it writes {sorted(feed.columns or ())})")
    return problems


def _written_columns(ingest: Any) -> frozenset[str] | None:
    source = getattr(ingest, "source", None)
    if source == "open_meteo":
        return frozenset(v for v in ingest.variables if v != ingest.target)
    if source == "stooq":
        from forecasting.data.sources.stooq import COVARIATES

        return frozenset(COVARIATES)
    return None


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
