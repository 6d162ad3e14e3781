"""Real datasets that ship inside installed packages, so demos and tests run offline.

Each loader turns a package's sample data into the canonical observation
frame (see ``forecasting.data.schema``). Importing this module does no I/O:
the sample-data packages are imported inside the loaders, because e.g.
``bokeh_sampledata.stocks`` reads its CSV at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from forecasting.data.schema import validate_observations
from forecasting.data.sources.base import REASON, Batch, FetchUnit, Source
from forecasting.errors import ForecastingError


@dataclass(frozen=True)
class BundledDataset:
    """A named offline dataset and how to load it."""

    name: str
    description: str
    freq: str
    """Grid of the series: a pandas offset alias or a trading calendar (``forecasting.data.calendar``)."""
    loader: Callable[[], pd.DataFrame]
    """Returns the observations; ``load_bundled`` validates them."""
    package: str = ""
    """The package the data ships in, for lineage."""
    max_fill: int = 0
    """Gap policy on ingest: interior runs of at most this many missing points are interpolated."""
    ranges: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Physically possible values per column, as ``{"ge": 0}``-style bounds, checked on ingest."""


def _seattle_temps() -> pd.DataFrame:
    from vega_datasets import local_data

    raw = local_data.seattle_temps()  # columns: date (naive), temp
    # What the raw data looks like (vega_datasets 0.9.0): 8759 naive hourly
    # labels from 2010-01-01 00:00 to 2010-12-31 23:00, no duplicates, one
    # label missing: 2010-03-14 03:00, the US spring-forward date. But it is not
    # DST wall-clock time: there is no repeated 01:00 on 2010-11-07 (fall back),
    # and the values (smooth to a tenth of a degree, like NOAA hourly normals)
    # follow the neighbouring days' diurnal profile at the same labels on both
    # sides of either transition, with no one-hour shift. So the labels are a
    # single fixed-offset clock, read here as Pacific Standard Time (UTC-8, the
    # "local standard time" NOAA uses); a UTC reading would put the daily
    # maximum near 07:00 local. The missing hour is left absent rather than
    # invented, so the UTC series has one one-hour gap on 2010-03-14 11:00 UTC.
    stamps = raw["date"].dt.tz_localize("Etc/GMT+8").dt.tz_convert("UTC")
    return pd.DataFrame(
        {"series_id": "weather/seattle-hourly", "timestamp": stamps, "target": raw["temp"]}
    )


def _seattle_weather() -> pd.DataFrame:
    from vega_datasets import local_data

    raw = local_data.seattle_weather()
    # Daily records on a complete calendar (1461 days, 2012-2015). The date is a
    # local calendar day; it is labelled 00:00 UTC so the date itself survives
    # the conversion unchanged.
    return pd.DataFrame(
        {
            "series_id": "weather/seattle",
            "timestamp": raw["date"].dt.tz_localize("UTC"),
            "target": raw["temp_max"],
            "temp_min": raw["temp_min"],
            "precipitation": raw["precipitation"],
            "wind": raw["wind"],
        }
    )


STOCK_TICKERS: tuple[str, ...] = ("AAPL", "IBM", "MSFT", "GOOG", "FB")


def _stocks() -> pd.DataFrame:
    from bokeh_sampledata import stocks

    raw = stocks.data  # long frame: ticker, date, open, high, low, close, volume, adj_close
    raw = raw[raw["ticker"].isin(STOCK_TICKERS)]
    # One row per trading session, labelled 00:00 UTC of the session date;
    # weekends and exchange holidays are simply absent.
    return pd.DataFrame(
        {
            "series_id": "stock/" + raw["ticker"].astype("str"),
            "timestamp": raw["date"].dt.tz_localize("UTC"),
            "target": raw["adj_close"],
            "open": raw["open"],
            "high": raw["high"],
            "low": raw["low"],
            "close": raw["close"],
            "volume": raw["volume"].astype("float64"),
        }
    )


BUNDLED_DATASETS: dict[str, BundledDataset] = {
    dataset.name: dataset
    for dataset in (
        BundledDataset(
            name="seattle_temps",
            description=(
                "Hourly temperature in Seattle for 2010, in degrees Fahrenheit (NOAA via "
                "vega_datasets). Source labels are local standard time (UTC-8); "
                "one hour (2010-03-14 03:00 PST) is missing in the source."
            ),
            freq="h",
            loader=_seattle_temps,
            package="vega_datasets",
            max_fill=3,
            ranges={"target": {"ge": -80.0, "le": 140.0}},
        ),
        BundledDataset(
            name="seattle_weather",
            description=(
                "Daily Seattle weather 2012-2015 (NOAA via vega_datasets): target is the "
                "daily maximum temperature in degrees Celsius; covariates temp_min (deg C), "
                "precipitation (mm) and wind (mean speed, as published)."
            ),
            freq="D",
            loader=_seattle_weather,
            package="vega_datasets",
            max_fill=1,
            ranges={
                "target": {"ge": -60.0, "le": 60.0},
                "temp_min": {"ge": -60.0, "le": 60.0},
                "precipitation": {"ge": 0.0},
                "wind": {"ge": 0.0},
            },
        ),
        BundledDataset(
            name="stocks",
            description=(
                "Daily prices of AAPL, IBM, MSFT, GOOG and FB up to 2013-03-01 (Quandl WIKI "
                "via bokeh_sampledata): target is the split/dividend-adjusted close; "
                "covariates are the unadjusted open, high, low, close and share volume."
            ),
            freq="XNYS",
            loader=_stocks,
            package="bokeh_sampledata",
            ranges={
                "target": {"gt": 0.0},
                **{c: {"gt": 0.0} for c in ("open", "high", "low", "close")},
                "volume": {"ge": 0.0},
            },
        ),
    )
}


def bundled_names() -> list[str]:
    """Names accepted by ``load_bundled``, sorted."""
    return sorted(BUNDLED_DATASETS)


def load_bundled(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a validated canonical observation frame."""
    dataset = BUNDLED_DATASETS.get(name)
    if dataset is None:
        raise ForecastingError(
            f"unknown bundled dataset '{name}'; known datasets: {', '.join(bundled_names())}"
        )
    return validate_observations(dataset.loader(), name=f"bundled dataset '{name}'")


class BundledSource(Source):
    """A bundled dataset as an ingest source: one fetch unit, the whole dataset, no network."""

    name = "bundled"

    def __init__(self, dataset: str) -> None:
        if dataset not in BUNDLED_DATASETS:
            load_bundled(dataset)  # raises the error naming the known datasets
        self.dataset = BUNDLED_DATASETS[dataset]

    def units(self) -> list[FetchUnit]:
        return [FetchUnit(key=self.dataset.name)]

    def fetch(self, unit: FetchUnit, since: Mapping[str, pd.Timestamp | None], until: pd.Timestamp) -> Batch:
        frame = load_bundled(self.dataset.name)
        cut = frame["series_id"].map(lambda s: since.get(s)).astype("datetime64[ns, UTC]")
        frame = frame[(cut.isna() | (frame["timestamp"] >= cut)) & (frame["timestamp"] <= pd.Timestamp(until))]
        frame = frame.assign(**{REASON: ""}).reset_index(drop=True)
        request = {"package": self.dataset.package, "dataset": self.dataset.name}
        return Batch(self.name, unit.key, frame, request)
