"""Can a trained model be judged on a dataset? Answered from the store's Parquet footers, before any row loads.

A backtest on another dataset (``forecast backtest --model NAME@ALIAS --dataset D``) used to find out
that the data does not fit the model (another frequency, a covariate it lacks) only after reading
every series. Each series file's footer already holds its columns, its row count and the first and
last timestamp (column statistics), so the checks here cost one footer read per series file:

- the columns the model reads (``data.covariates``, ``data.future_covariates``) exist in every series;
- the dataset's density on the model's grid: the rows between a series' first and last timestamp
  against the grid points the model's ``freq`` puts there. Hourly data on a daily model has ~24 rows
  per grid point, daily data on an NYSE model ~1.45, NYSE sessions on a daily model ~0.69; data on the
  model's own grid has at most one, and fewer only where it has gaps.

Every problem is reported at once in one ``ConfigError`` naming the dataset, the model and the values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.config.model import ForecasterConfig
from forecasting.data.calendar import Grid
from forecasting.data.store import ObservationStore, SeriesFooter
from forecasting.errors import ConfigError, ForecastingError

MAX_DENSITY = 1.02
"""Rows per grid point above which a dataset cannot be on the model's grid (2% slack for a boundary point)."""
MIN_DENSITY = 0.75
"""Rows per grid point below which the dataset is taken for another frequency (NYSE sessions on a daily grid
are 0.69, business days 0.71); data on the model's grid this gappy is not worth a backtest either."""
SAMPLED_SERIES = 50
"""Series whose density is measured (evenly spread over the dataset): enough to tell a frequency apart."""


@dataclass(frozen=True)
class DatasetProfile:
    """What the footers of a stored dataset say: no row was read to build it."""

    dataset: str
    series: tuple[SeriesFooter, ...]

    @property
    def columns(self) -> set[str]:
        return {c for s in self.series for c in s.columns}


def profile_dataset(store: ObservationStore, dataset: str) -> DatasetProfile:
    """Columns, row counts and time ranges of every series of ``dataset`` from the Parquet footers.

    An unknown dataset raises the store's error (it names the datasets there are).
    """
    return DatasetProfile(dataset, store.describe(dataset))


def fit_problems(config: ForecasterConfig, profile: DatasetProfile) -> list[str]:
    """Every reason ``config``'s model cannot read ``profile``'s dataset, one line each (empty: it fits)."""
    data = config.data
    where = f"dataset '{profile.dataset}'"
    if not profile.series:
        return [f"{where} holds no series"]
    problems = []
    wanted = [*data.covariates, *data.future_covariates]
    for column in wanted:
        lacking = [s.series_id for s in profile.series if column not in s.columns]
        if len(lacking) == len(profile.series):
            available = sorted(profile.columns - {"series_id", "timestamp", "target"})
            problems.append(f"column '{column}' (data.covariates of the model) is not in {where}; it has {available}")
        elif lacking:
            problems.append(
                f"column '{column}' (data.covariates of the model) is missing in {len(lacking)} of "
                f"{len(profile.series)} series of {where}: {', '.join(lacking[:10])}{' ...' if len(lacking) > 10 else ''}"
            )
    density, step = _density(profile, data.freq)
    if density is not None and not MIN_DENSITY <= density <= MAX_DENSITY:
        problems.append(
            f"frequency: model '{config.name}' forecasts on the '{data.freq}' grid, but {where} holds a median "
            f"{density:.2f} rows per '{data.freq}' grid point between each series' first and last timestamp "
            f"(one row every {step} on average); data on that grid has at most 1 and, unless it is mostly gaps, "
            f"at least {MIN_DENSITY}: judge the model on a dataset of its own frequency"
        )
    return problems


def check_dataset_fits(config: ForecasterConfig, profile: DatasetProfile) -> None:
    """Raise one ``ConfigError`` listing every problem of judging ``config``'s model on the profiled dataset."""
    problems = fit_problems(config, profile)
    if problems:
        raise ConfigError(
            f"model '{config.name}' (trained on dataset '{config.data.dataset}', freq '{config.data.freq}') cannot be "
            f"judged on dataset '{profile.dataset}': {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems)
        )


def _density(profile: DatasetProfile, freq: str) -> tuple[float | None, str]:
    """Median rows per grid point over (up to ``SAMPLED_SERIES``) series with at least 3 rows, and the mean step."""
    usable = [s for s in profile.series if s.rows >= 3 and s.first is not None and s.last is not None and s.last > s.first]
    if not usable:
        return None, ""
    picked = [usable[i] for i in np.unique(np.linspace(0, len(usable) - 1, min(SAMPLED_SERIES, len(usable))).astype(int))]
    grid = Grid(freq)
    densities, steps = [], []
    for s in picked:
        try:
            points = len(grid.points(s.first, s.last))
        except (ForecastingError, ValueError, OverflowError):
            continue
        densities.append(s.rows / max(points, 1))
        steps.append((s.last - s.first) / (s.rows - 1))
    if not densities:
        return None, ""
    step = pd.Timedelta(np.median([t.value for t in steps])).round("min")
    return float(np.median(densities)), str(step)
