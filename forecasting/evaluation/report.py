"""Backtest scores as tables, Markdown, CSV/Parquet and plots.

Scores are aggregated as the M competitions do: each metric per series and
horizon step (mean over that series' origins), then the mean over series for
each step (the error-by-step curve), then the mean over steps (the headline
number). Every series weighs the same, however many origins it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from forecasting.evaluation.backtest import MODEL, BacktestResult
from forecasting.evaluation.metrics import (
    competition_mean,
    interval_hits,
    pinball_terms,
    scaled_errors,
    series_step_mean,
    smape_terms,
)
from forecasting.evaluation.statistical import STATISTICAL

POINT_METRICS: tuple[str, ...] = ("mae", "rmse", "smape", "mase")
LABELS = {"mae": "MAE", "rmse": "RMSE", "smape": "sMAPE %", "mase": "MASE", "pinball": "pinball", "skill": "skill vs seasonal naive"}
REFERENCE = "seasonal_naive"
MAX_SERIES_ROWS = 20


@dataclass(frozen=True)
class Scores:
    """Aggregated scores of one backtest."""

    summary: pd.DataFrame
    """One row per forecaster: each metric over all series and steps, and MAE skill vs seasonal naive."""
    by_step: pd.DataFrame
    """forecaster, step, metrics: mean over series at each horizon step."""
    by_series: pd.DataFrame
    """forecaster, series_id, windows, metrics: mean over steps per series."""
    beats_reference: bool
    """Whether the model's MAE is below seasonal naive's."""
    beats: dict[str, bool]
    """Baseline -> whether the model's MAE is below that baseline's (naive family and statistical ones)."""
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ReportFiles:
    directory: Path
    markdown: Path
    files: tuple[Path, ...]


def score_backtest(result: BacktestResult) -> Scores:
    """Every metric per forecaster, per series, per step and overall."""
    notes: list[str] = []
    labels = np.unique(result.series)
    series_names = [result.series_ids[i] for i in labels]
    names = list(result.forecasts)  # the model, the naive family, then any statistical baselines
    per: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}  # forecaster -> metric -> (S, H)
    valid = result.scale > 0
    if not valid.all():
        flat = sorted({result.series_ids[i] for i in result.series[~valid]})
        notes.append(
            f"MASE leaves out {int((~valid).sum())} windows whose history is constant at lag {result.season} "
            f"(seasonal-naive error 0, MASE undefined), in series {flat[:10]}"
        )
    for name, pred in result.forecasts.items():
        errors = result.actual - pred
        per[name]["mae"] = series_step_mean(np.abs(errors), result.series)[1]
        per[name]["rmse"] = series_step_mean(errors**2, result.series)[1]  # MSE per (series, step); rooted below
        per[name]["smape"] = series_step_mean(smape_terms(result.actual, pred), result.series)[1]
        per[name]["mase"] = _mase(result, pred, valid, labels)
    if result.quantiles:
        per[MODEL] |= _quantile_scores(result)

    metrics = list(dict.fromkeys(m for name in names for m in per[name]))
    summary_rows, step_rows, series_rows = [], [], []
    windows = np.bincount(np.searchsorted(labels, result.series), minlength=labels.size)
    for name in names:
        row: dict[str, object] = {"forecaster": name}
        steps = pd.DataFrame({"forecaster": name, "step": np.arange(1, result.horizon + 1)})
        by_series = pd.DataFrame({"forecaster": name, "series_id": series_names, "windows": windows})
        for metric in metrics:
            table = per[name].get(metric)
            if table is None:
                row[metric] = np.nan
                continue
            if metric == "rmse":
                row[metric], steps[metric], by_series[metric] = _pooled_rmse(table)
                continue
            # MASE may lack series whose every history was constant; the others still count.
            kept = table[~np.isnan(table).all(axis=1)] if metric == "mase" else table
            per_step, overall = competition_mean(kept) if kept.size else (np.full(result.horizon, np.nan), np.nan)
            row[metric], steps[metric], by_series[metric] = overall, per_step, table.mean(axis=1)
        summary_rows.append(row)
        step_rows.append(steps)
        series_rows.append(by_series)
    summary = pd.DataFrame(summary_rows)
    reference = float(summary.loc[summary["forecaster"] == REFERENCE, "mae"].iloc[0])
    summary["skill"] = 1.0 - summary["mae"] / reference if reference > 0 else np.nan
    model_mae = float(summary.loc[summary["forecaster"] == MODEL, "mae"].iloc[0])
    maes = summary.set_index("forecaster")["mae"]
    return Scores(
        summary=summary,
        by_step=pd.concat(step_rows, ignore_index=True),
        by_series=pd.concat(series_rows, ignore_index=True),
        beats_reference=bool(model_mae < reference),
        beats={name: bool(model_mae < float(maes[name])) for name in names if name != MODEL},
        notes=tuple(notes),
    )


def _pooled_rmse(mse: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """RMSE from ``(series, step)`` mean squared errors: overall, by step, by series.

    Each series' RMSE is the root of its squared errors pooled over origins and steps; the headline is
    their mean over series. By step, the root of the mean squared error over series at that step. So an
    RMSE never equals the MAE just because a series has one origin.
    """
    by_series = np.sqrt(mse.mean(axis=1))  # (S,)
    by_step = np.sqrt(mse.mean(axis=0))  # (H,)
    return float(by_series.mean()), by_step, by_series


def _mase(result: BacktestResult, pred: np.ndarray, valid: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = np.full((labels.size, result.horizon), np.nan)
    if not valid.any():
        return out
    terms = scaled_errors(result.actual[valid], pred[valid], scale=result.scale[valid])
    present, table = series_step_mean(terms, result.series[valid])
    out[np.searchsorted(labels, present)] = table
    return out


def _quantile_scores(result: BacktestResult) -> dict[str, np.ndarray]:
    """Mean pinball over the model's quantile levels, and coverage of each central interval."""
    out: dict[str, np.ndarray] = {}
    levels = list(result.quantiles)
    pinballs = [pinball_terms(result.actual, result.quantiles[q], quantile=q) for q in levels]
    out["pinball"] = series_step_mean(np.mean(pinballs, axis=0), result.series)[1]
    for q in levels:
        upper = round(1.0 - q, 10)
        if q < 0.5 and upper in result.quantiles:
            hits = interval_hits(result.actual, result.quantiles[q], result.quantiles[upper])
            out[coverage_name(q)] = series_step_mean(hits, result.series)[1]
    return out


def coverage_name(lower: float) -> str:
    """``coverage_80`` for the 0.1-0.9 interval: its nominal level in percent."""
    return f"coverage_{round(100 * (1 - 2 * lower)):d}"


def forecasts_frame(result: BacktestResult) -> pd.DataFrame:
    """One row per (series, origin, step): actual, the model, its quantiles and every baseline."""
    n, h = result.actual.shape
    ids = np.asarray(result.series_ids, dtype=object)[result.series]
    frame = pd.DataFrame(
        {
            "series_id": np.repeat(ids, h).astype(str),
            "origin": pd.to_datetime(np.repeat(result.origin, h), utc=True),
            "timestamp": pd.to_datetime(result.target_time.reshape(-1), utc=True),
            "step": np.tile(np.arange(1, h + 1), n),
            "fold": np.repeat(result.fold, h),
            "in_sample": np.repeat(result.in_sample, h),
            "actual": result.actual.reshape(-1),
        }
    )
    for name in result.forecasts:
        frame[name] = result.forecasts[name].reshape(-1)
        if name == MODEL:
            for q, values in result.quantiles.items():
                frame[f"{MODEL}_q{q:g}"] = values.reshape(-1)
    return frame


def describe(result: BacktestResult) -> dict[str, object]:
    """What was backtested and how, as plain values (MLflow params, the report's setup table)."""
    origins = np.unique(result.origin)
    settings = result.settings
    return {
        "model_name": result.model_name,
        "model_version": result.model_version or "trained per fold",
        "series": int(np.unique(result.series).size),
        "windows": result.n_windows,
        "origins": int(origins.size),
        "first_origin": str(pd.Timestamp(origins[0], tz="UTC")),
        "last_origin": str(pd.Timestamp(origins[-1], tz="UTC")),
        "horizon": result.horizon,
        "lookback": result.lookback,
        "season": result.season,
        "freq": result.freq,
        "stride": settings.stride or result.horizon,
        "refit": settings.refit if result.model_version is None else "never (registered model)",
        "window": settings.window if result.model_version is None else "-",
        "in_sample": settings.in_sample,
        "folds": len(result.folds),
    }


def to_markdown(result: BacktestResult, scores: Scores, *, images: dict[str, str] | None = None) -> str:
    """The report: verdict, summary, error by step, per series, setup and notes."""
    d = describe(result)
    lines = [
        f"# Backtest: {result.label}",
        "",
        f"{d['series']} series, {d['origins']} origins from {d['first_origin']} to {d['last_origin']} "
        f"every {d['stride']} steps ({d['windows']} forecasts), horizon {d['horizon']}, lookback {d['lookback']}, "
        f"refit: {d['refit']}.",
        "",
        verdict(result, scores),
        "",
        f"## Accuracy over all series and steps (original units; MASE against seasonal naive, season {result.season})",
        "",
        summary_markdown(scores),
        "",
        "Skill = 1 - MAE / MAE of seasonal naive (above 0 beats it). The naive family reads the same lookback window "
        "as the model; statistical baselines (ets, theta, arima) are refitted per origin on the history up to it. "
        "Aggregation: each metric per series and step, then the mean over series per step, then over steps; RMSE is "
        "the root of each series' squared errors pooled over its origins and steps, averaged over series.",
        "",
        "## MAE by horizon step (mean over series)",
        "",
    ]
    if images and "error_by_step" in images:
        lines += [f"![MAE by horizon step]({images['error_by_step']})", ""]
    pivot = scores.by_step.pivot(index="step", columns="forecaster", values="mae")[list(result.forecasts)]
    lines += [_markdown_table(pivot.reset_index()), ""]
    if images and "forecasts" in images:
        lines += ["## Forecasts vs actuals (latest origins)", "", f"![forecasts vs actuals]({images['forecasts']})", ""]
    by_series = scores.by_series.pivot(index="series_id", columns="forecaster", values="mae")[list(result.forecasts)]
    by_series = by_series.sort_values(MODEL, ascending=False)
    title = "## MAE per series" + (f" (worst {MAX_SERIES_ROWS} for the model; all in by_series.csv)" if len(by_series) > MAX_SERIES_ROWS else "")
    lines += [title, "", _markdown_table(by_series.head(MAX_SERIES_ROWS).reset_index()), ""]
    lines += ["## Setup", "", _markdown_table(pd.DataFrame({"setting": list(d), "value": [str(v) for v in d.values()]})), ""]
    folds = pd.DataFrame(
        {
            "fold": [f.index for f in result.folds],
            "cut-off (last time learned from)": [str(f.cutoff) for f in result.folds],
            "windows": [f.windows for f in result.folds],
            "train rows": ["-" if f.train_rows is None else f.train_rows for f in result.folds],
            "train s": ["-" if f.train_seconds is None else f"{f.train_seconds:.1f}" for f in result.folds],
        }
    )
    lines += ["## Folds", "", _markdown_table(folds), ""]
    notes = [*result.notes, *scores.notes]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    lines += [
        "Settings:",
        "",
        "```yaml",
        yaml.safe_dump({"backtest": result.settings.model_dump(mode="json")}, sort_keys=False).strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def verdict(result: BacktestResult, scores: Scores) -> str:
    """One line: does the model beat seasonal naive on MAE? A model that does not is flagged."""
    s = scores.summary.set_index("forecaster")
    model, ref = s.loc[MODEL, "mae"], s.loc[REFERENCE, "mae"]
    statistical = [n for n in result.forecasts if n in STATISTICAL]
    losses = [f"{n} (MAE {s.loc[n, 'mae']:.4g})" for n in statistical if not scores.beats[n]]
    if scores.beats_reference:
        line = f"**The model beats seasonal naive (season {result.season})**: MAE {model:.4g} vs {ref:.4g} (skill {1 - model / ref:+.1%})."
        if losses:
            line += " **FLAG: it loses to " + " and ".join(losses) + "**: a user running statsforecast would forecast better."
        elif statistical:
            line += " It also beats " + " and ".join(f"{n} ({s.loc[n, 'mae']:.4g})" for n in statistical) + "."
        return line
    return (
        f"**FLAG: the model does not beat seasonal naive (season {result.season})**: MAE {model:.4g} vs {ref:.4g}. "
        "Do not serve it on accuracy grounds."
    )


def write_report(result: BacktestResult, directory: str | Path, scores: Scores | None = None) -> ReportFiles:
    """Write report.md (and report.html, plots inline, for the MLflow UI), summary/by_step/by_series CSVs,
    forecasts.parquet and two PNG plots."""
    from forecasting.data.store import write_parquet_atomic
    from forecasting.evaluation.plots import plot_backtest_forecasts, plot_error_by_step

    scores = scores or score_backtest(result)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    forecasts = forecasts_frame(result)
    paths = []
    for name, table in (("summary", scores.summary), ("by_step", scores.by_step), ("by_series", scores.by_series)):
        path = directory / f"{name}.csv"
        table.to_csv(path, index=False, float_format="%.6g")
        paths.append(path)
    path = directory / "forecasts.parquet"
    write_parquet_atomic(forecasts, path)
    paths.append(path)

    per_step = {name: group["mae"].to_numpy() for name, group in scores.by_step.groupby("forecaster", sort=False)}
    paths.append(plot_error_by_step(per_step, directory / "error_by_step.png", title=f"{result.label}: MAE by horizon step"))
    interval = _widest_interval(result)
    paths.append(
        plot_backtest_forecasts(
            forecasts,
            directory / "forecasts.png",
            title=f"{result.label}: forecasts vs actuals",
            max_series=result.settings.plot_series,
            interval=interval,
        )
    )
    markdown = directory / "report.md"
    images = {"error_by_step": "error_by_step.png", "forecasts": "forecasts.png"}
    text = to_markdown(result, scores, images=images)
    markdown.write_text(text)
    html = directory / "report.html"
    html.write_text(to_html(text, directory, images, title=f"Backtest: {result.label}"))
    return ReportFiles(directory, markdown, (markdown, html, *paths))


def to_html(markdown_text: str, directory: Path, images: dict[str, str], *, title: str) -> str:
    """The Markdown report as one self-contained HTML page, its plots inlined as data URIs.

    The MLflow UI renders an HTML artifact (in a sandboxed frame that cannot fetch the PNGs beside it) but shows
    Markdown as plain text, so this is the page to open there; report.md stays for terminals and diffs.
    """
    import base64
    import html

    for file in images.values():
        path = directory / file
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode()
            markdown_text = markdown_text.replace(f"]({file})", f"](data:image/png;base64,{data})")
    try:
        import markdown  # Python-Markdown: tables and fenced code, as the report uses them
    except ImportError:  # still readable: the text as written, the plots inline
        body = f"<pre>{html.escape(markdown_text)}</pre>"
    else:
        body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])
    style = ("body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "img{max-width:100%}pre{background:#f6f6f6;padding:.5em;overflow:auto}")
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head>\n<body>\n{body}\n</body></html>\n")


def _widest_interval(result: BacktestResult) -> tuple[str, str] | None:
    lows = [q for q in result.quantiles if q < 0.5 and round(1 - q, 10) in result.quantiles]
    if not lows:
        return None
    q = min(lows)
    return f"{MODEL}_q{q:g}", f"{MODEL}_q{round(1 - q, 10):g}"


def summary_metrics(scores: Scores) -> dict[str, float]:
    """Flat ``forecaster_metric -> value`` for MLflow, finite values only."""
    out = {}
    for row in scores.summary.to_dict("records"):
        for key, value in row.items():
            if key != "forecaster" and value is not None and np.isfinite(value):
                out[f"{row['forecaster']}_{key}"] = float(value)
    return out


def summary_markdown(scores: Scores) -> str:
    """The per-forecaster accuracy table in Markdown (report, Prefect artifact)."""
    return _markdown_table(_display_summary(scores.summary))


def _display_summary(summary: pd.DataFrame) -> pd.DataFrame:
    table = summary.copy()
    table["skill"] = [("-" if np.isnan(v) else f"{v:+.1%}") for v in table["skill"]]
    table.columns = [LABELS.get(c, c.replace("_", " ")) for c in table.columns]
    return table


def _markdown_table(frame: pd.DataFrame) -> str:
    columns = [str(c) for c in frame.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) or frame[c].astype(str).str.fullmatch(r"[+-]?[\d.]+%?|-").all()
        for c in frame.columns
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "-" if np.isnan(value) else f"{value:.4g}"
    return str(value)
