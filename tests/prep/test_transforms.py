"""Target transforms: exact inversion through scaling, and clear errors."""

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.errors import ForecastingError
from forecasting.model.lightning import WindowBatches
from forecasting.prep import transforms
from forecasting.prep.scaling import SeriesScaler
from forecasting.prep.windows import SeriesPanel, WindowIndex, WindowSpec, left_pad


def price_panel(n_series: int = 3, length: int = 80, seed: int = 0) -> SeriesPanel:
    """Geometric random walks at very different levels, like share prices."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        prices = (10.0 ** (i + 1)) * np.exp(np.cumsum(0.02 * rng.standard_normal(length)))
        frames.append(
            pd.DataFrame(
                {
                    "series_id": f"stock/S{i}",
                    "timestamp": pd.date_range("2024-01-01", periods=length, freq="D", tz="UTC"),
                    "target": prices,
                }
            )
        )
    return SeriesPanel.from_frame(pd.concat(frames, ignore_index=True))


@pytest.mark.parametrize("kind", ["none", "log", "difference", "log-return"])
def test_true_future_in_network_units_inverts_to_the_raw_future_exactly(kind):
    """What the network is trained to output for a window maps back to that window's raw targets."""
    panel = price_panel()
    lookback, horizon = 10, 6
    transformed = transforms.apply(panel, kind)
    scaler = SeriesScaler.fit(transformed, np.full(panel.n_series, 50))
    scaled = scaler.transform(transformed, dtype=np.float64)  # (n_points, 1)
    starts = np.array([panel.offsets[i] + s for i in range(panel.n_series) for s in (1, 30, 63)])  # lookback starts
    origin = starts + lookback - 1
    future_rows = origin[:, None] + 1 + np.arange(horizon)  # (B, H)
    series = np.searchsorted(panel.offsets, starts, side="right") - 1
    batches = WindowBatches(
        torch.from_numpy(scaled), WindowIndex(starts, series), WindowSpec(lookback, horizon),
        past_columns=[0], future_columns=[], codes=np.arange(panel.n_series), cumulative=transforms.is_cumulative(kind),
    )
    _, _, y, _ = batches.__getitems__(list(range(len(starts))))
    target = y.numpy()  # (B, H) what training regresses on
    restored = transforms.invert(
        target, kind=kind, mean=scaler.mean[series, 0], scale=scaler.scale[series, 0], last=panel.values[origin, 0]
    )
    raw = panel.values[future_rows, 0]
    assert np.max(np.abs(restored - raw) / np.abs(raw)) < 1e-12


@pytest.mark.parametrize("kind", ["log", "difference", "log-return"])
def test_inversion_is_monotone_so_quantiles_stay_quantiles(kind):
    rng = np.random.default_rng(1)
    q = np.sort(rng.normal(size=(5, 4, 3)), axis=-1)  # (B, H, Q) sorted quantiles in network units
    out = transforms.invert(q, kind=kind, mean=rng.normal(size=5), scale=rng.uniform(0.1, 2, 5), last=rng.uniform(1, 9, 5))
    assert (np.diff(out, axis=-1) > 0).all()


def test_differencing_has_no_change_before_a_series_first_point_or_after_padding():
    panel, pad = left_pad(price_panel(n_series=2, length=5), 7, pd.tseries.frequencies.to_offset("D"))
    z = transforms.apply(panel, "difference").values[:, 0]
    first_real = panel.offsets[:-1] + pad
    assert np.isnan(z[first_real]).all()  # nothing observed before them
    assert np.isnan(z[: pad[0]]).all()  # padding stays padding
    real = np.setdiff1d(np.flatnonzero(~np.isnan(panel.values[:, 0])), first_real)
    assert np.allclose(z[real], panel.values[real, 0] - panel.values[real - 1, 0])


def test_log_of_non_positive_targets_names_every_series_and_the_first_bad_time():
    panel = price_panel(n_series=3)
    values = panel.values.copy()
    values[panel.offsets[0] + 4, 0] = 0.0
    values[panel.offsets[2] + 7, 0] = -3.5
    bad = panel.with_values(values)
    for kind in ("log", "log-return"):
        with pytest.raises(ForecastingError) as err:
            transforms.apply(bad, kind)
        message = str(err.value)
        assert f"'{kind}' needs positive targets" in message
        assert "series 'stock/S0' has 1 target value(s) <= 0, the first 0.0 at 2024-01-05T00:00:00Z" in message
        assert "series 'stock/S2' has 1 target value(s) <= 0, the first -3.5 at 2024-01-08T00:00:00Z" in message
        assert "stock/S1" not in message
    assert transforms.apply(bad, "difference") is not bad  # differencing takes any sign


def test_unknown_transform_is_a_clear_error():
    with pytest.raises(ForecastingError, match=r"unknown target transform 'sqrt'"):
        transforms.apply(price_panel(), "sqrt")
