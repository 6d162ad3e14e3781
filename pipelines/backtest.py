"""Backtest flow: a registered model (or one trained per fold) over rolling origins; report, MLflow, artifacts.

Loading the model, reading the store and logging the MLflow run are I/O tasks with retries; the
backtest itself (a batched pass, or one training per fold) is compute and is not retried. With
``train`` every fold's training is its own task on the configured task runner
(``pipelines._common.fanout_task_runner``: in turn by default, or on a Dask cluster); folds are
independent and put back in order, so the result is the same. A run is named
``backtest-NAME vVERSION@DATA_END`` (``backtest-NAME refit-N@DATA_END`` when trained per fold).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from forecasting.registry import models as registry
from forecasting.evaluation.backtest import BacktestResult, FoldJob, backtest, fit_fold
from forecasting.config.backtest import BacktestConfig, check_mode, parse_model_ref
from forecasting.config.model import ForecasterConfig, check_model_fits, load_backtest_config
from forecasting.data.store import ObservationStore
from forecasting.model.forecaster import TrainedForecaster
from forecasting.evaluation.report import (
    ReportFiles,
    Scores,
    describe,
    score_backtest,
    summary_markdown,
    summary_metrics,
    verdict,
    write_report,
)
from forecasting.settings import with_hardware
from pipelines._common import artifact_key, fanout_task_runner, fanout_threads, io_task_options, name_run, resolve_settings, stamp


@task(cache_policy=NO_CACHE)
def load_settings(config_path: str, overrides: dict | None) -> tuple[ForecasterConfig, BacktestConfig]:
    return load_backtest_config(config_path, overrides)


@task(cache_policy=NO_CACHE, **io_task_options())
def load_model(name: str, alias: str) -> tuple[TrainedForecaster, registry.ModelRef]:
    loaded = registry.load(name, alias)
    return loaded.pyfunc.unwrap_python_model().trained, loaded.ref


@task(cache_policy=NO_CACHE, **io_task_options())
def read_dataset(store_root: str, config: ForecasterConfig) -> pd.DataFrame:
    return ObservationStore(store_root).read(config.data.dataset, config.data.series)


@task(cache_policy=NO_CACHE)
def run_backtest(
    frame: pd.DataFrame,
    settings: BacktestConfig,
    trained: TrainedForecaster | None,
    config: ForecasterConfig | None,
    version: str | None,
    checkpoints: str,
) -> BacktestResult:
    logger = get_run_logger()
    return backtest(
        frame, settings, trained=trained, config=config, model_version=version, checkpoint_dir=checkpoints, log=logger.info
    )


@task(cache_policy=NO_CACHE, task_run_name="fold {job.index}: train up to {job.cutoff}")
def train_fold(job: FoldJob) -> tuple[TrainedForecaster, float]:
    """One fold's model (compute: no retries); runs wherever the task runner puts it."""
    return fit_fold(job)


def fan_out_folds(jobs: list[FoldJob]) -> list[tuple[TrainedForecaster, float]]:
    """``backtest``'s fold mapper: one ``train_fold`` task per fold, all submitted, results in fold order."""
    futures = [train_fold.submit(job) for job in jobs]
    return [future.result() for future in futures]


@task(cache_policy=NO_CACHE)
def report(result: BacktestResult, out_dir: str) -> tuple[Scores, ReportFiles]:
    scores = score_backtest(result)
    return scores, write_report(result, out_dir, scores)


@task(cache_policy=NO_CACHE, **io_task_options())
def log_run(result: BacktestResult, scores: Scores, files: ReportFiles, artifacts_dir: str, model_run_id: str | None) -> str:
    curves = {f"{name}_mae_by_step": group["mae"].tolist() for name, group in scores.by_step.groupby("forecaster", sort=False)}
    tags = {f"beats_{name}": str(beats).lower() for name, beats in scores.beats.items()}
    if model_run_id:
        tags["model_run_id"] = model_run_id
    return registry.log_backtest(
        model_name=result.model_name,
        model_version=result.model_version,
        params=describe(result),
        metrics=summary_metrics(scores),
        step_metrics=curves,
        report_dir=files.directory,
        tags=tags,
        experiment=result.settings.experiment,
        artifacts_dir=Path(artifacts_dir),
    )


@flow(name="backtest", flow_run_name="backtest-{config_path}", task_runner=fanout_task_runner())
def backtest_flow(
    config_path: str,
    model: str | None = None,
    train: bool = False,
    overrides: dict | None = None,
    out_dir: str | None = None,
    home: str | None = None,
) -> dict:
    """Backtest ``model`` (NAME[@ALIAS], default the config's champion) as it is, or train per fold (``train``)."""
    settings = resolve_settings(home)
    config, bt = load_settings(config_path, overrides)
    check_mode(bt, train=train)
    trained, ref = None, None
    if train:
        config = with_hardware(config, settings)  # each fold trains on this machine's accelerator
        settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    else:
        trained, ref = load_model(*parse_model_ref(model or config.name))
        check_model_fits(config, trained.config)
    frame = read_dataset(str(settings.store_dir), trained.config if trained else config)
    what = f"v{ref.version}" if ref else f"refit-{bt.refit}"
    if len(frame):
        name_run(f"backtest-{(trained.config if trained else config).name} {what}@{stamp(frame['timestamp'].max())}")
    if train:
        # Planning and assembly are cheap and run here; each fold's training is a task of its own.
        result = backtest(frame, bt, config=fanout_threads(config, settings), checkpoint_dir=str(settings.checkpoints_dir),
                          log=get_run_logger().info, map_folds=fan_out_folds)
    else:
        result = run_backtest(frame, bt, trained, None, ref.version, str(settings.checkpoints_dir))
    out = out_dir or str(settings.home / "backtests" / result.model_name / what)
    scores, files = report(result, out)
    run_id = log_run(result, scores, files, str(settings.artifacts_dir), ref.run_id if ref else None)
    summary = _summary(result, scores, files, run_id)
    _publish(result, scores, summary)
    get_run_logger().info("backtest of %s: %s; report in %s", result.label, summary["verdict"], files.directory)
    return summary


def _summary(result: BacktestResult, scores: Scores, files: ReportFiles, run_id: str) -> dict:
    return {
        "name": result.model_name,
        "version": result.model_version,
        "label": result.label,
        **{k: v for k, v in describe(result).items() if k in ("series", "windows", "origins", "first_origin", "last_origin", "horizon", "stride", "refit", "folds")},
        "rows": scores.summary.to_dict("records"),
        "beats_seasonal_naive": scores.beats_reference,
        "beats": scores.beats,
        "verdict": verdict(result, scores).replace("**", ""),
        "notes": [*result.notes, *scores.notes],
        "report_dir": str(files.directory),
        "files": [str(p) for p in files.files],
        "run_id": run_id,
        "seconds": {k: round(v, 3) for k, v in result.timings.items()},
    }


def _publish(result: BacktestResult, scores: Scores, summary: dict) -> None:
    key = artifact_key("backtest", result.model_name)
    header = (
        f"## Backtest of {result.label}\n\n{summary['origins']} origins x {summary['series']} series "
        f"({summary['windows']} forecasts), horizon {summary['horizon']}\n\n{verdict(result, scores)}\n\n"
    )
    create_markdown_artifact(header + summary_markdown(scores) + f"\n\nReport: `{summary['report_dir']}`", key=key,
                             description="Backtest: the model against naive, seasonal naive, drift and mean")
    rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()} for row in summary["rows"]]
    create_table_artifact(rows, key=f"{key}-table", description="Backtest accuracy per forecaster")

