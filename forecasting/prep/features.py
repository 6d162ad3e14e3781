"""Model inputs: calendar features, the column layout, and the padding mask.

Every point of every series becomes one row of a ``(n_points, C)`` float32
array, built once per panel; windows are gathered from it (``windows.gather``)
and split into the two blocks the network reads:

``past``   ``(B, lookback, F_past)``: target, past covariates, known-future
           covariates, calendar features, and the observed mask (when the
           model pads short series).
``future`` ``(B, horizon, F_future)``: the known-future covariates and
           calendar features of the horizon steps.

Calendar features are computed from timestamps, so they exist for any future
step; user-supplied future covariates must be given for the horizon, and a
missing value is an error naming the series and timestamps, never a shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from forecasting.prep import transforms
from forecasting.config.model import ForecasterConfig
from forecasting.errors import ForecastingError
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import SeriesPanel

CALENDAR_FEATURES: dict[str, tuple[str, ...]] = {
    "hour_of_day": ("hour_of_day_sin", "hour_of_day_cos"),
    "day_of_week": ("day_of_week_sin", "day_of_week_cos"),
    "day_of_year": ("day_of_year_sin", "day_of_year_cos"),
    "weekend": ("weekend",),
    "holiday": ("holiday",),
    "trading_day": ("trading_day",),
}
"""Each calendar feature a config may name, and the input columns it becomes."""

OBSERVED = "observed"


def calendar_columns(names: Sequence[str]) -> tuple[str, ...]:
    """Input column names of the calendar features ``names``, in order."""
    unknown = [n for n in names if n not in CALENDAR_FEATURES]
    if unknown:
        raise ForecastingError(f"unknown calendar feature(s) {unknown}; choose from {sorted(CALENDAR_FEATURES)}")
    return tuple(c for n in names for c in CALENDAR_FEATURES[n])


def calendar_features(timestamps: np.ndarray, names: Sequence[str], *, timezone: str = "UTC") -> np.ndarray:
    """``(n,)`` UTC datetime64 -> ``(n, len(calendar_columns(names)))`` float64.

    Cyclic features are (sin, cos) pairs, so 23:00 sits next to 00:00 and
    31 December next to 1 January; flags are 0/1.
    """
    columns = calendar_columns(names)
    out = np.empty((len(timestamps), len(columns)), dtype=np.float64)
    if not columns:
        return out
    local = pd.DatetimeIndex(np.asarray(timestamps, dtype="datetime64[ns]")).tz_localize("UTC").tz_convert(timezone)
    dates = local.tz_localize(None).normalize()
    j = 0
    for name in names:
        if name in ("hour_of_day", "day_of_week", "day_of_year"):
            if name == "hour_of_day":
                phase = (local.hour + local.minute / 60.0) / 24.0
            elif name == "day_of_week":
                phase = local.day_of_week / 7.0
            else:
                phase = (local.day_of_year - 1) / 365.25
            angle = 2.0 * np.pi * np.asarray(phase, dtype=np.float64)
            out[:, j], out[:, j + 1] = np.sin(angle), np.cos(angle)
            j += 2
            continue
        if name == "weekend":
            flag = local.day_of_week >= 5
        elif name == "holiday":
            flag = dates.isin(_us_federal_holidays())
        else:  # trading_day
            from forecasting.data.calendar import nyse_closures

            flag = (local.day_of_week < 5) & ~dates.isin(nyse_closures())
        out[:, j] = np.asarray(flag, dtype=np.float64)
        j += 1
    return out


@cache
def _us_federal_holidays() -> pd.DatetimeIndex:
    from pandas.tseries.holiday import USFederalHolidayCalendar

    return USFederalHolidayCalendar().holidays(start="1970-01-01", end="2100-12-31")


@dataclass(frozen=True)
class InputLayout:
    """Which columns the network reads, and where each lives in the values array."""

    covariates: tuple[str, ...]
    """Past covariates: lookback only."""
    future_covariates: tuple[str, ...]
    """Known-future covariates from the data: lookback and horizon."""
    calendar: tuple[str, ...]
    """Calendar feature names (each becomes one or two columns)."""
    masked: bool
    """Whether the observed mask is a network input (short series are padded)."""
    timezone: str = "UTC"

    @classmethod
    def from_config(cls, config: ForecasterConfig) -> InputLayout:
        d = config.data
        return cls(tuple(d.covariates), tuple(d.future_covariates), tuple(d.calendar), config.padded, d.calendar_timezone)

    @property
    def data_features(self) -> tuple[str, ...]:
        """Columns taken from the frame, scaled per series: the panel's and the scaler's features."""
        return ("target", *self.covariates, *self.future_covariates)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of the values array, in order."""
        return (*self.data_features, *calendar_columns(self.calendar), OBSERVED)

    @property
    def known(self) -> tuple[str, ...]:
        """Columns known for future steps: future covariates, then calendar columns."""
        return (*self.future_covariates, *calendar_columns(self.calendar))

    @property
    def past_columns(self) -> list[int]:
        """Values-array columns the encoder reads per lookback step."""
        n = len(self.columns)
        return list(range(n)) if self.masked else list(range(n - 1))

    @property
    def future_columns(self) -> list[int]:
        """Values-array columns the head reads per horizon step."""
        start = 1 + len(self.covariates)
        return list(range(start, start + len(self.known)))

    @property
    def n_past(self) -> int:
        return len(self.past_columns)

    @property
    def n_future(self) -> int:
        return len(self.future_columns)

    @property
    def data_covariate_positions(self) -> list[int]:
        """Positions in the past block holding data covariates (zeroed where padded)."""
        return list(range(1, len(self.data_features)))


def model_values(
    panel: SeriesPanel,
    layout: InputLayout,
    scaler: SeriesScaler,
    *,
    transform: str,
    transformed: SeriesPanel | None = None,
) -> np.ndarray:
    """Raw panel -> ``(n_points, len(layout.columns))`` float32 network inputs.

    Rows whose target is NaN are padding (``windows.left_pad``): their mask is
    0, their target repeats the series' first observed value (0, "no change",
    for the differencing transforms) and their data covariates are 0 (the
    scaled mean). ``transformed`` is ``transforms.apply(panel, transform)`` if
    the caller already has it.
    """
    if panel.features != layout.data_features:
        raise ForecastingError(f"panel has features {list(panel.features)}; the model reads {list(layout.data_features)}")
    observed = ~np.isnan(panel.values[:, 0])  # (n_points,)
    transformed = transforms.apply(panel, transform) if transformed is None else transformed
    scaled = scaler.transform(transformed, dtype=np.float64)  # (n_points, D)
    target = scaled[:, 0]
    # The first change of a differenced series has no predecessor: "no change".
    target[observed & np.isnan(target)] = 0.0
    first = first_observed_rows(panel, observed)  # (n_series,)
    rows = panel.row_series  # (n_points,)
    padding = ~observed
    target[padding] = target[first[rows[padding]]] if padding.any() else target[padding]
    covariates = scaled[:, 1:]
    covariates[np.isnan(covariates)] = 0.0
    calendar = calendar_features(panel.timestamps, layout.calendar, timezone=layout.timezone)
    # Filled column block by column block: a float64 concatenation of every column before the cast
    # would be the largest transient of prediction (8 B a column a point); the cast is the same.
    d, k = scaled.shape[1], calendar.shape[1]
    values = np.empty((len(observed), d + k + 1), dtype=np.float32)
    values[:, :d] = scaled
    del scaled, target, covariates
    values[:, d:d + k] = calendar
    values[:, -1] = observed
    return values


def first_observed_rows(panel: SeriesPanel, observed: np.ndarray) -> np.ndarray:
    """``(n_series,)`` global row of each series' first observed point."""
    n = observed.shape[0]
    candidate = np.where(observed, np.arange(n), n)  # (n_points,)
    starts = panel.offsets[:-1]
    first = np.full(panel.n_series, n, dtype=np.int64)
    nonempty = panel.lengths > 0
    first[nonempty] = np.minimum.reduceat(candidate, starts[nonempty])
    missing = np.flatnonzero(first >= panel.offsets[1:])
    if missing.size:
        names = [panel.series_ids[i] for i in missing]
        raise ForecastingError(f"series {names} have no observed target")
    return first


def horizon_timestamps(origins: np.ndarray, freq: str, horizon: int, *, timezone: str = "UTC") -> np.ndarray:
    """``(B,)`` origin datetime64 (UTC) -> ``(B, horizon)`` datetime64[ns] UTC: the next grid steps of ``freq``.

    Calendar steps (days, business days, sessions, months) are taken on the
    local calendar of ``timezone``: from the Kolkata day 2024-03-10
    (18:30Z the day before) the next day is 2024-03-11 local, and a New York
    day after the DST change starts an hour earlier in UTC.
    """
    from pandas.tseries.offsets import Tick

    from forecasting.data.calendar import offset_for

    offset = offset_for(freq)
    origins = np.asarray(origins, dtype="datetime64[ns]")
    if isinstance(offset, Tick):  # fixed steps (hours, minutes): plain arithmetic
        step = pd.Timedelta(offset).to_timedelta64()
        return origins[:, None] + step * np.arange(1, horizon + 1)
    # Calendar steps (business days, trading sessions): one date_range per distinct origin.
    unique, inverse = np.unique(origins, return_inverse=True)
    table = np.empty((len(unique), horizon), dtype="datetime64[ns]")
    local = timezone not in ("UTC", "Etc/UTC", "GMT")
    for k, origin in enumerate(unique):
        start = pd.Timestamp(origin)
        if local:  # step on local wall time, then back to UTC instants
            start = start.tz_localize("UTC").tz_convert(timezone).tz_localize(None)
        first = start + offset  # the next grid step, even from an off-grid origin
        steps = pd.date_range(first, periods=horizon, freq=offset)
        if local:
            steps = steps.tz_localize(timezone, ambiguous=np.zeros(horizon, dtype=bool), nonexistent="shift_forward")
            steps = steps.tz_convert("UTC").tz_localize(None)
        table[k] = steps.to_numpy(dtype="datetime64[ns]")
    return table[inverse.reshape(-1)]


def future_block(
    panel: SeriesPanel,
    values: np.ndarray,
    starts: np.ndarray,
    *,
    layout: InputLayout,
    scaler: SeriesScaler,
    lookback: int,
    horizon: int,
    freq: str,
    future: pd.DataFrame | None = None,
    required: int | None = None,
) -> np.ndarray:
    """``(B, horizon, n_future)`` float32 known-future inputs of the windows at ``starts``.

    Windows whose horizon lies inside their series read the panel's rows (what
    training saw). Windows whose horizon runs past the end of their series
    (a forecast from the last observation) are dated on the ``freq`` grid from
    their origin: calendar columns are computed for those dates and future
    covariates are looked up by (series, timestamp) in the panel and in
    ``future``. Every value still missing is listed in one error. Only the
    first ``required`` steps (default all) must be known: the network's step h
    reads known inputs of steps <= h only, so later ones are left at 0.
    """
    n_windows = len(starts)
    out = np.zeros((n_windows, horizon, layout.n_future), dtype=np.float32)
    if layout.n_future == 0 or n_windows == 0:
        return out
    series = np.searchsorted(panel.offsets, starts, side="right") - 1  # (B,)
    first_target = starts + lookback  # (B,) row of the first horizon step
    inside = first_target + horizon <= panel.offsets[series + 1]
    columns = layout.future_columns
    if inside.any():
        rows = first_target[inside][:, None] + np.arange(horizon)  # (B_in, H)
        out[inside] = values[rows][:, :, columns]
    outside = np.flatnonzero(~inside)
    if outside.size:
        origins = panel.timestamps[first_target[outside] - 1]
        stamps = horizon_timestamps(origins, freq, horizon, timezone=layout.timezone)  # (B_out, H)
        n_user = len(layout.future_covariates)
        if layout.calendar:
            calendar = calendar_features(stamps.reshape(-1), layout.calendar, timezone=layout.timezone)
            out[outside, :, n_user:] = calendar.reshape(len(outside), horizon, -1)
        if n_user:
            steps = horizon if required is None else required
            out[outside, :steps, :n_user] = _lookup_future(panel, series[outside], stamps[:, :steps], layout, scaler, future)
    return out


def _lookup_future(
    panel: SeriesPanel,
    series: np.ndarray,
    stamps: np.ndarray,
    layout: InputLayout,
    scaler: SeriesScaler,
    future: pd.DataFrame | None,
) -> np.ndarray:
    """Scaled user future covariates ``(B, H, n_user)`` for ``stamps``, from the panel rows and ``future``."""
    names = list(layout.future_covariates)
    ids = np.asarray(panel.series_ids, dtype=object)
    wanted = pd.DataFrame(
        {
            "series_id": np.repeat(ids[series], stamps.shape[1]),
            "timestamp": pd.DatetimeIndex(stamps.reshape(-1)).tz_localize("UTC"),
        }
    )
    first = len(layout.data_features) - len(names)
    known = pd.DataFrame(
        {
            "series_id": np.repeat(ids, panel.lengths),
            "timestamp": pd.DatetimeIndex(panel.timestamps).tz_localize("UTC"),
            **{name: panel.values[:, first + k] for k, name in enumerate(names)},
        }
    )
    sources = [known]
    if future is not None:
        sources.append(_future_frame(future, names))
    table = pd.concat(sources, ignore_index=True).dropna(subset=names, how="all")
    table = table.drop_duplicates(["series_id", "timestamp"], keep="last")
    merged = wanted.merge(table, on=["series_id", "timestamp"], how="left")  # keeps wanted's row order
    raw = merged[names].to_numpy(dtype=np.float64)  # (B * H, n_user)
    missing = np.isnan(raw)
    if missing.any():
        raise ForecastingError(_missing_message(merged, names, missing, given=future is not None))
    positions = scaler._positions(merged["series_id"].tolist())  # noqa: SLF001 - same package
    columns = [scaler.features.index(n) for n in names]
    scaled = (raw - scaler.mean[positions][:, columns]) / scaler.scale[positions][:, columns]
    return scaled.reshape(stamps.shape[0], stamps.shape[1], len(names)).astype(np.float32)


def _future_frame(future: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    missing = [c for c in ["series_id", "timestamp", *names] if c not in future.columns]
    if missing:
        raise ForecastingError(f"future covariates frame lacks column(s) {missing}; it has {list(future.columns)}")
    frame = future[["series_id", "timestamp", *names]].copy()
    stamps = pd.to_datetime(frame["timestamp"])
    if stamps.dt.tz is None:
        raise ForecastingError("future covariates frame has naive timestamps; give them a time zone (UTC)")
    frame["timestamp"] = stamps.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    frame["series_id"] = frame["series_id"].astype(str)
    for name in names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    return frame


def _missing_message(merged: pd.DataFrame, names: list[str], missing: np.ndarray, *, given: bool) -> str:
    lines = []
    for sid, rows in merged[missing.any(axis=1)].groupby("series_id", sort=True):
        stamps = rows["timestamp"].drop_duplicates()
        absent = [n for k, n in enumerate(names) if missing[rows.index, k].any()]
        shown = ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in stamps.iloc[:6])
        more = f" and {len(stamps) - 6} more" if len(stamps) > 6 else ""
        lines.append(f"  - series '{sid}': {absent} missing at {len(stamps)} timestamp(s) (UTC): {shown}{more}")
    hint = "" if given else " (pass them as future=DataFrame with series_id, timestamp and those columns)"
    return "future covariates missing for the forecast horizon" + hint + ":\n" + "\n".join(lines)
