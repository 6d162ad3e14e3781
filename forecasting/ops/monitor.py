"""Score issued forecasts against the actuals that arrived later; compare with what each version promised.

Pure functions over frames: ``score`` joins the forecast log to actuals (only
forecasts whose actual exists are scored), ``summarise`` aggregates per
version / series / step over rolling windows, ``judge`` compares the realised
MASE with the promised one and the interval coverage with its nominal level,
``drift`` compares recent history with the same part of the season in the
training data. ``evaluate`` runs them all and returns a ``MonitorReport``
whose ``alerts`` say what is wrong.

Each version is scored with its own settings: MASE uses the backtest's scale
(the seasonal-naive MAE of the series' history up to the forecast origin, with
that version's ``baseline.season_length``), and interval coverage uses the
outermost quantile pair that version issued.

Thresholds and the retrain-on-alert policy are operations settings, not model
settings: ``forecasting.config.monitor`` reads them (``MonitorSettings``,
``load_settings``), so changing one never needs a retrain. See
``docs/monitoring.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.config.monitor import MonitorSettings
from forecasting.errors import ForecastingError
from forecasting.evaluation.metrics import seasonal_naive_scale


@dataclass
class MonitorReport:
    """What one evaluation found: scored rows, per-version and per-series summaries, drift, alert reasons."""

    scored: pd.DataFrame
    versions: pd.DataFrame
    detail: pd.DataFrame
    drift: pd.DataFrame
    alerts: list[str] = field(default_factory=list)
    period_end: pd.Timestamp | None = None
    """The end of the error windows (``now``): with the model version it identifies one alert."""

    @property
    def alert(self) -> bool:
        return bool(self.alerts)


def interval_columns(frame: pd.DataFrame) -> tuple[str, str, float] | None:
    """The outermost quantile pair (lower, upper, nominal coverage) with values, or None without quantiles.

    Columns that are all NaN do not count: in a log holding several versions,
    they are another version's quantiles.
    """
    levels = sorted(float(c[1:]) for c in _quantile_columns(frame) if frame[c].notna().any())
    if len(levels) < 2:
        return None
    lo, hi = levels[0], levels[-1]
    return f"q{lo:g}", f"q{hi:g}", round(hi - lo, 6)


def _quantile_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("q") and c[1:2].isdigit()]


def score_forecasts(log: pd.DataFrame, actuals: pd.DataFrame, *, season: int | Mapping[str, int]) -> pd.DataFrame:
    """One row per logged forecast whose actual has arrived: error, |error|, scaled |error|, interval hit.

    ``actuals`` is a canonical observation frame. ``season`` is one season
    length for every version or one per ``model_version`` (each version is
    held to the MASE scale its own backtest used). Interval hits use each
    version's own outermost quantile pair, so versions with different
    quantiles are never judged on each other's columns. Forecasts without an
    actual (not yet arrived, or NaN) are dropped; so are origins whose history
    is too short or constant for a MASE scale (their ``scaled`` would be undefined).
    """
    if log.empty:
        return log.assign(actual=[], error=[], abs_error=[], scaled=[])
    obs = actuals.loc[actuals["target"].notna(), ["series_id", "timestamp", "target"]]
    parts = []
    for version, rows in log.groupby(log["model_version"].astype(str), sort=True):
        if isinstance(season, Mapping):
            if version not in season:
                raise ForecastingError(f"no season length given for model version {version}")
            length = int(season[version])
        else:
            length = int(season)
        parts.append(_score_version(rows, obs, length))
    filled = [part for part in parts if len(part)]
    return pd.concat(filled, ignore_index=True) if filled else parts[0]


def _score_version(log: pd.DataFrame, obs: pd.DataFrame, season: int) -> pd.DataFrame:
    joined = log.merge(obs.rename(columns={"target": "actual"}), on=["series_id", "timestamp"], how="inner")
    if joined.empty:
        return joined.assign(error=[], abs_error=[], scaled=[])
    joined["error"] = joined["mean"] - joined["actual"]  # > 0: forecast too high
    joined["abs_error"] = joined["error"].abs()
    joined["scale"] = _origin_scales(joined, obs, season)
    joined = joined[joined["scale"] > 0].copy()
    joined["scaled"] = joined["abs_error"] / joined["scale"]
    joined["season"] = season
    pair = interval_columns(log)
    if pair is not None:
        lo, hi, nominal = pair
        joined["hit"] = ((joined[lo] <= joined["actual"]) & (joined["actual"] <= joined[hi])).astype(float)
        joined["nominal"] = nominal
    return joined.reset_index(drop=True)


def _origin_scales(joined: pd.DataFrame, obs: pd.DataFrame, season: int) -> np.ndarray:
    """Seasonal-naive in-sample MAE of each row's series through its origin (NaN when undefined)."""
    obs = obs.sort_values(["series_id", "timestamp"]).reset_index(drop=True)
    values = obs["target"].to_numpy(dtype=float)
    out = np.full(len(joined), np.nan)
    bounds = obs.groupby("series_id", sort=False).indices
    for sid, rows in joined.groupby("series_id").indices.items():
        if sid not in bounds:
            continue
        idx = bounds[sid]
        first = int(idx[0])
        stamps = _naive_utc(obs["timestamp"])[idx]
        origins = _naive_utc(joined["origin"])[rows]
        ends = first + np.searchsorted(stamps, origins, side="right")  # history through the origin
        ok = ends - first > season
        if ok.any():
            out[rows[ok]] = seasonal_naive_scale(values, np.full(ok.sum(), first), ends[ok], season=season)
    return out


def _naive_utc(stamps: pd.Series) -> np.ndarray:
    return pd.to_datetime(stamps, utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def _aggregate(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    agg = {"n": ("abs_error", "size"), "mae": ("abs_error", "mean"), "mase": ("scaled", "mean"), "bias": ("error", "mean")}
    if "hit" in rows:
        agg["coverage"] = ("hit", "mean")
        agg["nominal"] = ("nominal", "first")
    return rows.groupby(by, sort=True).agg(**agg).reset_index()


def summarise(scored: pd.DataFrame, *, windows_days: tuple[int, ...], now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per window: (per version, per version x series x step) realised MAE, MASE, bias, coverage.

    A window of ``d`` days holds the forecasts whose target time lies in ``(now - d days, now]``.
    """
    versions, detail = [], []
    for days in windows_days:
        rows = scored[(scored["timestamp"] > now - pd.Timedelta(days=int(days))) & (scored["timestamp"] <= now)]
        if rows.empty:
            continue
        versions.append(_aggregate(rows, ["model_version"]).assign(window_days=int(days)))
        detail.append(_aggregate(rows, ["model_version", "series_id", "step"]).assign(window_days=int(days)))
    empty = pd.DataFrame(columns=["model_version", "window_days", "n", "mae", "mase", "bias"])
    return (pd.concat(versions, ignore_index=True) if versions else empty,
            pd.concat(detail, ignore_index=True) if detail else empty)


def judge(versions: pd.DataFrame, promised: dict[str, float], settings: MonitorSettings) -> tuple[pd.DataFrame, list[str]]:
    """Add promised MASE, realised/promised ratio and the alert reasons of each (version, window) row."""
    out = versions.copy()
    out["promised_mase"] = [float(promised.get(str(v), np.nan)) for v in out["model_version"]]
    out["ratio"] = out["mase"] / out["promised_mase"]
    reasons: list[str] = []
    alert_col = []
    for row in out.itertuples(index=False):
        why = []
        if row.n >= settings.min_points:
            if np.isfinite(row.ratio) and row.ratio > settings.mase_factor:
                why.append(f"realised MASE {row.mase:.3g} is {row.ratio:.2f}x the promised {row.promised_mase:.3g} "
                           f"(limit {settings.mase_factor}x)")
            coverage = getattr(row, "coverage", np.nan)
            if np.isfinite(coverage) and abs(coverage - row.nominal) > settings.coverage_band:
                why.append(f"interval coverage {coverage:.0%} is outside {row.nominal:.0%} +/- {settings.coverage_band:.0%}")
        alert_col.append("; ".join(why))
        reasons.extend(f"v{row.model_version}, last {row.window_days} days ({row.n} points): {w}" for w in why)
    out["alert"] = alert_col
    return out, reasons


DRIFT_COLUMNS = ["series_id", "level_shift", "scale_ratio", "missing", "reference", "reference_points", "alert"]
WHOLE_WINDOW = "whole training window"


def seasonal_reference(
    stamps: pd.Series,
    *,
    start: pd.Timestamp,
    now: pd.Timestamp,
    train_start: pd.Timestamp,
    train_end: pd.Timestamp,
    pad_days: int,
    min_points: int,
) -> tuple[np.ndarray, str]:
    """Which training points are the same part of the season as the recent window ``(start, now]``.

    The recent window moved back by 1, 2, ... years and widened by
    ``pad_days`` on each side, intersected with the training window; points
    after ``start`` are never their own reference. December is then compared
    with earlier Decembers, not with a whole year of summers and winters.
    Returns a boolean mask over ``stamps`` and a label of the reference; when
    training spans less than a year, or the same season holds fewer than
    ``min_points`` points, the mask is the whole training window
    (``WHOLE_WINDOW``): with no earlier season to compare with, that is the best
    there is.
    """
    inside = ((stamps >= train_start) & (stamps <= train_end)).to_numpy()
    if train_end - train_start < pd.Timedelta(days=365):
        return inside, WHOLE_WINDOW
    pad = pd.Timedelta(days=int(pad_days))
    mask = np.zeros(len(stamps), dtype=bool)
    years = 0
    for k in range(1, 1000):
        lo = start - pd.DateOffset(years=k) - pad
        hi = now - pd.DateOffset(years=k) + pad
        if hi < train_start:
            break
        hit = inside & ((stamps > lo) & (stamps <= hi) & (stamps <= start)).to_numpy()
        if hit.any():
            mask |= hit
            years += 1
    if mask.sum() < max(min_points, 2):
        return inside, WHOLE_WINDOW
    return mask, f"same season, {years} earlier year{'s' if years != 1 else ''} (+/-{int(pad_days)} days)"


def drift(
    history: pd.DataFrame,
    *,
    train_start: pd.Timestamp,
    train_end: pd.Timestamp,
    recent_days: int,
    now: pd.Timestamp,
    freq: str,
    settings: MonitorSettings,
    timezone: str = "UTC",
) -> tuple[pd.DataFrame, list[str]]:
    """Level and scale of each series' last ``recent_days`` against a reference from training, and the missing share.

    Level is ``(recent mean - reference mean) / reference std``; scale is
    ``recent std / reference std``. With ``drift_reference: same_season``
    (default) the reference is the same calendar window in earlier training
    years (:func:`seasonal_reference`), so a normal winter after a training
    window full of summers stays quiet while a genuine shift within the season
    still trips; with ``training_window`` it is the whole training window. The
    ``reference`` column says which one each series was compared with.
    """
    rows, reasons = [], []
    start = now - pd.Timedelta(days=int(recent_days))
    # Grid points, not pd.date_range: a trading calendar (XNYS) is no pandas alias, and local days
    # (``timezone``, the model's data.calendar_timezone) start at local midnight.
    from forecasting.data.calendar import Grid

    grid = Grid(freq, timezone)
    points = grid.points(pd.Timestamp(start), pd.Timestamp(now))
    expected = int((points > pd.Timestamp(start)).sum())
    for sid, series in history.groupby("series_id", sort=True):
        series = series[series["target"].notna()]
        recent = series[(series["timestamp"] > start) & (series["timestamp"] <= now)]["target"]
        if settings.drift_reference == "same_season":
            mask, basis = seasonal_reference(series["timestamp"], start=start, now=now, train_start=train_start,
                                             train_end=train_end, pad_days=settings.season_pad_days,
                                             min_points=expected // 2)
        else:
            mask = ((series["timestamp"] >= train_start) & (series["timestamp"] <= train_end)).to_numpy()
            basis = WHOLE_WINDOW
        reference = series["target"][mask]
        present = len(recent)
        missing = 1.0 - present / expected if expected else 0.0
        std = float(reference.std()) if len(reference) > 1 else np.nan
        level = (float(recent.mean()) - float(reference.mean())) / std if std and present else np.nan
        scale = float(recent.std()) / std if std and present > 1 else np.nan
        why = []
        if np.isfinite(level) and abs(level) > settings.level_shift:
            why.append(f"level moved {level:+.2f} std against the {basis}")
        if np.isfinite(scale) and not 1 / settings.scale_ratio <= scale <= settings.scale_ratio:
            why.append(f"scale is {scale:.2f}x the std of the {basis}")
        if missing > settings.max_missing:
            why.append(f"{missing:.0%} of the last {recent_days} days missing")
        rows.append({"series_id": sid, "level_shift": level, "scale_ratio": scale, "missing": max(missing, 0.0),
                     "reference": basis, "reference_points": int(len(reference)), "alert": "; ".join(why)})
        reasons.extend(f"drift in {sid}: {w}" for w in why)
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS), reasons


def evaluate(
    log: pd.DataFrame,
    actuals: pd.DataFrame,
    *,
    season: int | Mapping[str, int],
    promised: dict[str, float],
    settings: MonitorSettings,
    now: pd.Timestamp | None = None,
    training_window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    freq: str | None = None,
    timezone: str = "UTC",
) -> MonitorReport:
    """Score, summarise, judge and (given the training window and freq) check drift, in one call.

    ``season`` and ``promised`` may differ per version; drift is checked once
    per series against ``training_window`` (the caller passes the window of
    the version in service).
    """
    scored = score_forecasts(log, actuals, season=season)
    # Error windows end at ``now`` (default: the newest scored target time); drift looks at the newest data.
    drift_now = actuals["timestamp"].max() if now is None else min(now, actuals["timestamp"].max())
    if now is None:
        now = scored["timestamp"].max() if len(scored) else drift_now
    versions, detail = summarise(scored, windows_days=settings.windows_days, now=now)
    versions, alerts = judge(versions, promised, settings)
    drift_table = pd.DataFrame(columns=DRIFT_COLUMNS)
    if training_window is not None and freq is not None and len(actuals):
        drift_table, reasons = drift(
            actuals, train_start=training_window[0], train_end=training_window[1],
            recent_days=max(settings.windows_days), now=drift_now, freq=freq, settings=settings, timezone=timezone,
        )
        alerts += reasons
    return MonitorReport(scored=scored, versions=versions, detail=detail, drift=drift_table, alerts=alerts,
                         period_end=None if pd.isna(now) else pd.Timestamp(now))


def promised_mase(tags: dict[str, str]) -> float:
    """The MASE a version promised: ``monitor.promised_mase``, else its promotion backtest score on MASE; NaN if none."""
    for value in (tags.get("monitor.promised_mase"),
                  tags.get("promotion.challenger_score") if tags.get("promotion.metric") == "mase" else None):
        try:
            if value not in (None, ""):
                return float(value)
        except ValueError:
            continue
    return float("nan")


def alert_key(model_name: str, version: str, period_end: pd.Timestamp | None) -> str:
    """The identity of one alert: model, version in service, end of the monitored period.

    A rerun over the same period (same data, any thresholds) yields the same
    key, so whatever the alert triggers (a retrain) happens once per key; the
    next period with new actuals is a new alert.
    """
    end = "open" if period_end is None else pd.Timestamp(period_end).tz_convert("UTC").strftime("%Y-%m-%dT%H:%MZ")
    return f"monitor-alert/{model_name}/v{version}/{end}"


@dataclass(frozen=True)
class RetrainDecision:
    """Whether an alert should start a retrain, and the sentence that says why (the monitor flow records it)."""

    start: bool
    status: str
    """'start', 'no-alert', 'off' or 'already-started'."""
    message: str


def retrain_decision(
    report: MonitorReport, *, key: str, retrain_on_alert: bool, started_key: str = "", started_run: str = ""
) -> RetrainDecision:
    """The retrain policy, pure: retrain on an alert, when retraining on alert is on, once per alert ``key``
    (``started_key``/``started_run``: what the version's tags say was already started). The flow only acts on it."""
    if not report.alert:
        return RetrainDecision(False, "no-alert", "No alert: no retrain.")
    if not retrain_on_alert:
        return RetrainDecision(
            False, "off", "Retrain on alert is off (`retrain_on_alert` in configs/monitor/settings.yaml or the flow parameter)."
        )
    if started_key == key:
        return RetrainDecision(
            False, "already-started",
            f"Retrain already started for this alert (flow run {started_run}, key {key}); not started again.",
        )
    return RetrainDecision(True, "start", f"Alert {key}: retrain.")


def markdown(model_name: str, report: MonitorReport, *, notes: list[str] | tuple[str, ...] = ()) -> str:
    """The summary artifact: realised vs promised per version and window, drift per series, alerts, then ``notes``."""
    end = "-" if report.period_end is None else pd.Timestamp(report.period_end).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Monitoring of {model_name}", "", f"Period ends {end}.", "",
             "| version | window (days) | points | MAE | MASE | promised MASE | ratio | bias | coverage |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report.versions.to_dict("records"):
        cov = r.get("coverage", np.nan)
        cov_text = "-" if cov is None or not np.isfinite(cov) else f"{cov:.0%} (nominal {r['nominal']:.0%})"
        lines.append(f"| {r['model_version']} | {r['window_days']} | {r['n']} | {r['mae']:.4g} | {r['mase']:.3g} | "
                     f"{r['promised_mase']:.3g} | {r['ratio']:.2f} | {r['bias']:+.4g} | {cov_text} |")
    if len(report.drift):
        lines += ["", "| series | level shift (std) | scale ratio | missing | compared with |", "|---|---:|---:|---:|---|"]
        for r in report.drift.to_dict("records"):
            lines.append(f"| {r['series_id']} | {r['level_shift']:+.2f} | {r['scale_ratio']:.2f} | {r['missing']:.0%} | "
                         f"{r['reference']} ({r['reference_points']} points) |")
    lines += ["", "**ALERT**" if report.alert else "No alert.", *[f"- {a}" for a in report.alerts]]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)
