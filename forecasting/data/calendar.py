"""Regular grids, the NYSE trading calendar and the gap policy.

Every series lives on a *grid*: the timestamps it is expected to have. A
pandas alias (``"h"``, ``"D"``, ``"B"``, ``"15min"``) gives a regular grid;
``"XNYS"`` gives the New York Stock Exchange's trading sessions. On the
trading grid a market holiday is simply not a grid point, so it never
becomes a missing value, a NaN target or a forecast timestamp.

A grid lives in a time zone (default UTC). Days, weeks, months and sessions
start at local midnight of that zone: the Kolkata day 2024-03-11 is the
instant 2024-03-10T18:30Z, and a New York session after the spring DST change
starts at 04:00Z instead of 05:00Z. Storage stays UTC; only the grid knows
the zone. With the default zone a session is labelled 00:00 UTC of its date,
as the bundled and Stooq data are. Fixed-step grids (hours, minutes) step in
plain durations, anchored at the zone's whole units (a Kolkata hour starts
at :30 UTC).

The gap policy fills short runs of missing grid points by interpolation and
leaves longer ones absent; ``gap_breaks`` then tells windowing where those
long gaps are so no window spans one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    GoodFriday,
    Holiday,
    USLaborDay,
    USMartinLutherKingJr,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)
from pandas.tseries.offsets import CustomBusinessDay, DateOffset, Tick

from forecasting.errors import ForecastingError

TRADING_CALENDARS: tuple[str, ...] = ("XNYS",)
"""Calendar names accepted wherever a freq is, besides pandas offset aliases."""

# Full-day closures outside the holiday rules, 1990 on (NYSE notices). Earlier
# dates are not covered: the rule set is meant for data from 1990.
NYSE_SPECIAL_CLOSURES: tuple[str, ...] = (
    "1994-04-27",  # President Nixon's funeral
    "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14",  # September 11 attacks
    "2004-06-11",  # President Reagan's funeral
    "2007-01-02",  # President Ford's funeral
    "2012-10-29", "2012-10-30",  # Hurricane Sandy
    "2018-12-05",  # President G. H. W. Bush's funeral
    "2025-01-09",  # President Carter's funeral
)


class NYSEHolidayCalendar(AbstractHolidayCalendar):
    """NYSE's regular full-day holidays (Rule 7.2): weekday observance as the exchange applies it.

    A holiday on Saturday closes the Friday before, one on Sunday the Monday
    after, except New Year's Day: a Saturday New Year closes nothing (the
    Friday is the year-end session). With ``NYSE_SPECIAL_CLOSURES`` the
    sessions 1990-2030 were checked identical to exchange_calendars 4.13.2's
    XNYS (10,322 sessions), and 2000-2013 match the bundled real price data.
    """

    rules = [
        Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
        Holiday("Martin Luther King Jr. Day", month=1, day=1, offset=USMartinLutherKingJr.offset, start_date="1998-01-01"),
        USPresidentsDay,
        GoodFriday,
        USMemorialDay,
        Holiday("Juneteenth", month=6, day=19, start_date="2022-01-01", observance=nearest_workday),
        Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas Day", month=12, day=25, observance=nearest_workday),
    ]


@functools.cache
def nyse_closures() -> pd.DatetimeIndex:
    """Naive dates, 1990-2100, on which NYSE is closed on a weekday (holidays and special closures)."""
    holidays = NYSEHolidayCalendar().holidays(start="1990-01-01", end="2100-12-31")
    return holidays.union(pd.DatetimeIndex(NYSE_SPECIAL_CLOSURES)).sort_values()


@functools.cache
def offset_for(freq: str) -> DateOffset:
    """The step between consecutive grid points: ``"XNYS"`` is one trading session.

    Anything else is a pandas offset alias. Use this instead of
    ``pd.tseries.frequencies.to_offset`` wherever a freq may name a calendar,
    e.g. to date forecast steps: ``last + offset_for("XNYS") * 2`` from
    2012-07-03 is 2012-07-06, stepping over Independence Day.
    """
    if freq == "XNYS":
        return CustomBusinessDay(holidays=nyse_closures())
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (TypeError, ValueError) as exc:
        raise ForecastingError(
            f"freq {freq!r} is neither a pandas offset alias (e.g. 'h', 'D', 'B') nor a trading "
            f"calendar ({', '.join(TRADING_CALENDARS)}): {exc}"
        ) from None


@functools.cache
def check_timezone(name: str) -> str:
    """``name`` if it is an IANA zone pandas can use; else a ``ForecastingError`` naming it."""
    import zoneinfo

    try:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(name)
        zoneinfo.ZoneInfo(name)
        pd.Timestamp("2000-01-01", tz=name)
    except Exception:  # noqa: BLE001 - ZoneInfo raises several types (ValueError, ZoneInfoNotFoundError, ...)
        raise ForecastingError(f"{name!r} is not an IANA time zone") from None
    return name


@dataclass(frozen=True)
class Grid:
    """The timestamps a series is expected to have: UTC instants of a grid that lives in ``timezone``."""

    freq: str
    timezone: str = "UTC"
    offset: DateOffset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", offset_for(self.freq))
        object.__setattr__(self, "timezone", check_timezone(self.timezone or "UTC"))

    @property
    def is_utc(self) -> bool:
        return self.timezone in ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z")

    @property
    def is_fixed(self) -> bool:
        """True when every step is one fixed duration (hours, minutes; pandas 3's "D" is a calendar day, not fixed)."""
        return isinstance(self.offset, Tick)

    def describe(self) -> str:
        """E.g. "'h' grid" or "XNYS trading calendar"."""
        zone = "" if self.is_utc else f" in {self.timezone}"
        if self.freq in TRADING_CALENDARS:
            return f"{self.freq} trading calendar{zone}"
        return f"'{self.freq}' grid{zone}"

    def points(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        """Grid points in ``[start, end]`` (UTC, ns)."""
        start, end = as_utc(start), as_utc(end)
        if self.is_fixed:
            anchor = self._anchor(start)
            points = pd.date_range((start - anchor).ceil(self.offset) + anchor, end, freq=self.offset)
        elif self.is_utc:
            points = pd.date_range(start.normalize(), end, freq=self.offset)
        else:
            # Local calendar steps on naive wall time, then back to instants: a
            # midnight that DST skips starts the day at the first local hour.
            first = start.tz_convert(self.timezone).tz_localize(None).normalize()
            last = end.tz_convert(self.timezone).tz_localize(None)
            wall = pd.date_range(first, last, freq=self.offset)
            points = wall.tz_localize(self.timezone, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="shift_forward")
            points = points.tz_convert("UTC")
        points = points[(points >= start) & (points <= end)]
        return pd.DatetimeIndex(points).as_unit("ns")

    def on_grid(self, stamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """``(n,)`` bool: which timestamps are grid points. NaT is off the grid."""
        index = pd.DatetimeIndex(stamps)
        if index.tz is None:
            index = index.tz_localize("UTC")
        ok = ~index.isna()
        if not ok.any():
            return np.zeros(len(index), dtype=bool)
        if self.is_fixed:
            if self.is_utc:
                return np.asarray(ok & (index == index.floor(self.offset)))
            wall = index.tz_convert(self.timezone).tz_localize(None)  # whole local units
            return np.asarray(ok & (wall == wall.floor(self.offset)))
        valid = index[ok]
        expected = self.points(valid.min(), valid.max())
        return np.asarray(ok & index.isin(expected))

    def steps(self, stamps: np.ndarray) -> np.ndarray:
        """``(n - 1,)`` float grid steps between consecutive sorted on-grid ``stamps``.

        ``stamps`` is datetime64 (UTC, naive or aware). 1 means adjacent grid
        points; k means k - 1 grid points are missing in between.
        """
        index = pd.DatetimeIndex(stamps)
        if index.tz is None:
            index = index.tz_localize("UTC")
        if len(index) < 2:
            return np.zeros(0)
        if self.is_fixed:
            return np.diff(index.as_unit("ns").asi8) / pd.Timedelta(self.offset).value
        expected = self.points(index.min(), index.max())
        return np.diff(expected.searchsorted(index)).astype(np.float64)

    def shift(self, stamp: pd.Timestamp, steps: int) -> pd.Timestamp:
        """``stamp`` moved by ``steps`` grid steps (negative goes back), stepping on the local calendar."""
        if self.is_fixed or self.is_utc:
            return as_utc(stamp) + self.offset * steps
        return (as_utc(stamp).tz_convert(self.timezone) + self.offset * steps).tz_convert("UTC")

    def local_dates(self, stamps: pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
        """Naive local wall times of UTC ``stamps``: the date a reader of this grid sees."""
        index = pd.DatetimeIndex(stamps)
        index = index.tz_localize("UTC") if index.tz is None else index
        return index.tz_convert(self.timezone).tz_localize(None)

    def _anchor(self, stamp: pd.Timestamp) -> pd.Timedelta:
        """Offset of whole local units from whole UTC units (30 min in Kolkata, 0 in most zones)."""
        if self.is_utc:
            return pd.Timedelta(0)
        utcoffset = stamp.tz_convert(self.timezone).utcoffset() or pd.Timedelta(0)
        return pd.Timedelta(utcoffset) % pd.Timedelta(self.offset)


@dataclass(frozen=True)
class GapPolicy:
    """What to do with missing grid points inside a series."""

    max_fill: int = 0
    """Interior runs of at most this many missing points are interpolated; longer runs stay absent."""
    method: Literal["linear", "ffill"] = "linear"
    """``linear`` in grid position (time-linear on fixed grids); ``ffill`` repeats the last value."""


@dataclass(frozen=True)
class GapReport:
    """What ``regularize`` did to one series."""

    filled: pd.DatetimeIndex
    """Timestamps that were missing and are now interpolated."""
    open_gaps: list[tuple[pd.Timestamp, pd.Timestamp, int]]
    """Gaps left open: (last point before, first point after, missing grid points)."""


def regularize(series: pd.DataFrame, grid: Grid, policy: GapPolicy) -> tuple[pd.DataFrame, GapReport]:
    """Fill one series' short gaps on ``grid``; leave long gaps absent.

    ``series`` is a canonical frame of one series with on-grid timestamps. Only
    rows that were missing are added; existing rows (their NaN covariates
    included) are returned unchanged. Returns the frame, sorted, and a report.
    """
    frame = series.sort_values("timestamp").reset_index(drop=True)
    if len(frame) < 2:
        return frame, GapReport(pd.DatetimeIndex([], tz="UTC"), [])
    stamps = pd.DatetimeIndex(frame["timestamp"])
    full = grid.points(stamps[0], stamps[-1])
    missing = ~full.isin(stamps)  # (n_grid,)
    if not missing.any():
        return frame, GapReport(pd.DatetimeIndex([], tz="UTC"), [])

    edges = np.diff(np.r_[0, missing.astype(np.int8), 0])
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # (n_runs,), ends exclusive
    lengths = run_ends - run_starts
    short = lengths <= policy.max_fill
    fill = np.zeros(len(full), dtype=bool)
    for start, end in zip(run_starts[short], run_ends[short]):
        fill[start:end] = True
    values = [c for c in frame.columns if c not in ("series_id", "timestamp")]
    wide = frame.set_index("timestamp")[values].reindex(full)
    if policy.method == "linear":
        interpolated = wide.interpolate(method="linear", limit_area="inside")
    else:
        interpolated = wide.ffill()
    added = interpolated.loc[fill]
    added.insert(0, "series_id", frame["series_id"].iloc[0])
    added = added.rename_axis("timestamp").reset_index()[frame.columns]
    out = pd.concat([frame, added], ignore_index=True).sort_values("timestamp", kind="stable")
    out = out.reset_index(drop=True)

    open_gaps = [
        (full[start - 1], full[end], int(end - start))
        for start, end in zip(run_starts[~short], run_ends[~short])
    ]
    return out, GapReport(full[fill], open_gaps)


def gap_breaks(panel, freq: str, *, max_missing: int = 0, timezone: str = "UTC") -> np.ndarray:  # noqa: ANN001 - any SeriesPanel-like
    """``(n_points,)`` bool for ``build_index(..., breaks=...)``: True where a gap precedes the point.

    ``panel`` is a ``forecasting.windows.SeriesPanel`` (anything with
    ``timestamps`` and ``offsets``). A point breaks when more than
    ``max_missing`` grid points of ``freq`` are absent between it and the
    previous point of its series. Stored data has had its short gaps filled
    by the gap policy, so the default 0 marks exactly the gaps it left open.
    On ``"XNYS"`` a weekend or market holiday is not a gap. ``timezone`` is
    the zone the grid lives in (the model's ``data.calendar_timezone``).
    """
    stamps = np.asarray(panel.timestamps)
    breaks = np.zeros(stamps.shape[0], dtype=bool)
    if stamps.shape[0] < 2:
        return breaks
    steps = Grid(freq, timezone).steps(stamps)  # (n_points - 1,) across series boundaries too
    breaks[1:] = steps > 1 + max_missing
    firsts = np.asarray(panel.offsets[:-1])
    breaks[firsts[firsts < stamps.shape[0]]] = False  # a series' first point follows nothing
    return breaks


def next_points(origins: np.ndarray, freq: str, horizon: int, *, timezone: str = "UTC") -> np.ndarray:
    """``(B,)`` origins (datetime64 UTC, or aware) -> ``(B, horizon)`` datetime64[ns] UTC: the grid points after each.

    The same as ``origin + offset_for(freq) * h`` for h = 1..horizon on
    on-grid origins, but vectorised: adding a ``CustomBusinessDay`` to an
    index is a Python loop per element (pandas warns), this is one searchsorted.
    """
    start = pd.DatetimeIndex(origins)
    if start.tz is not None:
        start = start.tz_convert("UTC").tz_localize(None)
    start = start.as_unit("ns")
    if len(start) == 0:
        return np.empty((0, horizon), dtype="datetime64[ns]")
    grid = Grid(freq, timezone)
    ahead = np.arange(1, horizon + 1, dtype=np.int64)
    if grid.is_fixed:
        return (start.asi8[:, None] + pd.Timedelta(grid.offset).value * ahead).view("datetime64[ns]")
    points = grid.points(as_utc(start.min()), grid.shift(start.max(), horizon + 1)).tz_localize(None)
    first = points.searchsorted(start, side="right")  # (B,) position of the first point after each origin
    return points.asi8[first[:, None] + ahead - 1].view("datetime64[ns]")


def as_utc(stamp: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; a naive one is taken to be UTC already (how the store and files keep them)."""
    stamp = pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def infer_freq(frame: pd.DataFrame, timezone: str = "UTC", *, what: str = "data") -> str:
    """The grid of canonical ``frame`` (``series_id``, ``timestamp`` UTC) as read on ``timezone``'s calendar.

    Taken from the longest series' typical step on local wall time, so a
    daily series in Kolkata (18:30Z) is ``"D"``, weekday-only closes that skip
    NYSE holidays are ``"XNYS"``, other weekday-only dates ``"B"``, first or
    last days of months ``"MS"`` / ``"ME"``; sub-daily steps give ``"h"``,
    ``"15min"``, ... Raises ``ForecastingError`` when fewer than three
    timestamps or no regular step leave nothing to go on.
    """
    hint = "pass it, e.g. --freq D (or 'freq: D' in the ingest config)"
    stamps = frame.dropna(subset=["timestamp"])
    if stamps.empty:
        raise ForecastingError(f"{what}: no readable timestamps to infer the frequency from; {hint}")
    longest = stamps.groupby("series_id")["timestamp"].size().idxmax()
    index = pd.DatetimeIndex(stamps.loc[stamps["series_id"] == longest, "timestamp"]).sort_values().unique()
    local = index.tz_convert(timezone).tz_localize(None).as_unit("ns")
    if len(local) < 3:
        raise ForecastingError(f"{what}: {len(local)} timestamp(s) are too few to infer the frequency; {hint}")
    if (local == local.normalize()).all():
        days = np.diff(local.asi8) / pd.Timedelta(days=1).value
        step = float(np.median(days))
        if step <= 1.5:
            if (local.day_of_week >= 5).any():
                return "D"
            sessions = Grid("XNYS").points(as_utc(local[0]), as_utc(local[-1])).tz_localize(None)
            skipped = nyse_closures()[(nyse_closures() >= local[0]) & (nyse_closures() <= local[-1])]
            if local.isin(sessions).all() and len(skipped) and not local.isin(skipped).any():
                return "XNYS"
            return "B"
        if 6 <= step <= 8:
            return f"W-{local[0].day_name()[:3].upper()}"
        kinds = ((27, 32, "M"), (88, 93, "Q"), (364, 367, "Y"))
        for low, high, unit in kinds:
            if low <= step <= high:
                if (local.day == 1).all():
                    return f"{unit}S"
                if local.is_month_end.all():
                    return f"{unit}E"
        raise ForecastingError(f"{what}: dates about {step:g} days apart fit no known calendar; {hint}")
    step = pd.Timedelta(int(np.median(np.diff(local.asi8))), unit="ns")
    if step <= pd.Timedelta(0):
        raise ForecastingError(f"{what}: cannot infer the frequency; {hint}")
    return pd.tseries.frequencies.to_offset(step).freqstr
