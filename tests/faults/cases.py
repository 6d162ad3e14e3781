"""The fault-injection cases, as data: each one a bad input or an injected fault, and what must happen.

Every case must end in one clear ``ForecastingError`` (a bad input or a fault nobody can repair from
here) or in success (a fault the code survives, e.g. by retrying), within its time bound, with no other
exception escaping and no data lost. ``tests/faults/test_*.py`` assert them one by one;
``python -m tests.faults.report`` runs them all and prints the summary table.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from forecasting.errors import ForecastingError
from tests.faults.server import FaultServer

Kind = Literal["input", "fault"]
Result = Literal["clear error", "survived", "traceback", "hang", "lost"]


@dataclass(frozen=True)
class Case:
    name: str
    kind: Kind
    run: Callable[[Path, FaultServer], str | None]
    """Does the thing; returns None, or a line saying what was lost (rows, versions, files). Raises on error."""
    expect: Literal["error", "success"] = "error"
    must_say: str = ""
    """Text the clear error must contain (the series, file or value it names)."""
    bound: float = 30.0
    """Seconds within which the case must end."""


@dataclass(frozen=True)
class Outcome:
    case: Case
    result: Result
    seconds: float
    detail: str


def run_case(case: Case, tmp: Path, server: FaultServer) -> Outcome:
    """Run one case in a thread, bounded by ``case.bound`` (a case still running after it is a hang)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["lost"] = case.run(tmp, server)
        except ForecastingError as exc:
            box["error"] = exc
        except BaseException as exc:  # noqa: BLE001 - any other exception is the finding
            box["traceback"] = "".join(traceback.format_exception(exc))

    started = time.monotonic()
    thread = threading.Thread(target=target, name=f"case-{case.name}", daemon=True)
    thread.start()
    thread.join(case.bound)
    seconds = time.monotonic() - started
    if thread.is_alive():
        return Outcome(case, "hang", seconds, f"still running after {case.bound:.0f} s")
    if "traceback" in box:
        return Outcome(case, "traceback", seconds, str(box["traceback"]).strip().splitlines()[-1])
    if box.get("lost"):
        return Outcome(case, "lost", seconds, str(box["lost"]))
    if "error" in box:
        message = str(box["error"])
        if case.expect == "error" and case.must_say in message and "\n" not in message.split("\n  - ")[0]:
            return Outcome(case, "clear error", seconds, " ".join(message.split())[:200])
        return Outcome(case, "traceback", seconds, f"unexpected error: {message[:200]}")
    if case.expect == "success":
        return Outcome(case, "survived", seconds, "ok")
    return Outcome(case, "lost", seconds, "accepted without a word")


# --- Network faults: the real sources against the fault server ---------------------------------

def _policy():
    from forecasting.data.sources.http import HttpPolicy

    return HttpPolicy(timeout=2.0, attempts=2, backoff=0.05, max_backoff=0.1, deadline=6.0)


def _open_meteo(base_url: str):
    from forecasting.data.sources.open_meteo import Location, OpenMeteoSource

    return OpenMeteoSource([Location("berlin", 52.52, 13.41)], variables=("temperature_2m",), target="temperature_2m",
                           start=dt.date(2024, 1, 1), base_url=base_url, policy=_policy())


def _stooq(base_url: str):
    from forecasting.data.sources.stooq import StooqSource

    return StooqSource(["AAPL"], start=dt.date(2024, 1, 1), base_url=base_url, policy=_policy())


def _fetch(source) -> pd.DataFrame:  # noqa: ANN001 - a Source
    (unit,) = source.units()
    return source.fetch(unit, {}, pd.Timestamp("2024-01-03", tz="UTC")).frame


def _discard(_: object) -> None:
    return None


def network_cases() -> list[Case]:
    cases = []
    for mode in ("trickle", "silent", "reset", "truncate", "redirect", "gzip", "html", "status-503", "status-404"):
        for label, make, series in (("open_meteo", _open_meteo, "weather/berlin"), ("stooq", _stooq, "stock/AAPL")):
            cases.append(Case(
                f"{label}: {mode}", "fault",
                lambda tmp, server, make=make, mode=mode: _discard(_fetch(make(f"{server.url}/{mode}"))),
                must_say=series, bound=20.0,
            ))
    return cases


OPEN_METEO_OK = {"utc_offset_seconds": 0, "hourly": {"time": ["2024-01-01T00:00", "2024-01-01T01:00"],
                                                      "temperature_2m": [1.5, 2.0]}}
WRONG_SHAPES: dict[str, object] = {
    "utc_offset_seconds true": {**OPEN_METEO_OK, "utc_offset_seconds": True},
    "utc_offset_seconds a string": {**OPEN_METEO_OK, "utc_offset_seconds": "3600"},
    "utc_offset_seconds 1e12": {**OPEN_METEO_OK, "utc_offset_seconds": 10**12},
    "hourly a list": {**OPEN_METEO_OK, "hourly": [1, 2]},
    "hourly.time objects": {**OPEN_METEO_OK, "hourly": {"time": [{}, {}], "temperature_2m": [1, 2]}},
    "values nested lists": {**OPEN_METEO_OK, "hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": [[1]]}},
    "values 400-digit integer": {**OPEN_METEO_OK, "hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": [10**400]}},
    "time 20-digit unix seconds": {**OPEN_METEO_OK, "hourly": {"time": [10**20], "temperature_2m": [1.0]}},
    "arrays of different lengths": {**OPEN_METEO_OK, "hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": [1, 2]}},
    "units a list": {**OPEN_METEO_OK, "hourly_units": [1, 2]},
    "a JSON list": [1, 2, 3],
    "JSON null": None,
    "error object": {"error": True, "reason": "Parameter 'hourly' is invalid"},
}
STOOQ_SHAPES = {
    "JSON instead of CSV": b'{"error": "not csv"}',
    "wrong header": b"When,Price\n2024-01-02,1\n",
    "limit notice": b"Exceeded the daily hits limit",
    "binary": b"\x00\x01\x02\xff\xfe",
}


def shape_cases() -> list[Case]:
    cases = []
    for name, payload in WRONG_SHAPES.items():
        def run(tmp, server, name=name, payload=payload):  # noqa: ANN001, ANN202
            server.bodies[f"om{abs(hash(name))}"] = json.dumps(payload).encode()
            _fetch(_open_meteo(f"{server.url}/body-om{abs(hash(name))}"))
        cases.append(Case(f"open_meteo answer: {name}", "input", run, must_say="weather/berlin", bound=15.0))
    for name, body in STOOQ_SHAPES.items():
        def run(tmp, server, name=name, body=body):  # noqa: ANN001, ANN202
            server.bodies[f"st{abs(hash(name))}"] = body
            _fetch(_stooq(f"{server.url}/body-st{abs(hash(name))}"))
        cases.append(Case(f"stooq answer: {name}", "input", run, must_say="stock/AAPL", bound=15.0))

    def out_of_range_rows(tmp, server):  # noqa: ANN001, ANN202 - rows quarantined with a reason, none lost silently
        server.bodies["years"] = json.dumps({**OPEN_METEO_OK, "hourly": {
            "time": ["0001-01-01T00:00", "9999-12-31T23:00", "2024-01-01T00:00"], "temperature_2m": [1, 2, 3]}}).encode()
        frame = _fetch(_open_meteo(f"{server.url}/body-years"))
        noted = frame["_reason"].str.contains("outside the years").sum()
        return None if len(frame) == 3 and noted == 2 else f"{3 - len(frame)} rows dropped, {noted} noted"
    cases.append(Case("open_meteo answer: years 0001 and 9999 (rows kept, each with its reason)", "input",
                      out_of_range_rows, expect="success"))
    return cases


# --- Bad configs ---------------------------------------------------------------------------------

def config_cases() -> list[Case]:
    from forecasting.config.model import load_config, parse_config
    from tests.conftest import tiny_config_dict

    def binary(tmp, server):  # noqa: ANN001, ANN202
        path = tmp / "weights.yaml"
        path.write_bytes(b"\x80\x04\x95\x00\x00\xff\xfe binary")
        load_config(path)

    def directory(tmp, server):  # noqa: ANN001, ANN202
        (tmp / "configs.d").mkdir(exist_ok=True)
        load_config(tmp / "configs.d")

    def sized(**overrides):
        return lambda tmp, server: parse_config(tiny_config_dict(**overrides))

    return [
        Case("config: a binary file", "input", binary, must_say="weights.yaml"),
        Case("config: a directory", "input", directory, must_say="is a directory"),
        Case("config: lookback 100000000", "input", sized(window={"lookback": 100_000_000}), must_say="limits.max_lookback"),
        Case("config: hidden_size 1000000000", "input", sized(model={"hidden_size": 1_000_000_000}),
             must_say="limits.max_parameters"),
        Case("config: horizon 10000000", "input", sized(window={"horizon": 10_000_000}), must_say="limits.max_horizon"),
    ]


def as_of_cases() -> list[Case]:
    from forecasting.predict import as_of_timestamp

    return [
        Case("predict --as-of 2999", "input", lambda tmp, server: as_of_timestamp("2999"), must_say="2999"),
        Case("predict --as-of not-a-date", "input", lambda tmp, server: as_of_timestamp("yesterday-ish"), must_say="yesterday-ish"),
    ]


def quick_cases() -> list[Case]:
    """Everything that runs in-process in seconds (no training, no subprocesses)."""
    return network_cases() + shape_cases() + config_cases() + as_of_cases()
