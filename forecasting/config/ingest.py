"""Typed, validated ingest configs: one YAML per source set, under ``configs/ingest/``.

Kept apart from the model configs (``forecasting.config``): an ingest feeds
a dataset that any number of models train on, and runs on its own schedule.
``source`` picks the kind (``open_meteo``, ``stooq``, ``files``; ``bundled``
is built in code for ``forecast ingest --offline``). Every problem in a file
is reported at once, with its field path, as one ``ConfigError``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from forecasting.data.calendar import GapPolicy, Grid, check_timezone, offset_for
from forecasting.data.quality import Bounds, QualityRules
from forecasting.data.sources import http
from forecasting.data.sources.base import Source
from forecasting.config.model import config_error, read_yaml, validation_problems
from forecasting.errors import ConfigError, ForecastingError

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeConfig(_Strict):
    """Allowed values of one column; rows outside go to quarantine."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> RangeConfig:
        if all(v is None for v in (self.gt, self.ge, self.lt, self.le)):
            raise ValueError("give at least one of gt, ge, lt, le")
        return self


class GapConfig(_Strict):
    max_fill: int = Field(0, ge=0, description="Interpolate interior runs of at most this many missing grid points; longer gaps stay absent and windowing skips them.")
    method: Literal["linear", "ffill"] = Field("linear", description="How filled points get their values.")


class LimitsConfig(_Strict):
    """Plausibility limits checked at ingest; each is overridable because real data can exceed any default."""

    max_abs: float | None = Field(1e15, gt=0, description="Values beyond +-this quarantine their row (a unit or parsing error); null: no limit.")
    min_rows: int = Field(10, ge=1, description="A new series with fewer rows is flagged as too short for most models (lookback + horizon).")
    flag_constant: bool = Field(True, description="Flag a series whose targets in a fetch are all the same value (a stuck sensor, a placeholder).")


class HttpConfig(_Strict):
    timeout_seconds: float = Field(30.0, gt=0, description="Per read, and for connecting.")
    deadline_seconds: float | None = Field(
        None, gt=0, description="Whole fetch of one request, every attempt and wait included; default 12 x timeout_seconds, at least 60."
    )
    attempts: int = Field(5, ge=1, description="Tries per request in total, the first included.")
    backoff_seconds: float = Field(1.0, ge=0, description="Delay before the first retry; doubles each retry.")
    max_backoff_seconds: float = Field(60.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1, description="Random spread of each delay, as a fraction.")
    max_retry_after_seconds: float = Field(300.0, ge=0, description="Give up when a server's Retry-After asks for longer.")

    def policy(self) -> http.HttpPolicy:
        return http.HttpPolicy(
            timeout=self.timeout_seconds, deadline=self.deadline_seconds, attempts=self.attempts, backoff=self.backoff_seconds,
            max_backoff=self.max_backoff_seconds, jitter=self.jitter, max_retry_after=self.max_retry_after_seconds,
        )


class _IngestBase(_Strict):
    dataset: str = Field(pattern=_NAME, description="Dataset in the observation store that the series land in.")
    freq: str = Field(description="Grid of the series: a pandas alias ('h', 'D') or a trading calendar ('XNYS').")
    start: dt.date | None = Field(None, description="First date fetched for a series with nothing stored yet.")
    end: dt.date | None = Field(None, description="Last date fetched; default today (UTC). Pin it for reproducible backfills.")
    overlap: int = Field(24, ge=0, description="Grid steps before the last stored timestamp fetched again, to pick up revised values.")
    gaps: GapConfig = GapConfig()
    ranges: dict[str, RangeConfig] = Field(default_factory=dict, description="Column -> allowed values ('target' included).")
    optional: list[str] = Field(default_factory=list, description="Covariates allowed to be missing; any other missing value quarantines its row.")
    required: list[str] | None = Field(
        None,
        description="Covariates a model reads: a missing value quarantines its row. When given, a missing value in any other "
        "covariate lands as NaN (reported) and never holds back the target. Default: every covariate not in 'optional' "
        "(live sources); none for the files source.",
    )
    duplicates: Literal["last", "first", "error"] = Field(
        "error",
        description="Rows with different values for one series and timestamp: keep the 'last' or 'first' in input order, or "
        "'error': quarantine them all with the reason (exact repeats always collapse to one).",
    )
    limits: LimitsConfig = LimitsConfig()
    http: HttpConfig = HttpConfig()

    @field_validator("freq")
    @classmethod
    def _known_freq(cls, value: str) -> str:
        try:
            offset_for(value)
        except ForecastingError as exc:
            raise ValueError(str(exc)) from None
        return value

    def grid(self) -> Grid:
        return Grid(self.freq, self.grid_timezone())

    def grid_timezone(self) -> str:
        """The zone the series' days (and sessions) start in; UTC unless a source says otherwise."""
        return "UTC"

    def gap_policy(self) -> GapPolicy:
        return GapPolicy(max_fill=self.gaps.max_fill, method=self.gaps.method)

    def rules(self) -> QualityRules:
        ranges = {c: Bounds(**r.model_dump()) for c, r in self.ranges.items()}
        return QualityRules(
            grid=self.grid(), ranges=ranges, optional=frozenset(self.optional),
            required=None if self.required is None else frozenset(self.required),
            duplicates=self.duplicates, max_abs=self.limits.max_abs,
        )

    def build_source(self) -> Source:
        raise NotImplementedError


class LocationConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Series id becomes weather/<name>.")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class OpenMeteoConfig(_IngestBase):
    """Hourly (or daily) reanalysis weather per location from the Open-Meteo archive API."""

    source: Literal["open_meteo"]
    freq: str = "h"
    base_url: str = Field("https://archive-api.open-meteo.com", description="Scheme and host; tests point it at a local server.")
    interval: Literal["hourly", "daily"] = "hourly"
    timezone: str = Field("GMT", description="Open-Meteo 'timezone' parameter; daily values are days in this zone.")
    target: str = "temperature_2m"
    variables: list[str] = Field(
        default_factory=lambda: ["temperature_2m", "relative_humidity_2m", "wind_speed_10m", "precipitation"],
        min_length=1,
        description="API variable names; all but the target become covariates under the same names.",
    )
    locations: list[LocationConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> OpenMeteoConfig:
        problems = []
        if self.timezone not in ("auto", "GMT"):
            try:
                check_timezone(self.timezone)
            except ForecastingError as exc:
                problems.append(f"timezone: {exc} (e.g. 'timezone: Europe/Berlin', or GMT)")
        if self.start is None:
            problems.append("start: required for a live source (the first date to fetch)")
        if self.target not in self.variables:
            problems.append(f"target: {self.target!r} is not among variables {self.variables}")
        wanted = {"hourly": "h", "daily": "D"}[self.interval]
        if self.freq != wanted:
            problems.append(f"freq: {self.freq!r} does not match interval {self.interval!r}; use {wanted!r}")
        names = [loc.name for loc in self.locations]
        if len(set(names)) != len(names):
            problems.append(f"locations: names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def build_source(self) -> Source:
        from forecasting.data.sources.open_meteo import Location, OpenMeteoSource

        return OpenMeteoSource(
            [Location(loc.name, loc.latitude, loc.longitude) for loc in self.locations],
            variables=self.variables, target=self.target, start=self.start, interval=self.interval,
            timezone=self.timezone, base_url=self.base_url, policy=self.http.policy(),
        )


class StooqConfig(_IngestBase):
    """Daily adjusted OHLCV per ticker from Stooq, on the NYSE trading calendar."""

    source: Literal["stooq"]
    freq: str = "XNYS"
    overlap: int = 5
    base_url: str = "https://stooq.com"
    tickers: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.^-]+$")]] = Field(min_length=1)
    suffix: str = Field(".us", description="Appended to the lower-cased ticker to form the Stooq symbol.")

    @model_validator(mode="after")
    def _consistent(self) -> StooqConfig:
        if self.start is None:
            raise ValueError("start: required for a live source (the first date to fetch)")
        return self

    def build_source(self) -> Source:
        from forecasting.data.sources.stooq import StooqSource

        return StooqSource(self.tickers, start=self.start, suffix=self.suffix, base_url=self.base_url, policy=self.http.policy())


class FilesConfig(_IngestBase):
    """A CSV or Parquet file, local or at an http(s) URL."""

    source: Literal["files"]
    path: str = Field(description="Local path (relative to the working directory) or http(s) URL.")
    format: Literal["csv", "parquet"] | None = Field(None, description="Default: from the file name.")
    columns: dict[str, str] = Field(default_factory=dict, description="Source column -> canonical name; when given, only these are read.")
    series_id: str | None = Field(None, description="Series id for every row of a single-series file.")
    timezone: str | None = Field(
        None,
        description="Zone the data was recorded in: naive timestamps are read in it (without it they are an error), and "
        "daily or coarser series live on its calendar (days start at local midnight; XNYS sessions in America/New_York).",
    )
    overlap: int = Field(0, ge=0, description="Unused by files: a file lands every valid row it holds (older rows backfill).")
    required: list[str] | None = Field(
        default_factory=list,
        description="Covariates a model reads: a missing value quarantines its row. Others land as NaN (reported).",
    )
    read_batch_rows: int = Field(
        100_000, ge=1, le=10_000_000,
        description="Rows read and parsed at a time; the file is streamed, so peak memory follows this (and the largest series), not the file.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_timezone(value)
            except ForecastingError as exc:
                raise ValueError(f"{exc}; name the zone the data was recorded in, e.g.\n    timezone: America/New_York") from None
        return value

    @field_validator("path")
    @classmethod
    def _not_a_directory(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) and Path(value).expanduser().is_dir():
            raise ValueError(f"{value} is a directory; give the path of a CSV or Parquet file inside it")
        return value

    def grid_timezone(self) -> str:
        return self.timezone or "UTC"

    def build_source(self) -> Source:
        from forecasting.data.sources.files import FileSource

        return FileSource(
            self.path, format=self.format, columns=self.columns, series_id=self.series_id,
            timezone=self.timezone, policy=self.http.policy(), read_batch_rows=self.read_batch_rows,
        )


class BundledConfig(_IngestBase):
    """A dataset shipped in an installed package (offline)."""

    source: Literal["bundled"]
    name: str

    def build_source(self) -> Source:
        from forecasting.data.sources.bundled import BundledSource

        return BundledSource(self.name)


IngestConfig = Annotated[OpenMeteoConfig | StooqConfig | FilesConfig | BundledConfig, Field(discriminator="source")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(IngestConfig)


def parse_ingest_config(raw: Any, *, source: str = "<dict>") -> OpenMeteoConfig | StooqConfig | FilesConfig | BundledConfig:
    """Validate a mapping; one ``ConfigError`` lists every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"ingest config {source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, drop_tags=("open_meteo", "stooq", "files", "bundled"))
        raise config_error(f"ingest config {source}", problems) from None


def load_ingest_config(path: str | Path) -> OpenMeteoConfig | StooqConfig | FilesConfig | BundledConfig:
    """Read and validate one ingest YAML, e.g. ``configs/ingest/weather.yaml``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"ingest config {path} is a directory; give one YAML file, e.g. {path / 'weather.yaml'}")
    if path.is_file():
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"ingest config {path} is not a text (UTF-8) YAML file: byte {exc.start} cannot be read") from None
    return parse_ingest_config(read_yaml(path, what="ingest config"), source=str(path))


def one_off_file_config(
    path: str,
    *,
    dataset: str,
    time_col: str,
    target_col: str,
    id_col: str | None = None,
    series_id: str | None = None,
    timezone: str | None = None,
    freq: str | None = None,
    **extra: Any,
) -> FilesConfig:
    """The files config of ``forecast ingest --file``: the same checks as a YAML, built from flags.

    Without ``freq`` the grid is inferred from the file's timestamps (``infer_file_freq``).
    """
    columns = {time_col: "timestamp", target_col: "target"}
    if id_col:
        columns[id_col] = "series_id"
    raw: dict[str, Any] = {
        "source": "files", "path": path, "dataset": dataset, "columns": columns, "timezone": timezone,
        "series_id": None if id_col else (series_id or dataset), **extra,
    }
    if freq is None:
        from forecasting.data.calendar import infer_freq
        from forecasting.data.sources.files import FileSource

        parse = parse_ingest_config({**raw, "freq": "D"}, source=f"--file {path}")  # every other flag checked first
        frame = FileSource(path, format=parse.format, columns=columns, series_id=raw["series_id"], timezone=timezone).longest_series()
        freq = infer_freq(frame, timezone or "UTC", what=f"file {path}")
    return parse_ingest_config({**raw, "freq": freq}, source=f"--file {path}")  # type: ignore[return-value]


def bundled_config(name: str) -> BundledConfig:
    """The ingest config of a bundled dataset: its grid, gap policy and ranges."""
    from forecasting.data.sources.bundled import BUNDLED_DATASETS, load_bundled

    if name not in BUNDLED_DATASETS:
        load_bundled(name)  # raises the error naming the known datasets
    dataset = BUNDLED_DATASETS[name]
    return BundledConfig(
        source="bundled", name=name, dataset=name, freq=dataset.freq, overlap=1,
        gaps=GapConfig(max_fill=dataset.max_fill), ranges={c: RangeConfig(**r) for c, r in dataset.ranges.items()},
    )
