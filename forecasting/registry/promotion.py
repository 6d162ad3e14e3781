"""Champion/challenger promotion against the registry, race-safe across machines.

A new version is registered with the alias `challenger`; ``promote_challenger``
backtests it and the current champion on the same recent origins and moves
`champion` only when ``policy.decide`` says so: it must beat every baseline of
``promotion.must_beat`` (the first version of a name too), then the champion by
the margin. Every version records the decision, the scores and why. A name whose
versions all failed the gate has no champion; ``require_champion`` says so in
one line for ``forecast predict``. The read-decide-write section runs under a per-model lock, so
two trainings finishing together cannot both replace the same champion: a
PostgreSQL advisory lock when the registry lives in PostgreSQL (or
``FORECASTING_LOCK_DATABASE_URL`` names one), which holds across machines; a
file lock in ``<home>/locks`` for the file and SQLite stores of one machine.
Humans override with ``promote`` and ``rollback``, which record who and why.
"""

from __future__ import annotations

import dataclasses
import fcntl
import getpass
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from forecasting.registry import models as registry
from forecasting.evaluation.backtest import MODEL, backtest
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


def _without_statistical(trained: TrainedForecaster) -> TrainedForecaster:
    """The same model, its backtests scoring no statistical baselines: the champion's would repeat the challenger's."""
    if not trained.config.baseline.statistical:
        return trained
    baseline = trained.config.baseline.model_copy(update={"statistical": []})
    return dataclasses.replace(trained, config=trained.config.model_copy(update={"baseline": baseline}))


def _same_origins(settings: BacktestConfig, result) -> BacktestConfig:  # noqa: ANN001 - a BacktestResult
    """Settings that backtest exactly the origins ``result`` had (in-sample or not for the other model)."""
    return settings.model_copy(
        update={
            "origins": None,
            "in_sample": "include",
            "start": pd.Timestamp(result.origin.min(), tz="UTC").to_pydatetime(),
            "end": pd.Timestamp(result.origin.max(), tz="UTC").to_pydatetime(),
        }
    )


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
    cp_result, cp_scores = _scores(frame, _without_statistical(champion), _same_origins(settings, ch_result), champion_version)
    return (ch_result, ch_scores), (cp_result, cp_scores)


def _metric(scores, forecaster: str, metric: str) -> float:
    table = scores.summary.set_index("forecaster")
    return float(table.loc[forecaster, metric])


def _baseline_scores(scores, metric: str) -> dict[str, float]:  # noqa: ANN001 - Scores
    """Every baseline the backtest scored (naive family and statistical ones) -> its ``metric``."""
    table = scores.summary.set_index("forecaster")
    return {str(name): float(value) for name, value in table[metric].items() if name != MODEL}


def _gate(scored: dict[str, float], must_beat: Sequence[str]) -> dict[str, float | None]:
    """The must-beat baselines' scores, in order; None for one the backtest did not score."""
    return {name: scored.get(name) for name in must_beat}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def promote_challenger(
    name: str,
    version: str,
    frame: pd.DataFrame,
    *,
    lock_dir: Path,
    metric: str = "mae",
    margin: float = 0.0,
    origins: int = 30,
    must_beat: Sequence[str] | None = None,
    report_dir: Path | None = None,
) -> Decision:
    """Decide on a freshly registered version and record the decision on it.

    ``must_beat`` (default: the version's own ``promotion.must_beat``) lists the baselines the version must
    beat on ``metric`` over its backtest origins, whether or not the name has a champion; the champion, when
    there is one, is backtested on the same origins and must be beaten by ``margin``. A version that cannot be
    backtested (no out-of-sample origin) is rejected, "not backtested: ...", unless ``must_beat`` is empty and
    the name has no champion yet.
    """
    if metric not in METRICS:
        raise ForecastingError(f"promotion metric {metric!r} is not one of {METRICS}")
    challenger = registry.load_trained(name, version)
    gate = list(challenger.config.promotion.must_beat if must_beat is None else must_beat)
    with promotion_lock(lock_dir, name):
        current = registry.champion_or_none(name)
        champion = registry.load_trained(name, current.version) if current is not None else None
        horizon = challenger.spec.horizon if champion is None else min(challenger.spec.horizon, champion.spec.horizon)
        settings = BacktestConfig(origins=origins, horizon=horizon)
        scored: dict[str, float] = {}
        try:
            ch_result, ch_scores = _scores(frame, challenger, settings, version)
        except ForecastingError as exc:  # e.g. no out-of-sample origins (test_fraction 0)
            ch_result = ch_scores = None
            untested = f"not backtested: {_one_line(exc)}"
            if current is None and not gate:
                decision = Decision(True, f"first model of this name: becomes champion ({untested}; "
                                          "promotion.must_beat is empty)", metric, math.nan, None, None)
            else:
                against = f"must beat {', '.join(gate)}" if gate else f"must beat champion v{current.version}"
                decision = Decision(False, f"{untested}; a version {against} on out-of-sample origins to become champion",
                                    metric, math.nan, None, None, _gate({}, gate), ("not backtested",))
        else:
            scored = _baseline_scores(ch_scores, metric)
            champion_score = None
            if champion is not None:
                _, cp_scores = _scores(frame, _without_statistical(champion), _same_origins(settings, ch_result),
                                       current.version)
                champion_score = _metric(cp_scores, "model", metric)
            decision = decide(
                metric=metric,
                challenger=_metric(ch_scores, "model", metric),
                champion=champion_score,
                baselines=_gate(scored, gate),
                margin=margin,
                champion_version=current.version if current else None,
            )
        registry.fault_point("promotion")
        record = {
            "promotion.decision": "promoted" if decision.promote else "rejected",
            "promotion.reason": decision.reason,
            "promotion.metric": metric,
            "promotion.must_beat": ",".join(gate),
            "promotion.lost_to": ",".join(decision.lost_to),
            "promotion.challenger_score": f"{decision.challenger:.6g}",
            "promotion.champion_score": "" if decision.champion is None else f"{decision.champion:.6g}",
            "promotion.baseline_score": f"{scored['seasonal_naive']:.6g}" if "seasonal_naive" in scored else "",
            **{f"promotion.baseline.{b}": f"{s:.6g}" for b, s in scored.items()},
            **{f"promotion.baseline.{b}": "not scored" for b in gate if b not in scored},
            "promotion.compared_with": current.version if current else "",
            "promotion.origins": str(ch_result.n_origins) if ch_result is not None else "0",
            "promotion.by": "train flow",
            "promotion.at": _now(),
        }
        if ch_scores is not None:  # what monitoring holds every champion to, the first one included
            promised = _metric(ch_scores, "model", "mase")
            if math.isfinite(promised):
                record["monitor.promised_mase"] = f"{promised:.6g}"
        if decision.promote:
            registry.set_champion(name, version, previous=current.version if current else None, record=record,
                                  trained=challenger)
        else:
            registry.tag_version(name, version, record)
        registry.describe_decision(name, version, decision_text(decision, record, scored))
    if report_dir is not None and ch_result is not None:
        write_report(ch_result, report_dir, ch_scores)
    return decision


def decision_text(decision: Decision, record: dict[str, str], scored: dict[str, float]) -> str:
    """The version description's paragraph on why it serves (or not): decision, backtest scores, baselines."""
    m = decision.metric.upper()
    lines = [f"**Promotion: {record['promotion.decision']}** ({record['promotion.at']}). {decision.reason}"]
    if math.isfinite(decision.challenger):
        rows = [f"| this version | {decision.challenger:.4g} |"]
        rows += [f"| {b} | {v:.4g} |" for b, v in scored.items()]
        if decision.champion is not None:
            rows.append(f"| champion v{record['promotion.compared_with']} | {decision.champion:.4g} |")
        lines.append(f"Backtest on {record['promotion.origins']} origins, {m} (lower is better):\n\n"
                     f"| forecaster | {m} |\n|---|---|\n" + "\n".join(rows))
    if "monitor.promised_mase" in record:
        lines.append(f"Monitoring holds it to MASE {record['monitor.promised_mase']} (its backtest MASE).")
    return "\n\n".join(lines)


class NoChampionError(ForecastingError):
    """The model exists, but no version is its champion: none passed the promotion gate (nor was promoted by hand)."""


def require_champion(name: str) -> registry.ModelRef:
    """The champion of ``name``; else one ``NoChampionError`` line saying why there is none and what to do.

    A model that does not exist keeps the registry's own error ("no registered model ...").
    """
    current = registry.champion_or_none(name)
    if current is not None:
        return current
    try:
        latest = registry.resolve(name, registry.CHALLENGER)
    except ForecastingError:
        return registry.resolve(name)  # no such model (its own message), or a champion set meanwhile
    tags = registry.version_tags(name, latest.version)
    decision = tags.get("promotion.decision", "")
    reason = _one_line(tags.get("promotion.reason", ""))
    if decision == "rejected":
        why = f"no version passed the promotion gate (latest v{latest.version}: {reason})"
    elif not decision:
        why = f"no version passed the promotion gate (latest v{latest.version} was never judged: its promotion did not finish)"
    else:
        why = f"the champion alias was removed (latest v{latest.version}: {decision}, {reason})"
    raise NoChampionError(
        f"model '{name}' has no champion: {why}; promote one with `forecast promote --model {name} --version VERSION --why ...`"
    )


def promote_and_attach_report(
    ref: registry.ModelRef,
    frame: pd.DataFrame,
    *,
    lock_dir: Path,
    metric: str,
    margin: float,
    origins: int,
    must_beat: Sequence[str] | None = None,
) -> Decision:
    """``promote_challenger``, then attach its backtest report to the run the version came from."""
    with tempfile.TemporaryDirectory(prefix="promotion-") as tmp:
        report_dir = Path(tmp)
        decision = promote_challenger(
            ref.name, ref.version, frame, lock_dir=lock_dir, metric=metric, margin=margin, origins=origins,
            must_beat=must_beat, report_dir=report_dir,
        )
        if any(report_dir.iterdir()):
            registry.log_version_artifacts(ref.run_id, report_dir, "backtest")
    return decision


def promote(name: str, version: str, *, why: str, lock_dir: Path) -> str | None:
    """A human makes ``version`` the champion; returns the version it replaced.

    What a killed process left half-made is cleaned up first (``registry.recover``), so a torn version
    cannot be promoted: it is gone, and the error lists the versions there are.
    """
    registry.recover(name)
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
    registry.recover(name)
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
