"""Champion/challenger promotion against the registry, race-safe across machines.

A new version is registered with the alias `challenger`; ``promote_challenger``
backtests it and the current champion on the same recent origins and moves
`champion` only when ``lifecycle.decide`` says so. Every version records the
decision and why. The read-decide-write section runs under a per-model lock, so
two trainings finishing together cannot both replace the same champion: a
PostgreSQL advisory lock when the registry lives in PostgreSQL (or
``FORECASTING_LOCK_DATABASE_URL`` names one), which holds across machines; a
file lock in ``<home>/locks`` for the file and SQLite stores of one machine.
Humans override with ``promote`` and ``rollback``, which record who and why.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from forecasting.registry import models as registry
from forecasting.evaluation.backtest import backtest
from forecasting.config.backtest import BacktestConfig
from forecasting.errors import ForecastingError
from forecasting.model.forecaster import TrainedForecaster
from forecasting.registry.policy import Decision, decide
from forecasting.evaluation.report import score_backtest, write_report
from forecasting.settings import Settings

METRICS = ("mae", "rmse", "smape", "mase")


@contextmanager
def promotion_lock(lock_dir: Path, name: str, *, database_url: str | None | Literal["settings"] = "settings") -> Iterator[None]:
    """Exclusive per-model lock held while the champion is read, compared and moved.

    ``database_url`` ("settings": ``Settings.from_env().lock_database_url``, i.e. the PostgreSQL MLflow
    store or ``FORECASTING_LOCK_DATABASE_URL``): take a PostgreSQL advisory lock there, so trainings on
    different machines serialise too. None: an flock on ``lock_dir``, enough for one machine's SQLite store.
    Either lock dies with its holder (connection or file closed), so a killed training never wedges the model.
    """
    if database_url == "settings":
        database_url = Settings.from_env().lock_database_url
    if database_url:
        with advisory_lock(database_url, f"forecasting.promotion/{name}"):
            yield
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"promote-{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def advisory_lock(database_url: str, key: str) -> Iterator[None]:
    """A session-level ``pg_advisory_lock(hashtext(key))`` on its own autocommit connection.

    Its own connection, not MLflow's pool: the lock belongs to one session and must outlive the
    registry's short transactions. Waits as long as the holder holds it, like ``flock``.
    """
    import psycopg2

    try:
        connection = psycopg2.connect(database_url, application_name="forecasting-promotion", connect_timeout=30)
    except psycopg2.OperationalError as exc:
        raise ForecastingError(f"cannot take the promotion lock: PostgreSQL at {_redact(database_url)} refused: {exc}") from None
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
    finally:
        connection.close()


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}{at}{host}" if at else url


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _scores(frame: pd.DataFrame, trained: TrainedForecaster, settings: BacktestConfig, version: str):
    result = backtest(frame, settings, trained=trained, model_version=version)
    return result, score_backtest(result)


def compare(
    frame: pd.DataFrame,
    challenger: TrainedForecaster,
    champion: TrainedForecaster,
    *,
    origins: int,
    challenger_version: str,
    champion_version: str,
):
    """Backtest both on the challenger's out-of-sample origins: the same windows for each."""
    horizon = min(challenger.spec.horizon, champion.spec.horizon)
    settings = BacktestConfig(origins=origins, horizon=horizon)
    ch_result, ch_scores = _scores(frame, challenger, settings, challenger_version)
    same = settings.model_copy(
        update={
            "origins": None,
            "in_sample": "include",
            "start": pd.Timestamp(ch_result.origin.min(), tz="UTC").to_pydatetime(),
            "end": pd.Timestamp(ch_result.origin.max(), tz="UTC").to_pydatetime(),
        }
    )
    cp_result, cp_scores = _scores(frame, champion, same, champion_version)
    return (ch_result, ch_scores), (cp_result, cp_scores)


def _metric(scores, forecaster: str, metric: str) -> float:
    table = scores.summary.set_index("forecaster")
    return float(table.loc[forecaster, metric])


def promote_challenger(
    name: str,
    version: str,
    frame: pd.DataFrame,
    *,
    lock_dir: Path,
    metric: str = "mae",
    margin: float = 0.0,
    origins: int = 30,
    report_dir: Path | None = None,
) -> Decision:
    """Decide on a freshly registered version and record the decision on it."""
    if metric not in METRICS:
        raise ForecastingError(f"promotion metric {metric!r} is not one of {METRICS}")
    challenger = registry.load_trained(name, version)
    with promotion_lock(lock_dir, name):
        current = registry.champion_or_none(name)
        if current is None:
            # The first model of a name always becomes champion; the record says how it scored.
            try:
                ch_result, ch_scores = _scores(frame, challenger, BacktestConfig(origins=origins), version)
            except ForecastingError as exc:  # e.g. no out-of-sample origins (test_fraction 0)
                ch_result = ch_scores = None
                decision = Decision(True, f"first model of this name: becomes champion (not backtested: {exc})",
                                    metric, float("nan"), None, None)
            else:
                first = decide(
                    metric=metric, challenger=_metric(ch_scores, "model", metric), champion=None,
                    baseline=_metric(ch_scores, "seasonal_naive", metric), margin=margin,
                )
                reason = first.reason if first.promote else f"first model of this name: becomes champion although {first.reason}"
                decision = Decision(True, reason, metric, first.challenger, None, first.baseline)
        else:
            champion = registry.load_trained(name, current.version)
            (ch_result, ch_scores), (_, cp_scores) = compare(
                frame, challenger, champion, origins=origins,
                challenger_version=version, champion_version=current.version,
            )
            decision = decide(
                metric=metric,
                challenger=_metric(ch_scores, "model", metric),
                champion=_metric(cp_scores, "model", metric),
                baseline=_metric(ch_scores, "seasonal_naive", metric),
                margin=margin,
                champion_version=current.version,
            )
        record = {
            "promotion.decision": "promoted" if decision.promote else "rejected",
            "promotion.reason": decision.reason,
            "promotion.metric": metric,
            "promotion.challenger_score": f"{decision.challenger:.6g}",
            "promotion.champion_score": "" if decision.champion is None else f"{decision.champion:.6g}",
            "promotion.baseline_score": "" if decision.baseline is None else f"{decision.baseline:.6g}",
            "promotion.compared_with": current.version if current else "",
            "promotion.origins": str(ch_result.n_origins) if ch_result is not None else "0",
            "promotion.by": "train flow",
            "promotion.at": _now(),
        }
        if decision.promote:
            registry.set_champion(name, version, previous=current.version if current else None, record=record,
                                  trained=challenger)
        else:
            registry.tag_version(name, version, record)
    if report_dir is not None and ch_result is not None:
        write_report(ch_result, report_dir, ch_scores)
    return decision


def promote_and_attach_report(
    ref: registry.ModelRef, frame: pd.DataFrame, *, lock_dir: Path, metric: str, margin: float, origins: int
) -> Decision:
    """``promote_challenger``, then attach its backtest report to the run the version came from."""
    with tempfile.TemporaryDirectory(prefix="promotion-") as tmp:
        report_dir = Path(tmp)
        decision = promote_challenger(
            ref.name, ref.version, frame, lock_dir=lock_dir, metric=metric, margin=margin, origins=origins,
            report_dir=report_dir,
        )
        if any(report_dir.iterdir()):
            registry.log_version_artifacts(ref.run_id, report_dir, "backtest")
    return decision


def promote(name: str, version: str, *, why: str, lock_dir: Path) -> str | None:
    """A human makes ``version`` the champion; returns the version it replaced."""
    registry.ensure_version(name, version)
    with promotion_lock(lock_dir, name):
        current = registry.champion_or_none(name)
        previous = current.version if current else None
        registry.set_champion(name, version, previous=previous, record={
            "promotion.decision": "promoted by hand",
            "promotion.reason": why,
            "promotion.by": _who(),
            "promotion.at": _now(),
        })
    return previous


def rollback(name: str, *, why: str, lock_dir: Path) -> tuple[str, str]:
    """Give the champion alias back to the version the current champion replaced."""
    with promotion_lock(lock_dir, name):
        current = registry.champion_or_none(name)
        if current is None:
            raise ForecastingError(f"model '{name}' has no champion to roll back")
        previous = registry.version_tags(name, current.version).get("promotion.previous_champion", "")
        if not previous:
            raise ForecastingError(
                f"champion v{current.version} of '{name}' replaced no earlier champion: nothing to roll back to"
            )
        registry.tag_version(name, current.version, {
            "rollback.by": _who(), "rollback.reason": why, "rollback.at": _now(), "rollback.to": previous,
        })
        # The restored version keeps its own earlier record, so a second rollback goes further back.
        registry.set_champion(name, previous, previous=registry.version_tags(name, previous).get("promotion.previous_champion"),
                              record={"rollback.restored_by": _who(), "rollback.restored_at": _now()})
    return current.version, previous
