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
from forecasting.config.backtest import BacktestConfig, check_mode, parse_backtest, parse_model_ref
from forecasting.config.model import ForecasterConfig, backtest_settings, check_model_fits, load_backtest_config
from forecasting.data.store import ObservationStore
from forecasting.errors import ConfigError
from forecasting.model.forecaster import TrainedForecaster
from forecasting.evaluation.dataset_fit import check_dataset_fits, profile_dataset
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
def check_fits(store_root: str, config: ForecasterConfig, dataset: str) -> None:
    """Refuse a dataset the model cannot read from the store's file footers, before any row loads."""
    check_dataset_fits(config, profile_dataset(ObservationStore(store_root), dataset))


@task(cache_policy=NO_CACHE, **io_task_options())
def read_dataset(store_root: str, config: ForecasterConfig, dataset: str | None = None) -> pd.DataFrame:
    """The model's dataset (its configured series), or every series of another ``dataset``."""
    if dataset is not None and dataset != config.data.dataset:
        return ObservationStore(store_root).read(dataset)
    return ObservationStore(store_root).read(config.data.dataset, config.data.series)


@task(cache_policy=NO_CACHE)
def run_backtest(
    frame: pd.DataFrame,
    settings: BacktestConfig,
    trained: TrainedForecaster | None,
    config: ForecasterConfig | None,
    version: str | None,
    checkpoints: str,
    dataset: str | None = None,
) -> BacktestResult:
    logger = get_run_logger()
    return backtest(
        frame, settings, trained=trained, config=config, model_version=version, checkpoint_dir=checkpoints, log=logger.info,
        dataset=dataset,
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
def log_run(
    result: BacktestResult, scores: Scores, files: ReportFiles, artifacts_dir: str, model_run_id: str | None, dataset: str | None = None
) -> str:
    curves = {f"{name}_mae_by_step": group["mae"].tolist() for name, group in scores.by_step.groupby("forecaster", sort=False)}
    tags = {f"beats_{name}": str(beats).lower() for name, beats in scores.beats.items()}
    if model_run_id:
        tags["model_run_id"] = model_run_id
    if dataset:
        tags["dataset"] = dataset  # the data judged on; differs from the model's own when --dataset names another
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


def _first_run_name() -> str:
    """``backtest-<config path>``, or ``backtest-<model>`` for a model judged without a config file."""
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return f"backtest-{params.get('config_path') or params.get('model')}"


@flow(name="backtest", flow_run_name=_first_run_name, task_runner=fanout_task_runner())
def backtest_flow(
    config_path: str | None = None,
    model: str | None = None,
    train: bool = False,
    overrides: dict | None = None,
    out_dir: str | None = None,
    home: str | None = None,
    dataset: str | None = None,
) -> dict:
    """Backtest ``model`` (NAME[@ALIAS], default the config's champion) as it is, or train per fold (``train``).

    ``dataset``: judge the model on another dataset of the same frequency (every series of it); the
    model's frequency and columns are checked against the store's file footers before any row loads.
    Without ``config_path`` the settings are the model's own ``backtest:`` section and ``overrides``.
    """
    settings = resolve_settings(home)
    if config_path is None:
        if train or model is None:
            raise ConfigError("a backtest without a config file needs --model NAME[@ALIAS] (and cannot --train)")
        config, bt = None, parse_backtest(overrides or {}, source="backtest options")
    else:
        config, bt = load_settings(config_path, overrides)
    check_mode(bt, train=train)
    trained, ref = None, None
    if train:
        assert config is not None
        if dataset is not None:
            config = config.model_copy(update={"data": config.data.model_copy(update={"dataset": dataset, "series": None})})
        config = with_hardware(config, settings)  # each fold trains on this machine's accelerator
        settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    else:
        assert model is not None or config is not None
        trained, ref = load_model(*parse_model_ref(model or config.name))
        if config is None:
            bt = backtest_settings(trained.config, overrides)  # the model's own backtest section, options winning
        elif dataset is None:
            check_model_fits(config, trained.config)
        dataset = dataset or (config.data.dataset if config is not None else None)
        if dataset is not None and dataset != trained.config.data.dataset:  # its own data fits: it trained on it
            check_fits(str(settings.store_dir), trained.config, dataset)
    frame = read_dataset(str(settings.store_dir), trained.config if trained else config, dataset)
    what = f"v{ref.version}" if ref else f"refit-{bt.refit}"
    if len(frame):
        on = f" on {dataset}" if dataset and trained and dataset != trained.config.data.dataset else ""
        name_run(f"backtest-{(trained.config if trained else config).name} {what}{on}@{stamp(frame['timestamp'].max())}")
    if train:
        # Planning and assembly are cheap and run here; each fold's training is a task of its own.
        result = backtest(frame, bt, config=fanout_threads(config, settings), checkpoint_dir=str(settings.checkpoints_dir),
                          log=get_run_logger().info, map_folds=fan_out_folds)
    else:
        result = run_backtest(frame, bt, trained, None, ref.version, str(settings.checkpoints_dir), dataset)
    if dataset and trained and dataset != trained.config.data.dataset:
        what = f"{what}-on-{dataset}"  # a judgement on other data gets its own report folder
    out = out_dir or str(settings.home / "backtests" / result.model_name / what)
    scores, files = report(result, out)
    judged = dataset or (config or trained.config).data.dataset
    run_id = log_run(result, scores, files, str(settings.artifacts_dir), ref.run_id if ref else None, judged)
    summary = _summary(result, scores, files, run_id)
    summary["dataset"] = judged
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

