"""Score issued forecasts against the actuals that arrived later; compare with what each version promised.

Pure functions over frames: ``score`` joins the forecast log to actuals (only
forecasts whose actual exists are scored), ``summarise`` aggregates per
version / series / step over rolling windows, ``judge`` compares the realised
MASE with the promised one and the interval coverage with its nominal level,
``drift`` compares recent history with the training window. ``evaluate`` runs
them all and returns a ``MonitorReport`` whose ``alerts`` say what is wrong.

MASE uses the backtest's scale: the seasonal-naive MAE of the series' history
up to the forecast origin, with the model's ``baseline.season_length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.errors import ForecastingError
from forecasting.metrics import seasonal_naive_scale


@dataclass(frozen=True)
class MonitorSettings:
    """Thresholds of the alert."""

    windows_days: tuple[int, ...] = (7, 30)
    """Rolling windows, in days back from ``now``, over the forecast target times."""
    mase_factor: float = 1.5
    """Alert when realised MASE > factor x promised MASE."""
    coverage_band: float = 0.15
    """Alert when interval coverage leaves [nominal - band, nominal + band]."""
    level_shift: float = 1.0
    """Alert when |recent mean - training mean| exceeds this many training standard deviations."""
    scale_ratio: float = 2.0
    """Alert when recent std / training std leaves [1/ratio, ratio]."""
    max_missing: float = 0.2
    """Alert when more than this share of the recent grid has no target."""
    min_points: int = 3
    """Windows with fewer scored points are reported but never alert."""

    def __post_init__(self) -> None:
        problems = []
        if not self.windows_days or any(int(d) < 1 for d in self.windows_days):
            problems.append(f"windows_days must be positive day counts, got {self.windows_days}")
        if self.mase_factor <= 0:
            problems.append(f"mase_factor must be > 0, got {self.mase_factor}")
        if not 0 <= self.coverage_band < 1:
            problems.append(f"coverage_band must be in [0, 1), got {self.coverage_band}")
        if problems:
            raise ForecastingError("invalid monitor settings: " + "; ".join(problems))


@dataclass
class MonitorReport:
    scored: pd.DataFrame
    versions: pd.DataFrame
    detail: pd.DataFrame
    drift: pd.DataFrame
    alerts: list[str] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return bool(self.alerts)


def interval_columns(frame: pd.DataFrame) -> tuple[str, str, float] | None:
    """The outermost quantile pair (lower, upper, nominal coverage), or None without quantiles."""
    levels = sorted(float(c[1:]) for c in frame.columns if c.startswith("q") and c[1:2].isdigit())
    if len(levels) < 2:
        return None
    lo, hi = levels[0], levels[-1]
    return f"q{lo:g}", f"q{hi:g}", round(hi - lo, 6)


def score(log: pd.DataFrame, actuals: pd.DataFrame, *, season: int) -> pd.DataFrame:
    """One row per logged forecast whose actual has arrived: error, |error|, scaled |error|, interval hit.

    ``actuals`` is a canonical observation frame. Forecasts without an actual
    (not yet arrived, or NaN) are dropped; so are origins whose history is too
    short or constant for a MASE scale (their ``scaled`` would be undefined).
    """
    if log.empty:
        return log.assign(actual=[], error=[], abs_error=[], scaled=[])
    obs = actuals.loc[actuals["target"].notna(), ["series_id", "timestamp", "target"]]
    joined = log.merge(obs.rename(columns={"target": "actual"}), on=["series_id", "timestamp"], how="inner")
    if joined.empty:
        return joined.assign(error=[], abs_error=[], scaled=[])
    joined["error"] = joined["mean"] - joined["actual"]  # > 0: forecast too high
    joined["abs_error"] = joined["error"].abs()
    joined["scale"] = _origin_scales(joined, obs, season)
    joined = joined[joined["scale"] > 0].copy()
    joined["scaled"] = joined["abs_error"] / joined["scale"]
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


def drift(
    history: pd.DataFrame,
    *,
    train_start: pd.Timestamp,
    train_end: pd.Timestamp,
    recent_days: int,
    now: pd.Timestamp,
    freq: str,
    settings: MonitorSettings,
) -> tuple[pd.DataFrame, list[str]]:
    """Level and scale of each series' last ``recent_days`` against its training window, and the missing share."""
    rows, reasons = [], []
    start = now - pd.Timedelta(days=int(recent_days))
    for sid, series in history.groupby("series_id", sort=True):
        train = series[(series["timestamp"] >= train_start) & (series["timestamp"] <= train_end)]["target"].dropna()
        recent = series[(series["timestamp"] > start) & (series["timestamp"] <= now)]
        expected = len(pd.date_range(start, now, freq=freq, inclusive="right"))
        present = int(recent["target"].notna().sum())
        missing = 1.0 - present / expected if expected else 0.0
        std = float(train.std()) if len(train) > 1 else np.nan
        level = (float(recent["target"].mean()) - float(train.mean())) / std if std and present else np.nan
        scale = float(recent["target"].std()) / std if std and present > 1 else np.nan
        why = []
        if np.isfinite(level) and abs(level) > settings.level_shift:
            why.append(f"level moved {level:+.2f} training std")
        if np.isfinite(scale) and not 1 / settings.scale_ratio <= scale <= settings.scale_ratio:
            why.append(f"scale is {scale:.2f}x the training std")
        if missing > settings.max_missing:
            why.append(f"{missing:.0%} of the last {recent_days} days missing")
        rows.append({"series_id": sid, "level_shift": level, "scale_ratio": scale, "missing": max(missing, 0.0),
                     "alert": "; ".join(why)})
        reasons.extend(f"drift in {sid}: {w}" for w in why)
    return pd.DataFrame(rows, columns=["series_id", "level_shift", "scale_ratio", "missing", "alert"]), reasons


def evaluate(
    log: pd.DataFrame,
    actuals: pd.DataFrame,
    *,
    season: int,
    promised: dict[str, float],
    settings: MonitorSettings,
    now: pd.Timestamp | None = None,
    training_window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    freq: str | None = None,
) -> MonitorReport:
    """Score, summarise, judge and (given the training window and freq) check drift, in one call."""
    scored = score(log, actuals, season=season)
    # Error windows end at ``now`` (default: the newest scored target time); drift looks at the newest data.
    drift_now = actuals["timestamp"].max() if now is None else min(now, actuals["timestamp"].max())
    if now is None:
        now = scored["timestamp"].max() if len(scored) else drift_now
    versions, detail = summarise(scored, windows_days=settings.windows_days, now=now)
    versions, alerts = judge(versions, promised, settings)
    drift_table = pd.DataFrame(columns=["series_id", "level_shift", "scale_ratio", "missing", "alert"])
    if training_window is not None and freq is not None and len(actuals):
        drift_table, reasons = drift(
            actuals, train_start=training_window[0], train_end=training_window[1],
            recent_days=max(settings.windows_days), now=drift_now, freq=freq, settings=settings,
        )
        alerts += reasons
    return MonitorReport(scored=scored, versions=versions, detail=detail, drift=drift_table, alerts=alerts)


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


def markdown(model_name: str, report: MonitorReport) -> str:
    """The summary artifact: realised vs promised per version and window, then the alerts."""
    lines = [f"# Monitoring of {model_name}", "", "| version | window (days) | points | MAE | MASE | promised MASE | ratio | bias | coverage |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report.versions.to_dict("records"):
        cov = r.get("coverage", np.nan)
        lines.append(f"| {r['model_version']} | {r['window_days']} | {r['n']} | {r['mae']:.4g} | {r['mase']:.3g} | "
                     f"{r['promised_mase']:.3g} | {r['ratio']:.2f} | {r['bias']:+.4g} | "
                     + ("-" if not np.isfinite(cov) else f"{cov:.0%}") + " |")
    lines += ["", "**ALERT**" if report.alert else "No alert.", *[f"- {a}" for a in report.alerts]]
    return "\n".join(lines)
