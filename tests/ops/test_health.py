"""The health rules of ``forecast status``, on plain entries (no registry, no server)."""

from __future__ import annotations

from forecasting.ops.health import model_problems


def _entry(**changes):
    entry = {
        "champion": {"version": "3"},
        "backtest": {"model": 0.8, "loses_to": []},
        "monitoring": {"alert": False, "alerts": []},
        "last_forecast": {"origin": "2024-03-10T00:00:00+00:00"},
        "ingest": {"newest": "2024-03-10T00:00:00+00:00"},
    }
    return {**entry, **changes}


def test_a_champion_with_fresh_forecasts_and_no_alert_needs_nobody():
    assert model_problems(_entry()) == []


def test_each_rule_names_what_needs_a_person_and_all_are_listed_at_once():
    entry = _entry(
        backtest={"model": 1.3, "loses_to": ["seasonal_naive", "ets"]},
        monitoring={"alert": True, "alerts": ["coverage 0.41 < 0.7"]},
        ingest={"newest": "2024-03-12T00:00:00+00:00"},
    )
    problems = model_problems(entry)
    assert problems == [
        "champion's backtest MASE 1.3 does not beat seasonal_naive, ets",
        "monitoring alert: coverage 0.41 < 0.7",
        "last forecast is from origin 2024-03-10T00:00:00+00:00; the data reaches 2024-03-12T00:00:00+00:00",
    ]


def test_no_champion_and_no_forecast():
    (only,) = model_problems(_entry(champion=None, last_forecast=None))  # no champion: no forecast expected yet
    assert only.startswith("no champion")
    assert model_problems(_entry(last_forecast=None)) == ["no forecast yet: run `forecast predict`"]
