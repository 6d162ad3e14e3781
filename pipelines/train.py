"""Train flow: fit, register as `challenger`, backtest against the gate's baselines and the champion, promote only a winner.

A winner beats every baseline of ``promotion.must_beat`` on the same origins (the first version of a name too:
a name whose versions all lose has no champion) and then the champion by ``promotion.margin``.

Retries sit on the I/O tasks only: reading the store and registering in MLflow (registration is all or
nothing: a failure half-way deletes its version before the retry, and what a killed process left, a torn
version and a RUNNING run, is repaired by the next registration: ``registry.recover``). A model whose
validation scores are not finite is refused before anything is written, and not retried.
Training is not retried (the same data and seed fail the same way), nor is the promotion: its
read-decide-write is not idempotent (a retry after the champion moved would judge the version
against itself and record it as rejected). A run is named ``train-NAME@DATA_END``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from forecasting.registry import models as registry
from forecasting.config.model import ForecasterConfig, load_config
from forecasting.data.store import ObservationStore
from forecasting.registry.policy import Decision
from forecasting.evaluation.plots import plot_forecasts
from forecasting.predict import latest_history
from forecasting.registry.promotion import promote_and_attach_report
from forecasting.settings import with_hardware
from forecasting.train import FitResult, MemberJob, fit, fit_member
from pipelines._common import artifact_key, fanout_task_runner, fanout_threads, io_task_options, name_run, resolve_settings, stamp


@task(cache_policy=NO_CACHE, **io_task_options())
def read_dataset(store_root: str, config: ForecasterConfig) -> pd.DataFrame:
    return ObservationStore(store_root).read(config.data.dataset, config.data.series)


@task(cache_policy=NO_CACHE, **io_task_options())
def open_training_run(config: ForecasterConfig, artifacts_dir: str) -> str:
    """The MLflow run of this training, opened before it starts (true duration, live curves)."""
    return registry.start_training_run(config, artifacts_dir=Path(artifacts_dir))


@task(cache_policy=NO_CACHE)
def train_model(config: ForecasterConfig, frame: pd.DataFrame, checkpoints: str, run_id: str | None = None,
                fresh: bool = False) -> FitResult:
    """Fit (a bar on a terminal, a log line per epoch elsewhere), each epoch's losses logged to ``run_id`` live;
    resumes an interrupted training of the same config and data unless ``fresh``."""
    on_epoch = registry.epoch_logger(run_id) if run_id else None
    return fit(config, frame, checkpoint_dir=checkpoints, on_epoch=on_epoch, fresh=fresh)


@task(cache_policy=NO_CACHE, task_run_name="member {job.index}: lookback {job.config.window.lookback}, seed {job.config.training.seed}")
def train_member(job: MemberJob) -> FitResult:
    """One ensemble member (compute: no retries); runs wherever the task runner puts it."""
    return fit_member(job)


@flow(name="train-ensemble-members", task_runner=fanout_task_runner())
def train_members(jobs: list[MemberJob]) -> list[FitResult]:
    """``fit``'s member mapper: one ``train_member`` task per member on the configured task runner
    (``FORECASTING_TASK_RUNNER``: in turn, a thread pool, or a Dask cluster), results in member order."""
    futures = [train_member.submit(job) for job in jobs]
    return [future.result() for future in futures]


@task(cache_policy=NO_CACHE, **io_task_options())
def register_model(result: FitResult, frame: pd.DataFrame, plots_dir: str, artifacts_dir: str,
                   run_id: str | None = None) -> registry.ModelRef:
    trained = result.forecaster
    plots = {}
    if result.validation is not None:
        path = Path(plots_dir) / f"{trained.config.name}-validation.png"
        plots["validation"] = plot_forecasts(result.validation, result.series_ids, path, title=f"{trained.config.name}: validation")
    example = latest_history(frame, trained.config.window.lookback)
    return registry.log_and_register(
        trained, history_example=example, plots=plots, artifacts_dir=Path(artifacts_dir), aliases=(registry.CHALLENGER,),
        run_id=run_id,
    )


@task(cache_policy=NO_CACHE)
def decide_promotion(ref: registry.ModelRef, config: ForecasterConfig, frame: pd.DataFrame, home: str) -> Decision:
    p = config.promotion
    return promote_and_attach_report(
        ref, frame, lock_dir=Path(home) / "locks", metric=p.metric, margin=p.margin, origins=p.origins,
        must_beat=p.must_beat,
    )


@flow(name="train", flow_run_name="train-{config_path}")
def train_flow(config_path: str, home: str | None = None, fresh: bool = False) -> dict:
    """Train and register one model; returns its version and validation metrics.

    The MLflow run opens before training and gets every epoch's losses as they come. A training killed
    part-way resumes from its last checkpoint when rerun with the same config and data (``fresh``: start
    over); the killed attempt registered nothing and its run is marked FAILED, so a rerun or a Prefect
    retry registers exactly one version.
    """
    settings = resolve_settings(home)
    config = with_hardware(load_config(config_path), settings)
    settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    frame = read_dataset(str(settings.store_dir), config)
    if len(frame):
        name_run(f"train-{config.name}@{stamp(frame['timestamp'].max())}")
    run_id = open_training_run(config, str(settings.artifacts_dir))
    try:
        if config.model.ensemble is None:
            result = train_model(config, frame, str(settings.checkpoints_dir), run_id, fresh)
        else:  # members fan out through the task runner (each resumes on its own); their combination is scored here
            result = fit(fanout_threads(config, settings), frame, checkpoint_dir=settings.checkpoints_dir,
                         map_members=train_members, fresh=fresh)
        ref = register_model(result, frame, str(settings.home / "plots"), str(settings.artifacts_dir), run_id)
    except BaseException:
        registry.end_training_run(run_id, "FAILED")  # registration ends its own run; this covers training
        raise
    decision = decide_promotion(ref, config, frame, str(settings.home))
    metrics = result.forecaster.metrics
    has_champion = decision.promote or registry.champion_or_none(ref.name) is not None
    summary = {"name": ref.name, "version": ref.version, "run_id": ref.run_id, "metrics": metrics,
               "season_length": config.baseline.season_length,
               "promoted": decision.promote, "reason": decision.reason, "has_champion": has_champion}
    lines = [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())]
    verdict = "promoted to champion" if decision.promote else "not promoted"
    if not has_champion:
        verdict += f" ({ref.name} has no champion: predict fails until a version passes or is promoted by hand)"
    create_markdown_artifact(
        f"## {ref.name} v{ref.version}: {verdict}\n\n{decision.reason}\n\n"
        "| metric | value |\n|---|---|\n" + "\n".join(lines),
        key=artifact_key("train", ref.name),
        description="Validation metrics against the seasonal-naive baseline",
    )
    get_run_logger().info("registered %s version %s (run %s): %s", ref.name, ref.version, ref.run_id, decision.reason)
    return summary
