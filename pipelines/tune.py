"""Tune flow: an Optuna study over one config, trials on the configured task runner, recorded in MLflow.

Trials are asked from the study in batches as wide as the task runner
(``pipelines._common.fanout_task_runner``: one at a time by default, ``FORECASTING_TASK_WORKERS``
side by side with ``FORECASTING_TASK_RUNNER=thread`` or ``dask``); each trial's training is a
task of its own, and the batch is told back to the study before the next is asked. The study
lives in a journal file (``<home>/tuning/<model>/<study>.optuna.log``), so trials in Dask
worker processes report to the same study and the MedianPruner sees them all; the file also
lets the study be reopened (``optuna.load_study``) afterwards. Parallel trials split the cores:
one torch thread per Dask worker, ``cores // workers`` per thread of a thread pool; a config's
own ``training.num_threads`` wins.

The parent MLflow run and one child run per trial are written from the flow's process as each
batch finishes (``forecasting.registry.tuning``). A run is named ``tune-NAME@DATA_END``.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from forecasting import tune as tuning
from forecasting.config.model import ForecasterConfig, parse_config, read_yaml
from forecasting.data.store import ObservationStore
from forecasting.registry import tuning as tuning_runs
from forecasting.settings import Settings, with_hardware
from pipelines._common import artifact_key, fanout_task_runner, io_task_options, name_run, resolve_settings, stamp


@task(cache_policy=NO_CACHE, **io_task_options())
def read_dataset(store_root: str, config: ForecasterConfig) -> pd.DataFrame:
    return ObservationStore(store_root).read(config.data.dataset, config.data.series)


@task(cache_policy=NO_CACHE, task_run_name="trial {job.trial.number}")
def train_trial(job: tuning.TrialJob) -> tuning.TrialOutcome:
    return tuning.run_trial(job)


def fan_out_trials(jobs: list[tuning.TrialJob]) -> list[tuning.TrialOutcome]:
    """``tune``'s batch mapper: one ``train_trial`` task per trial, all submitted, outcomes in order."""
    futures = [train_trial.submit(job) for job in jobs]
    return [future.result() for future in futures]


def parallel_trials(settings: Settings) -> int:
    """Trials trained at once: 1 on the sequential runner, else the runner's workers."""
    return 1 if settings.task_runner == "sequential" else settings.task_workers


def trial_threads(config: ForecasterConfig, settings: Settings) -> ForecasterConfig:
    """Side-by-side trials share the cores (a config's own ``training.num_threads`` wins)."""
    if settings.task_runner == "sequential" or config.training.num_threads is not None:
        return config
    threads = 1 if settings.task_runner == "dask" else max(1, (os.cpu_count() or 1) // settings.task_workers)
    return config.model_copy(update={"training": config.training.model_copy(update={"num_threads": threads})})


@flow(name="tune", flow_run_name="tune-{config_path}", task_runner=fanout_task_runner())
def tune_flow(
    config_path: str,
    trials: int,
    timeout: float | None = None,
    out: str | None = None,
    space_path: str | None = None,
    home: str | None = None,
) -> dict:
    """Search hyperparameters of ``config_path``; write the best config (overrides form) to ``out``."""
    settings = resolve_settings(home)
    raw = read_yaml(config_path)
    config = with_hardware(parse_config(raw, source=config_path), settings)
    space = tuning.load_space(space_path)
    tuning.check_tunable(config)
    frame = read_dataset(str(settings.store_dir), config)
    if len(frame):
        name_run(f"tune-{config.name}@{stamp(frame['timestamp'].max())}")
    settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    study_name = f"{config.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%f')}"
    study_dir = settings.home / "tuning" / config.name
    study = tuning.create_study(study_name, space, tuning.journal_storage(study_dir / f"{study_name}.optuna.log"))
    parallel = parallel_trials(settings)
    parent = tuning_runs.start_study_run(
        config.name, study_name=study_name, artifacts_dir=settings.artifacts_dir,
        settings={"config": config_path, "trials": trials, "timeout": timeout, "parallel": parallel,
                  "task_runner": settings.task_runner, "objective": tuning.OBJECTIVE,
                  "space": space.model_dump(mode="json")},
    )
    logger = get_run_logger()

    def record(trial: tuning.TrialRecord) -> None:
        tuning_runs.log_trial(parent, trial, model_name=config.name)
        shown = f"{trial.value:.4g}" if trial.value is not None else trial.error or "-"
        logger.info("trial %d %s: %s %s", trial.number, trial.state, shown, trial.params)

    try:
        result = tuning.tune(
            study, raw, frame, trials=trials, timeout=timeout, space=space, parallel=parallel,
            prepare=lambda c: trial_threads(with_hardware(c, settings), settings),
            map_trials=fan_out_trials, on_trial=record, checkpoint_dir=str(settings.checkpoints_dir), source=config_path,
        )
    except BaseException:
        tuning_runs.finish_study_run(parent, best=None, records=[], best_config_yaml=None, trials_csv=None, plots=[],
                                     failed=True)
        raise
    best_text = tuning.best_yaml(raw, result.best, study_name=study_name, source=config_path)
    out_path = Path(out) if out else study_dir / f"{study_name}.best.yaml"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(best_text)
    table = tuning.trials_frame(result.records)
    plots = tuning.save_plots(study, study_dir / f"{study_name}-plots")
    tuning_runs.finish_study_run(parent, best=result.best, records=result.records, best_config_yaml=best_text,
                                 trials_csv=table.to_csv(index=False), plots=plots)
    lines = [f"| {r.number} | {r.state} | {'-' if r.value is None else f'{r.value:.4g}'} | {r.params} |" for r in result.records]
    create_markdown_artifact(
        f"## {config.name}: best trial {result.best.number}, {tuning.OBJECTIVE} {result.best.value:.4g}\n\n"
        "| trial | state | value | params |\n|---|---|---|---|\n" + "\n".join(lines),
        key=artifact_key("tune", config.name),
        description="Hyperparameter search: every trial",
    )
    logger.info("best trial %d of %s: %s %.4g -> %s", result.best.number, study_name, tuning.OBJECTIVE,
                result.best.value, out_path)
    return {
        "name": config.name, "study": study_name, "parent_run_id": parent, "out": str(out_path),
        "best": {"number": result.best.number, "value": result.best.value, "params": result.best.params},
        "trials": table.to_dict("records"), "notes": result.notes, "parallel": parallel,
    }
