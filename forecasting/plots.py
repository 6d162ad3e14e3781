"""Matplotlib figures saved as PNG artifacts (headless: the Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from forecasting.evaluate import WindowForecasts


def plot_forecasts(
    wf: WindowForecasts,
    series_ids: Sequence[str],
    path: str | Path,
    *,
    title: str,
    max_series: int = 4,
) -> Path:
    """Last held-out window of up to ``max_series`` series: history, actuals, model and baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
