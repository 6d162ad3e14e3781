"""Row-level checks of a fetched batch: good rows land, bad rows go to quarantine with reasons.

``validate_observations`` (schema.py) rejects a whole frame on the first
bad value, which is right for data already in the store. A fetched batch is
different: one impossible humidity must not hold back a day of good hours,
and it must not vanish either. ``check_batch`` therefore sorts every row into
good or quarantined, with every reason a row fails for, and summarises the
problems per series so one report shows them all.

A batch is rejected whole (``DataValidationError``) only when it cannot be
read row by row: required columns missing, a column that is not numeric.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from forecasting.data.calendar import Grid
from forecasting.data.schema import REQUIRED_COLUMNS, SERIES_ID_DTYPE, TIMESTAMP_DTYPE, validate_observations
from forecasting.data.sources.base import REASON
from forecasting.errors import DataValidationError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

QUARANTINE_COLUMNS: tuple[str, ...] = ("series_id", "timestamp", "reason", "record")
"""``record`` is the row's values as JSON, so a quarantined row can be inspected and replayed."""


@dataclass(frozen=True)
class Bounds:
    """Physically possible values of one column; a None bound is open."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def violated(self, values: np.ndarray) -> np.ndarray:
        """``(n,)`` bool: finite values outside the bounds (NaN/inf are reported elsewhere)."""
        bad = np.zeros(values.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.gt is not None:
                bad |= values <= self.gt
            if self.ge is not None:
                bad |= values < self.ge
            if self.lt is not None:
                bad |= values >= self.lt
            if self.le is not None:
                bad |= values > self.le
        return bad & np.isfinite(values)

    def describe(self) -> str:
        parts = [f"{op} {_num(v)}" for op, v in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)) if v is not None]
        return " and ".join(parts) or "any value"


@dataclass(frozen=True)
class QualityRules:
    """What a good row of one dataset looks like."""

    grid: Grid
    ranges: Mapping[str, Bounds] = field(default_factory=dict)
    """Column name -> allowed values (``target`` included)."""
    optional: frozenset[str] = frozenset()
    """Covariates that may be missing (NaN); every other numeric column must be finite."""
    required: frozenset[str] | None = None
    """When given, only these covariates must be present: a missing value in any other lands as NaN
    (reported, never quarantining the row's target). None: every covariate not in ``optional``."""
    duplicates: Literal["last", "first", "error"] = "error"
    """Rows with conflicting values for one timestamp: keep the last or first (in input order), or quarantine them all."""
    max_abs: float | None = 1e15
    """Values beyond +-this are implausible (a unit or parsing error): the row is quarantined. None: no limit."""

    def must_be_present(self, column: str) -> bool:
        if column == "target":
            return True
        if self.required is not None:
            return column in self.required
        return column not in self.optional


@dataclass
class CheckedBatch:
    good: pd.DataFrame
    """Canonical, validated rows (exact repeats collapsed to one)."""
    quarantine: pd.DataFrame
    """``QUARANTINE_COLUMNS``: one row per rejected input row, every reason joined with '; '."""
    problems: dict[str, list[str]]
    """Series id -> one line per kind of problem, with counts and the first time it occurs."""
    duplicates: dict[str, int]
    """Series id -> rows dropped because they exactly repeat another row."""


def check_batch(frame: pd.DataFrame, rules: QualityRules, *, name: str = "batch") -> CheckedBatch:
    """Split ``frame`` (a source's ``Batch.frame``) into good and quarantined rows."""
    values = _numeric_columns(frame, name)
    rows = frame.reset_index(drop=True)
    rows["timestamp"] = rows["timestamp"].dt.tz_convert("UTC").dt.as_unit("ns")
    ids = rows["series_id"].astype(SERIES_ID_DTYPE).fillna("").str.strip()
    stamps = pd.DatetimeIndex(rows["timestamp"])
    found = _Findings(ids, stamps)

    explained = np.zeros(len(rows), dtype=bool)  # a parser already said what is wrong with the timestamp
    if REASON in rows.columns:
        notes = rows[REASON].fillna("").astype("str")
        found.add(notes.ne("").to_numpy(), notes.to_numpy(dtype=object), "that could not be read")
        explained = notes.str.contains("timestamp '", regex=False).to_numpy(dtype=bool)
    found.add(ids.eq("").to_numpy(), "series_id is missing", "without a series_id")
    control = ids.str.contains(_CONTROL, regex=True).to_numpy(dtype=bool)
    found.add(control, "series_id contains control characters (e.g. NUL)", "with control characters in the series_id")
    found.add(np.asarray(stamps.isna()) & ~explained, "timestamp is missing", "without a timestamp")
    off_grid = ~stamps.isna() & ~rules.grid.on_grid(stamps)
    found.add(
        off_grid, f"timestamp is off the {rules.grid.describe()}",
        f"off the {rules.grid.describe()} (check 'freq:' and the 'timezone:' the data was recorded in)",
    )
    for column in values:
        data = rows[column].to_numpy(dtype=np.float64)
        found.add(np.isinf(data), f"{column} is infinite", f"with infinite {column}")
        if rules.must_be_present(column):
            found.add(np.isnan(data), f"{column} is missing", f"with missing {column}")
        elif column not in rules.optional:
            found.note(np.isnan(data), f"with missing {column} landed as NaN (not in 'required:', so the target was kept)")
        if rules.max_abs is not None:
            with np.errstate(invalid="ignore"):
                huge = np.isfinite(data) & (np.abs(data) > rules.max_abs)
            text = np.full(len(data), "", dtype=object)
            text[huge] = [f"{column} {v:g} is beyond the plausible limit +-{rules.max_abs:g} (limits.max_abs)" for v in data[huge]]
            found.add(huge, text, f"with {column} beyond +-{rules.max_abs:g} (raise limits.max_abs if real)", examples=data)
        bounds = rules.ranges.get(column)
        if bounds is not None:
            bad = bounds.violated(data)
            text = np.full(len(data), "", dtype=object)
            text[bad] = [f"{column} {_num(v)} is not {bounds.describe()}" for v in data[bad]]
            found.add(bad, text, f"with {column} not {bounds.describe()}", examples=data)

    duplicates = _check_repeats(rows, values, ids, found, rules.duplicates)
    rejected = found.rejected()
    keep = ~rejected & ~duplicates
    good = rows.loc[keep, [*REQUIRED_COLUMNS, *[c for c in values if c != "target"]]].copy()
    good["series_id"] = ids[keep]
    good = validate_observations(good, name=name)  # cannot fail on rows that passed; keeps the contract
    dropped = {str(k): int(v) for k, v in pd.Series(ids[duplicates]).value_counts().sort_index().items()}
    problems = found.summary()
    for sid, count in dropped.items():  # harmless, but said: nothing leaves a batch unmentioned
        line = found.resolved.get(sid)
        if line:
            problems.setdefault(sid, []).append(f"series '{sid}': {line}")
            count -= found.resolved_rows.get(sid, 0)
        if count:
            problems.setdefault(sid, []).append(f"series '{sid}': {count} row(s) exactly repeating another were collapsed")
    return CheckedBatch(
        good=good,
        quarantine=_quarantine_frame(rows.loc[rejected], ids[rejected], found.reasons[rejected], values),
        problems=problems,
        duplicates=dropped,
    )


class _Findings:
    """Reasons per row and, per series, one summary line per kind of problem."""

    def __init__(self, ids: pd.Series, stamps: pd.DatetimeIndex) -> None:
        self.ids = ids.to_numpy(dtype=object)
        self.stamps = stamps
        self.reasons = np.full(len(ids), "", dtype=object)
        self._lines: list[tuple[str, str]] = []
        self.resolved: dict[str, str] = {}
        """Series id -> how conflicting duplicates were resolved by the ``duplicates`` rule."""
        self.resolved_rows: dict[str, int] = {}

    def note(self, mask: np.ndarray, label: str) -> None:
        """Summarise rows in ``mask`` per series without rejecting them."""
        mask = np.asarray(mask, dtype=bool)
        for sid in sorted(set(self.ids[mask])):
            in_series = mask & (self.ids == sid)
            first = int(np.flatnonzero(in_series)[0])
            where = "no timestamp" if pd.isna(self.stamps[first]) else str(self.stamps[first])
            self._lines.append((sid, f"{int(in_series.sum())} row(s) {label}, first at {where}"))

    def add(self, mask: np.ndarray, reason: str | np.ndarray, label: str, *, examples: np.ndarray | None = None) -> None:
        """Give rows in ``mask`` the ``reason`` (one string, or an (n,) array of them) and summarise per series."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        text = reason[mask] if isinstance(reason, np.ndarray) else reason  # arrays hold one reason per row
        current = self.reasons[mask]
        self.reasons[mask] = np.where(current == "", text, current + "; " + text)
        for sid in sorted(set(self.ids[mask])):
            in_series = mask & (self.ids == sid)
            count = int(in_series.sum())
            first = int(np.flatnonzero(in_series)[0])
            where = "no timestamp" if pd.isna(self.stamps[first]) else str(self.stamps[first])
            line = f"{count} row(s) {label}, first at {where}"
            if examples is not None:
                line += f" (value {_num(examples[first])})"
            elif isinstance(reason, np.ndarray) and label == "that could not be read":
                line += f": {self.reasons[first]}"
            self._lines.append((sid, line))

    def rejected(self) -> np.ndarray:
        return self.reasons != ""

    def summary(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for sid, line in self._lines:
            out.setdefault(sid or "(no series_id)", []).append(f"series '{sid}': {line}" if sid else line)
        return out


def _numeric_columns(frame: pd.DataFrame, name: str) -> list[str]:
    """``target`` then the covariates; a missing required column or text column rejects the batch."""
    problems = []
    for column in REQUIRED_COLUMNS:
        if column not in frame.columns:
            problems.append(f"missing required column '{column}'; available columns: {list(frame.columns)}")
    if "timestamp" in frame.columns and not isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype):
        problems.append(f"column 'timestamp' has dtype {frame['timestamp'].dtype}; expected timezone-aware datetimes")
    values = [c for c in frame.columns if c not in ("series_id", "timestamp", REASON)]
    for column in values:
        if not pd.api.types.is_numeric_dtype(frame[column].dtype):
            problems.append(f"column '{column}' is not numeric (dtype {frame[column].dtype})")
    if problems:
        raise DataValidationError(name, problems)
    return ["target", *[c for c in values if c != "target"]]


def _check_repeats(
    rows: pd.DataFrame, values: list[str], ids: pd.Series, found: _Findings, rule: str = "error"
) -> np.ndarray:
    """Mark rows to drop: exact repeats (counted, not quarantined) and, under ``last``/``first``, the losing
    side of conflicting repeats. Under ``error`` every row of a conflicting timestamp is quarantined."""
    keyed = pd.DataFrame({"series_id": ids, "timestamp": rows["timestamp"]})
    usable = ~found.rejected() & keyed["timestamp"].notna().to_numpy()
    repeated = keyed.duplicated(keep=False).to_numpy() & usable
    drop = np.zeros(len(rows), dtype=bool)
    if not repeated.any():
        return drop
    subset = pd.concat([keyed, rows[values]], axis=1).loc[repeated]
    distinct = subset.drop_duplicates().groupby(["series_id", "timestamp"]).size()
    conflicting = keyed.loc[repeated].set_index(["series_id", "timestamp"]).index.isin(distinct[distinct > 1].index)
    conflict = np.zeros(len(rows), dtype=bool)
    conflict[np.flatnonzero(repeated)[conflicting]] = True
    if rule == "error":
        found.add(
            conflict, "conflicting values for the same timestamp",
            "with conflicting values for one timestamp (set 'duplicates: last' or 'duplicates: first' to keep one)",
        )
    elif conflict.any():
        keep = "last" if rule == "last" else "first"
        losers = np.zeros(len(rows), dtype=bool)  # among the usable conflicting rows only: a quarantined row never wins
        losers[np.flatnonzero(conflict)] = keyed.loc[conflict].duplicated(keep=keep).to_numpy()
        drop |= losers
        per_series = pd.Series(ids[conflict]).groupby(ids[conflict].to_numpy()).size()
        lost = pd.Series(ids[losers]).value_counts()
        for sid in per_series.index:
            first = keyed.loc[conflict & (ids.to_numpy() == sid), "timestamp"].min()
            stamps = keyed.loc[conflict & (ids.to_numpy() == sid)].drop_duplicates().shape[0]
            found.resolved[str(sid)] = (
                f"{stamps} timestamp(s) had conflicting rows, first at {first}: kept the {keep} of each "
                f"(duplicates: {rule}), dropped {int(lost.get(sid, 0))} row(s)"
            )
            found.resolved_rows[str(sid)] = int(lost.get(sid, 0))
    exact = repeated & ~conflict
    drop[exact] = pd.concat([keyed, rows[values]], axis=1).loc[exact].duplicated(keep="first").to_numpy()
    return drop


def _quarantine_frame(rows: pd.DataFrame, ids: pd.Series, reasons: np.ndarray, values: list[str]) -> pd.DataFrame:
    records = [
        json.dumps({c: (None if not math.isfinite(v) else v) if isinstance(v, float) else v for c, v in r.items()}, sort_keys=True)
        for r in rows[values].to_dict("records")
    ]
    return pd.DataFrame(
        {
            "series_id": pd.Series(ids.to_numpy(), dtype=SERIES_ID_DTYPE),
            "timestamp": pd.Series(pd.DatetimeIndex(rows["timestamp"]).as_unit("ns"), dtype=TIMESTAMP_DTYPE),
            "reason": pd.Series(list(reasons), dtype="str"),
            "record": pd.Series(records, dtype="str"),
        }
    )


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) and math.isfinite(value) else str(value)
