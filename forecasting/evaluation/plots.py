"""Matplotlib figures saved as PNG artifacts (headless: the Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from forecasting.evaluation.validation import WindowForecasts


def plot_forecasts(
    wf: WindowForecasts,
    series_ids: Sequence[str],
    path: str | Path,
    *,
    title: str,
    max_series: int = 4,
) -> Path:
    """Last held-out window of up to ``max_series`` series: history, actuals, model and baseline."""
    plt = _pyplot()
    chosen = list(dict.fromkeys(wf.series.tolist()))[:max_series]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(9, 2.6 * len(chosen)), squeeze=False)
    for ax, s in zip(axes[:, 0], chosen, strict=True):
        row = int(np.flatnonzero(wf.series == s)[-1])  # the most recent window of this series
        lookback, horizon = wf.lookback.shape[1], wf.actual.shape[1]
        past = np.arange(-lookback + 1, 1)
        future = np.arange(1, horizon + 1)
        ax.plot(past, wf.lookback[row], color="0.5", lw=1, label="history")
        ax.plot(future, wf.actual[row], color="black", lw=1.5, label="actual")
        ax.plot(future, wf.predicted[row], color="tab:blue", lw=1.5, label="LSTM")
        ax.plot(future, wf.baseline[row], color="tab:orange", lw=1, ls="--", label="seasonal naive")
        ax.axvline(0.5, color="0.8", lw=1)
        ax.set_title(series_ids[s], fontsize=9)
        ax.set_xlabel("steps from origin")
    axes[0, 0].legend(loc="upper left", fontsize=8, ncols=4)
    fig.suptitle(title)
    return _save(fig, path, dpi=90)


def plot_error_by_step(
    per_step: Mapping[str, ArrayLike],
    path: str | Path,
    *,
    title: str,
    ylabel: str = "MAE",
    highlight: str = "model",
) -> Path:
    """One line per forecaster: its error at each horizon step (``{name: (horizon,)}``).

    The axis turns logarithmic when the errors span more than 20x, so a good
    model and seasonal naive stay apart next to a poor baseline.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    others = iter(["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:gray", "tab:olive"])
    for name, values in per_step.items():
        values = np.asarray(values, dtype=float)
        steps = np.arange(1, values.shape[0] + 1)
        strong = name == highlight
        color = "tab:blue" if strong else next(others, "0.5")
        ax.plot(steps, values, lw=2.2 if strong else 1.2, ls="-" if strong else "--", marker="o" if strong else None,
                ms=3, color=color, label=name, zorder=3 if strong else 2)
    finite = np.concatenate([np.asarray(v, dtype=float).ravel() for v in per_step.values()])
    finite = finite[np.isfinite(finite)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_xlabel("horizon step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=3)
    return _save(fig, path)


def plot_backtest_forecasts(
    forecasts: pd.DataFrame,
    path: str | Path,
    *,
    title: str,
    max_series: int = 4,
    max_origins: int = 5,
    point: str = "model",
    baseline: str = "seasonal_naive",
    interval: tuple[str, str] | None = None,
) -> Path:
    """Actuals and the forecasts from the latest ``max_origins`` origins of up to ``max_series`` series.

    ``forecasts`` has one row per (series_id, origin, step) with ``timestamp``,
    ``actual`` and the ``point`` and ``baseline`` columns; ``interval`` names
    the lower and upper columns shaded around the point forecast.
    """
    plt = _pyplot()
    chosen = list(dict.fromkeys(forecasts["series_id"]))[:max_series]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(10, 2.6 * len(chosen)), squeeze=False)
    for ax, sid in zip(axes[:, 0], chosen, strict=True):
        rows = forecasts[forecasts["series_id"] == sid]
        origins = np.sort(rows["origin"].unique())[-max_origins:]
        rows = rows[rows["origin"].isin(origins)]
        actual = rows.drop_duplicates("timestamp").sort_values("timestamp")
        ax.plot(actual["timestamp"], actual["actual"], color="black", lw=1.3, label="actual")
        for i, (_, window) in enumerate(rows.sort_values("step").groupby("origin")):
            first = i == 0
            if interval is not None:
                ax.fill_between(window["timestamp"], window[interval[0]], window[interval[1]], color="tab:blue",
                                alpha=0.2, lw=0, label="interval" if first else None)
            ax.plot(window["timestamp"], window[point], color="tab:blue", lw=1.5, label=point if first else None)
            ax.plot(window["timestamp"], window[baseline], color="tab:orange", lw=1, ls="--",
                    label=baseline.replace("_", " ") if first else None)
            ax.axvline(window["origin"].iloc[0], color="0.85", lw=0.8)
        ax.set_title(str(sid), fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    axes[0, 0].legend(loc="upper left", fontsize=8, ncols=4)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, *, dpi: int = 80) -> Path:  # noqa: ANN001 - a matplotlib Figure
    plt = _pyplot()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
