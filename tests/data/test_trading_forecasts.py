"""A market holiday never becomes a forecast timestamp (or a NaN target later) on the XNYS calendar."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from forecasting.data.calendar import Grid, offset_for

pytestmark = pytest.mark.slow  # trains the session's tiny model


def test_forecast_steps_on_the_trading_calendar_skip_holidays() -> None:
    origin = pd.Timestamp("2012-07-03", tz="UTC")
    steps = [origin + offset_for("XNYS") * h for h in range(1, 6)]
    assert [s.strftime("%m-%d") for s in steps] == ["07-05", "07-06", "07-09", "07-10", "07-11"]
    plain = [origin + pd.tseries.frequencies.to_offset("B") * h for h in range(1, 6)]
    assert pd.Timestamp("2012-07-04", tz="UTC") in plain  # what freq "B" would forecast: a closed market


def test_forecasts_of_a_stock_series_land_on_sessions_only(tiny_fit) -> None:
    from forecasting.predict import forecast

    _, _, result = tiny_fit
    trained = getattr(result, "forecaster", result)  # fit returns the forecaster, or a result holding it
    data = trained.config.data.model_copy(update={"freq": "XNYS"})
    stock = dataclasses.replace(trained, config=trained.config.model_copy(update={"data": data}))
    config = stock.config
    days = Grid("XNYS").points(pd.Timestamp("2012-04-02", tz="UTC"), pd.Timestamp("2012-07-03", tz="UTC"))
    history = pd.DataFrame({"series_id": "stock/AAPL", "timestamp": days, "target": np.linspace(18.0, 19.0, len(days))})

    out = forecast(stock, history.tail(config.window.lookback))

    assert out["origin"].unique().tolist() == [pd.Timestamp("2012-07-03", tz="UTC")]
    assert Grid("XNYS").on_grid(pd.DatetimeIndex(out["timestamp"])).all()
    assert pd.Timestamp("2012-07-04", tz="UTC") not in set(out["timestamp"])
    assert np.isfinite(out["mean"]).all()
