"""The canonical observation frame and its validation.

Every source, the store and the models exchange observations in one long
format: one row per (``series_id``, ``timestamp``) with a float ``target`` and
any number of float covariate columns. Validating once at the boundary lets
everything downstream assume sorted, UTC, float64, duplicate-free data.

Validation collects every problem and raises a single ``DataValidationError``,
so a user fixing a file sees the whole list at once instead of one problem per run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError

REQUIRED_COLUMNS: tuple[str, ...] = ("series_id", "timestamp", "target")

# One dtype for series_id everywhere (pandas' default string dtype), so frames
# from sources, the store and tests compare equal without casting.
SERIES_ID_DTYPE = "str"
TIMESTAMP_DTYPE = "datetime64[ns, UTC]"


def validate_observations(
    frame: pd.DataFrame,
    *,
    required: Sequence[str] = (),
    name: str = "observations",
) -> pd.DataFrame:
    """Check ``frame`` against the canonical schema and return a canonical copy.

    ``required`` names covariates that must be present and finite (e.g. those a
    model config consumes); other covariates may contain NaN. Time-zone-aware
    non-UTC timestamps are converted to UTC; naive ones are rejected because
    guessing their zone silently shifts every observation.

    Returns a new frame sorted by (series_id, timestamp) with a fresh index,
    columns ``series_id, timestamp, target, <covariates...>``, series_id as
    pandas ``str``, timestamp ``datetime64[ns, UTC]`` and all other columns
    float64. The input is never modified. Raises ``DataValidationError``
    listing every problem found.
    """
    problems: list[str] = []
    wanted = list(dict.fromkeys([*REQUIRED_COLUMNS, *required]))
    available = list(frame.columns)

    duplicated_columns = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated_columns:
        # Every later check would be ambiguous about which copy it looked at.
        problems.append(f"duplicate column names: {duplicated_columns}")
        raise DataValidationError(name, problems)

    for column in wanted:
        if column not in frame.columns:
            problems.append(f"missing required column '{column}'; available columns: {available}")

    out = frame.copy()
    ids_ok = _canonical_series_id(out, problems)
    times_ok = _canonical_timestamp(out, problems)
    numeric = _canonical_numeric(out, problems)

    if ids_ok and times_ok:
        # Sort before the per-series checks so "first at" means first in time.
        out = out.sort_values(["series_id", "timestamp"], kind="stable", na_position="last")
    for column in wanted:
        if column in numeric:
            _check_finite(out, column, problems, times_ok=times_ok)
    if ids_ok and times_ok:
        _check_duplicates(out, problems)

    if problems:
        raise DataValidationError(name, problems)

    covariates = [c for c in out.columns if c not in REQUIRED_COLUMNS]
    return out[[*REQUIRED_COLUMNS, *covariates]].reset_index(drop=True)


def empty_observations(covariates: Sequence[str] = ()) -> pd.DataFrame:
    """A canonical frame with no rows, for readers that find nothing to return."""
    columns: dict[str, pd.Series] = {
        "series_id": pd.Series([], dtype=SERIES_ID_DTYPE),
        "timestamp": pd.Series([], dtype=TIMESTAMP_DTYPE),
        "target": pd.Series([], dtype="float64"),
    }
    for column in covariates:
        columns[column] = pd.Series([], dtype="float64")
    return pd.DataFrame(columns)


def _canonical_series_id(out: pd.DataFrame, problems: list[str]) -> bool:
    """Cast series_id to str in place; return whether the column exists.

    Null ids are reported but still usable as a sort/group key (groupby drops
    them), so the other per-series checks keep running.
    """
    if "series_id" not in out.columns:
        return False
    ids = out["series_id"]
    null = ids.isna()
    if null.any():
        rows = list(out.index[null][:5])
        problems.append(f"column 'series_id' has {int(null.sum())} null values (at index {rows})")
    out["series_id"] = ids.astype(SERIES_ID_DTYPE)
    blank = ~null & (out["series_id"].str.strip() == "")
    if blank.any():
        rows = list(out.index[blank][:5])
        problems.append(f"column 'series_id' has {int(blank.sum())} empty values (at index {rows})")
    return True


def _canonical_timestamp(out: pd.DataFrame, problems: list[str]) -> bool:
    """Convert timestamp to datetime64[ns, UTC] in place; return whether it is usable."""
    if "timestamp" not in out.columns:
        return False
    stamps = out["timestamp"]
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(stamps.dtype):
            problems.append(
                "column 'timestamp' holds naive timestamps; they must be timezone-aware UTC "
                "(use .dt.tz_localize(<the zone they were recorded in>) then .dt.tz_convert('UTC'))"
            )
        else:
            problems.append(
                f"column 'timestamp' has dtype {stamps.dtype}; expected timezone-aware datetimes "
                "(datetime64[ns, UTC])"
            )
        return False
    try:
        out["timestamp"] = stamps.dt.tz_convert("UTC").dt.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        problems.append(f"column 'timestamp' has values outside the nanosecond range: {exc}")
        return False
    missing = out["timestamp"].isna()
    if missing.any():
        problems.append(
            f"column 'timestamp' has {int(missing.sum())} missing (NaT) values "
            f"(at index {list(out.index[missing][:5])})"
        )
        return False
    return True


def _canonical_numeric(out: pd.DataFrame, problems: list[str]) -> set[str]:
    """Cast target and covariates to float64 in place; return the columns that are numeric."""
    numeric: set[str] = set()
    for column in out.columns:
        if column in ("series_id", "timestamp"):
            continue
        dtype = out[column].dtype
        if not pd.api.types.is_numeric_dtype(dtype):
            role = "target" if column == "target" else "covariate"
            problems.append(
                f"{role} column '{column}' is not numeric (dtype {dtype}); "
                "target and covariates must be numbers"
            )
            continue
        out[column] = out[column].astype("float64")
        numeric.add(column)
    return numeric


def _check_finite(out: pd.DataFrame, column: str, problems: list[str], *, times_ok: bool) -> None:
    """Report NaN/inf in ``column`` per series, naming when each series first goes bad."""
    bad = ~np.isfinite(out[column].to_numpy())
    if not bad.any():
        return
    what = "target values" if column == "target" else f"values in covariate '{column}'"
    if "series_id" not in out.columns:
        first = int(np.flatnonzero(bad)[0])
        problems.append(f"{int(bad.sum())} NaN/inf {what}, first at row {first}")
        return
    rows = out.loc[bad]
    # Without usable timestamps the best locator is the row position in the input.
    where = rows["timestamp"] if times_ok else pd.Series(np.flatnonzero(bad), index=rows.index)
    grouped = where.groupby(rows["series_id"].to_numpy(), sort=True)
    for sid, n, first in zip(grouped.size().index, grouped.size(), grouped.min()):
        location = first if times_ok else f"row {first}"
        problems.append(f"series '{sid}': {n} NaN/inf {what}, first at {location}")


def _check_duplicates(out: pd.DataFrame, problems: list[str]) -> None:
    """Report rows repeating an earlier (series_id, timestamp) pair, per series."""
    repeated = out.duplicated(["series_id", "timestamp"], keep="first").to_numpy()
    if not repeated.any():
        return
    rows = out.loc[repeated]
    grouped = rows["timestamp"].groupby(rows["series_id"].to_numpy(), sort=True)
    for sid, n, first in zip(grouped.size().index, grouped.size(), grouped.min()):
        problems.append(f"series '{sid}': {n} rows repeat an earlier timestamp, first at {first}")
