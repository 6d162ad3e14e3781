"""Window index, splits and batching: checked against a naive per-start reference."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.errors import ForecastingError
from forecasting.model.lightning import WindowBatches, WindowDataModule
from forecasting.prep.windows import (
    SeriesPanel,
    SplitBounds,
    WindowSpec,
    build_index,
    chronological_split,
    USAGES,
    gather,
    left_pad,
    needed_length,
    part_size,
    plan_split,
    split_padding,
    split_summary,
    split_usage,
)


def make_frame(lengths: dict[str, int], covariates: tuple[str, ...] = ("humidity",), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for sid, n in lengths.items():
        part = pd.DataFrame(
            {
                "series_id": sid,
                "timestamp": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
                "target": rng.normal(100.0, 10.0, n),
            }
        )
        for c in covariates:
            part[c] = rng.normal(0.0, 1.0, n)
        parts.append(part)
    return pd.concat(parts, ignore_index=True).sort_values(["series_id", "timestamp"], ignore_index=True)


def make_panel(lengths: dict[str, int], covariates: tuple[str, ...] = ("humidity",)) -> SeriesPanel:
    return SeriesPanel.from_frame(make_frame(lengths, covariates), covariates)


def reference_windows(panel, spec, bounds, part, stride, max_windows):
    """Every start checked one by one: the definition, not the arithmetic."""
    out = []
    for i, n in enumerate(panel.lengths):
        allowed = []
        for s in range(n - spec.length + 1):
            target_lo, end = s + spec.lookback, s + spec.length
            if part == "train":
                ok = end <= bounds.train_end[i]
            elif part == "val":
                ok = target_lo >= bounds.train_end[i] and end <= bounds.val_end[i]
            elif part == "test":
                ok = target_lo >= bounds.val_end[i]
            else:
                ok = True
            if ok:
                allowed.append(s)
        kept = [s for s in allowed if (allowed[-1] - s) % stride == 0] if allowed else []
        if max_windows is not None:
            kept = kept[-max_windows:]
        out.extend((panel.offsets[i] + s, i) for s in kept)
    return out


LENGTHS = {"stock/AAPL": 57, "stock/FB": 20, "weather/berlin": 33, "weather/paris": 16}


@pytest.fixture(scope="module")
def panel4() -> SeriesPanel:
    return make_panel(LENGTHS)


@pytest.mark.parametrize("lookback,horizon,stride", [(3, 2, 1), (5, 1, 2), (4, 3, 3), (1, 1, 1), (2, 4, 5)])
@pytest.mark.parametrize("fractions", [(0.2, 0.1), (0.0, 0.15), (0.1, 0.0)])
def test_index_matches_reference(panel4, lookback, horizon, stride, fractions):
    spec = WindowSpec(lookback, horizon, stride)
    bounds = chronological_split(panel4, spec, val_fraction=fractions[0], test_fraction=fractions[1])
    for part in ("train", "val", "test", "all"):
        for override in (None, 4):
            for max_windows in (None, 2):
                index = build_index(panel4, spec, bounds, part, stride=override, max_windows_per_series=max_windows)
                expected = reference_windows(panel4, spec, bounds, part, override or stride, max_windows)
                got = list(zip(index.starts.tolist(), index.series.tolist()))
                assert got == [(int(s), i) for s, i in expected], (part, override, max_windows)
                assert index.starts.dtype == np.int64 and index.series.dtype == np.int64


def test_empty_parts_have_no_windows():
    panel = make_panel(LENGTHS)
    spec = WindowSpec(4, 2)
    no_test = chronological_split(panel, spec, val_fraction=0.2, test_fraction=0.0)
    no_val = chronological_split(panel, spec, val_fraction=0.0, test_fraction=0.2)
    assert len(build_index(panel, spec, no_test, "test")) == 0
    assert len(build_index(panel, spec, no_val, "val")) == 0
    assert np.array_equal(no_test.val_end, panel.lengths)
    assert np.array_equal(no_val.train_end, no_val.val_end)


def test_split_sizes():
    panel = make_panel({"a": 100, "b": 30})
    bounds = chronological_split(panel, WindowSpec(10, 5), val_fraction=0.2, test_fraction=0.1)
    # a: val round(20)=20, test round(10)=10; b: val round(6)=6, test max(5, round(3))=5
    assert bounds.train_end.tolist() == [70, 19]
    assert bounds.val_end.tolist() == [90, 25]


def test_last_train_window_ends_at_train_end():
    panel = make_panel(LENGTHS)
    spec = WindowSpec(5, 3, stride=4)
    bounds = chronological_split(panel, spec, val_fraction=0.2, test_fraction=0.2)
    index = build_index(panel, spec, bounds, "train")
    for i in range(panel.n_series):
        last_start = index.starts[index.series == i].max() - panel.offsets[i]
        assert last_start + spec.length == bounds.train_end[i]


def test_no_leakage_across_parts():
    panel = make_panel(LENGTHS)
    spec = WindowSpec(6, 3)
    bounds = chronological_split(panel, spec, val_fraction=0.25, test_fraction=0.2)
    local = {}
    for part in ("train", "val", "test"):
        index = build_index(panel, spec, bounds, part)
        assert len(index) > 0
        local[part] = (index.starts - panel.offsets[index.series], index.series)
    start, series = local["train"]
    assert np.all(start + spec.length - 1 < bounds.train_end[series])
    start, series = local["val"]
    assert np.all(start + spec.lookback >= bounds.train_end[series])
    assert np.all(start + spec.length <= bounds.val_end[series])
    start, series = local["test"]
    assert np.all(start + spec.lookback >= bounds.val_end[series])
    assert np.all(start + spec.length <= panel.lengths[series])


def test_series_too_short_for_their_parts_drop_test_then_validation():
    panel = make_panel({"stock/FB": 70, "stock/AAPL": 500, "weather/oslo": 66, "weather/rome": 74})
    spec = WindowSpec(60, 5)
    bounds = chronological_split(panel, spec, val_fraction=0.05, test_fraction=0.05)
    # AAPL: val 25, test 25 leave 450. FB 70: val 5 + test 5 would leave 60 < 65, val alone leaves 65.
    # rome 74: 64 < 65 with both, 69 with val. oslo 66: val would leave 61, so it trains on all 66.
    assert bounds.val_end.tolist() == [475, 70, 66, 74]
    assert bounds.train_end.tolist() == [450, 65, 66, 69]
    assert [USAGES[k] for k in split_usage(panel, bounds)] == ["train+val+test", "train+val", "train only", "train+val"]
    assert split_summary(panel, bounds) == "4 series: 1 train+val+test, 2 train+val, 1 train only"
    for part in ("train", "val", "test"):  # every window still lies inside its series' part
        index = build_index(panel, spec, bounds, part)
        assert index.series.tolist() == [s for s, _ in reference_windows_series(panel, spec, bounds, part)]
    assert build_index(panel, spec, bounds, "train").series.tolist().count(2) == 2  # oslo: starts 0 and 1


def reference_windows_series(panel, spec, bounds, part):
    return [(i, s) for s, i in reference_windows(panel, spec, bounds, part, spec.stride, None)]


def test_series_too_short_to_train_are_one_capped_error():
    lengths = {"stock/AAPL": 500, **{f"tiny/{k:02d}": 12 + k for k in range(14)}}
    panel = make_panel(lengths)
    spec = WindowSpec(20, 5)
    with pytest.raises(ForecastingError) as caught:
        chronological_split(panel, spec, val_fraction=0.1, test_fraction=0.1)
    message = str(caught.value)
    assert message.startswith("13 of 15 series are too short for one training window")
    assert "series 'tiny/00' has 12 points; lookback 20 + horizon 5 needs 25" in message
    assert message.count("  - series '") == 10
    assert message.endswith("  ... and 3 more")
    assert "tiny/13" not in message and "stock/AAPL" not in message
    # with padding the need is min_length + horizon observed points
    with pytest.raises(ForecastingError, match=r"(?s)3 of 15 series .*min_length 10 \+ horizon 5 needs 15") as caught:
        chronological_split(panel, spec, val_fraction=0.1, test_fraction=0.1, min_length=10, padding=np.zeros(15, np.int64))
    assert "tiny/02' has 14 points" in str(caught.value) and "tiny/03" not in str(caught.value)


def test_padding_makes_room_for_one_training_window():
    raw = make_panel({"long": 80, "mid": 30, "short": 16})
    spec = WindowSpec(20, 5)
    kw = dict(val_fraction=0.1, test_fraction=0.1, min_length=10)
    pad = split_padding(raw.lengths, spec, **kw)
    # long: 80 - 8 - 5 = 67 train rows; mid 30: 30 - 5 - 5 = 20 observed >= 15, padded to 25; short 16: train only, 9 rows.
    assert pad.tolist() == [0, 5, 9]
    panel, added = left_pad(raw, raw.lengths + pad, pd.tseries.frequencies.to_offset("h"))
    assert added.tolist() == pad.tolist()
    bounds = chronological_split(panel, spec, padding=pad, **kw)
    assert (bounds.train_end >= spec.length).all()
    assert split_summary(panel, bounds, pad) == "3 series: 2 train+val+test, 1 train only (2 left-padded)"
    with pytest.raises(ValueError, match="left-pad them"):
        chronological_split(raw, spec, **kw)  # not padded: the split says so rather than yield no window


def test_all_long_split_is_unchanged():
    """Where every series has room for both parts, the split is exactly the old rule: n - test, n - test - val."""
    rng = np.random.default_rng(1)
    spec = WindowSpec(12, 4)
    for fv, ft in [(0.1, 0.1), (0.2, 0.0), (0.0, 0.15), (0.3, 0.2)]:
        need = needed_length(spec, fv, ft)
        lengths = {f"s{i}": int(n) for i, n in enumerate(rng.integers(need, need + 200, 40))}
        panel = make_panel(lengths, covariates=())
        n = panel.lengths
        test = np.where(ft > 0, np.maximum(4, np.rint(ft * n)), 0)
        val = np.where(fv > 0, np.maximum(4, np.rint(fv * n)), 0)
        bounds = chronological_split(panel, spec, val_fraction=fv, test_fraction=ft)
        assert np.array_equal(bounds.val_end, n - test) and np.array_equal(bounds.train_end, n - test - val)
        full = "train+val+test" if fv and ft else ("train+val" if fv else "train+test")
        assert split_summary(panel, bounds) == f"40 series: 40 {full}"


def test_needed_length_accounts_for_growing_parts():
    spec = WindowSpec(10, 2)
    need = needed_length(spec, 0.3, 0.2)
    for n in range(need, need + 30):  # the stated length and every longer one keeps both parts
        plan = plan_split(np.array([n]), spec, val_fraction=0.3, test_fraction=0.2)
        assert plan.usage.tolist() == [0], n
    plan = plan_split(np.array([need - 1]), spec, val_fraction=0.3, test_fraction=0.2)
    assert plan.usage.tolist() != [0]


def test_origins_share_the_split_rule():
    from forecasting.evaluation import origins

    spec = WindowSpec(10, 3)
    for fv, ft in [(0.1, 0.1), (0.45, 0.45), (0.3, 0.0), (0.0, 0.2)]:
        assert origins.min_train_points(spec, fv, ft) == needed_length(spec, fv, ft)
    assert origins.part_size is part_size


def test_all_needs_no_bounds_and_skips_short_series():
    panel = make_panel({"a": 10, "b": 3})
    spec = WindowSpec(3, 2)
    index = build_index(panel, spec, None, "all")
    assert index.series.tolist() == [0] * 6
    with pytest.raises(ValueError, match="'train' needs split bounds"):
        build_index(panel, spec, None, "train")
    with pytest.raises(ValueError, match="'future'"):
        build_index(panel, spec, None, "future")  # type: ignore[arg-type]


@pytest.mark.parametrize("field,kwargs", [("lookback", (0, 1)), ("horizon", (2, -1)), ("stride", (2, 1, 0))])
def test_spec_validation_names_field_and_value(field, kwargs):
    with pytest.raises(ValueError, match=rf"{field} must be an integer >= 1, got -?\d"):
        WindowSpec(*kwargs)
    assert WindowSpec(3, 2).length == 5


def test_from_frame_layout():
    frame = make_frame({"b": 4, "a": 3}, covariates=("volume",))
    panel = SeriesPanel.from_frame(frame, ["volume"])
    assert panel.series_ids == ("a", "b")
    assert panel.features == ("target", "volume")
    assert panel.offsets.tolist() == [0, 3, 7]
    assert panel.lengths.tolist() == [3, 4]
    assert np.array_equal(panel.values, frame[["target", "volume"]].to_numpy())
    assert panel.timestamps.dtype == np.dtype("datetime64[ns]")
    assert panel.timestamps[0] == np.datetime64("2024-01-01T00:00:00", "ns")
    with pytest.raises(ForecastingError, match="lacks column"):
        SeriesPanel.from_frame(frame, ["humidity"])


def test_panel_select_and_with_values():
    panel = make_panel({"a": 5, "b": 7, "c": 4})
    picked = panel.select(["c", "a"])
    assert picked.series_ids == ("c", "a")
    assert np.array_equal(picked.series_values(0), panel.series_values(2))
    assert np.array_equal(picked.series_values(1), panel.series_values(0))
    with pytest.raises(ForecastingError, match="'zz'"):
        panel.select(["zz"])
    doubled = panel.with_values(panel.values * 2)
    assert doubled.offsets is panel.offsets and np.array_equal(doubled.values, panel.values * 2)
    with pytest.raises(ValueError, match="shape"):
        panel.with_values(panel.values[:-1])


def test_windows_are_views_and_index_is_small():
    n_points, spec = 200_000, WindowSpec(lookback=256, horizon=24)
    panel = SeriesPanel(
        series_ids=("long",),
        features=("target",),
        values=np.arange(n_points, dtype=np.float64)[:, None],
        offsets=np.array([0, n_points], dtype=np.int64),
        timestamps=np.arange(n_points).astype("datetime64[h]").astype("datetime64[ns]"),
    )
    assert np.shares_memory(panel.series_values(0), panel.values)
    tracemalloc.start()
    try:
        index = build_index(panel, spec, None, "all")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n_windows = n_points - spec.length + 1
    assert len(index) == n_windows
    assert index.starts.nbytes + index.series.nbytes == 16 * n_windows
    # A handful of int64 temporaries per window, far from n_windows * lookback floats.
    assert peak < 8 * 8 * n_windows < n_windows * spec.length * 8 / 4


def test_gather_equals_slicing():
    panel = make_panel(LENGTHS)
    spec = WindowSpec(4, 3, stride=2)
    index = build_index(panel, spec, None, "all")
    values = torch.from_numpy(panel.values)
    batch = gather(values, torch.from_numpy(index.starts), spec.length)
    assert batch.shape == (len(index), spec.length, 2)
    for j, s in enumerate(index.starts):
        assert torch.equal(batch[j], values[s : s + spec.length])


def window_batches(values: torch.Tensor, index, spec: WindowSpec, codes: np.ndarray, cls=WindowBatches) -> WindowBatches:
    """Training batches as ``fit`` builds them: target and covariate in the past block, the covariate ahead."""
    return cls(values, index, spec, past_columns=[0, 1], future_columns=[1], codes=codes, cumulative=False)


def test_batch_items_and_batches_agree():
    panel = make_panel(LENGTHS)
    spec = WindowSpec(5, 2)
    index = build_index(panel, spec, None, "all")
    values = torch.from_numpy(panel.values.astype(np.float32))
    codes = np.arange(1, panel.n_series + 1, dtype=np.int64)
    batches = window_batches(values, index, spec, codes)
    past, future, y, series = batches.__getitems__([0, 7, 3])
    assert past.shape == (3, 5, 2) and future.shape == (3, 2, 1) and y.shape == (3, 2) and series.shape == (3,)
    for b, j in enumerate([0, 7, 3]):
        pj, fj, yj, sj = batches[j]
        s = index.starts[j]
        assert torch.equal(pj, past[b]) and torch.equal(yj, y[b]) and sj == series[b] == codes[index.series[j]]
        assert torch.equal(pj, values[s : s + 5])
        assert torch.equal(fj, values[s + 5 : s + 7, 1:])
        assert torch.equal(yj, values[s + 5 : s + 7, 0])
    with pytest.raises(IndexError):
        batches[len(batches)]


class NoPerItem(WindowBatches):
    def __getitem__(self, i):
        raise AssertionError("DataLoader fetched a single window")


def test_dataloader_uses_getitems():
    panel = make_panel(LENGTHS)
    spec = WindowSpec(4, 3)
    bounds = chronological_split(panel, spec, val_fraction=0.2, test_fraction=0.1)
    index = build_index(panel, spec, bounds, "train")
    values = panel.values.astype(np.float32)
    values[:, 0] = np.arange(len(values))  # the target is its own row number, so a batch says where it came from
    values = torch.from_numpy(values)
    codes = np.arange(1, panel.n_series + 1, dtype=np.int64)
    dataset = window_batches(values, index, spec, codes, cls=NoPerItem)

    def run(seed):
        return list(WindowDataModule(dataset, None, batch_size=8, seed=seed).train_dataloader())

    batches = run(0)
    assert all(isinstance(b, tuple) and len(b) == 4 for b in batches)
    assert batches[0][0].shape == (8, 4, 2) and batches[0][2].shape == (8, 3) and batches[0][3].shape == (8,)
    starts = torch.cat([past[:, 0, 0] for past, *_ in batches]).long()
    assert sorted(starts.tolist()) == sorted(index.starts.tolist())  # every window exactly once
    assert starts.tolist() != index.starts.tolist()  # shuffled
    for past, _, y, series in batches:
        s = past[:, 0, 0].long()
        assert torch.equal(past, gather(values, s, 4))
        assert torch.equal(y, s[:, None] + 4 + torch.arange(3))  # targets right after the lookback
        assert torch.equal(series, torch.from_numpy(codes[index.series[np.searchsorted(index.starts, s.numpy())]]))
    again = run(0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))  # seeded generator: reproducible


def test_batches_reject_index_past_values():
    spec = WindowSpec(3, 2)
    index = build_index(make_panel({"a": 10}), spec, None, "all")
    with pytest.raises(ValueError, match="runs past"):
        window_batches(torch.zeros(8, 2), index, spec, np.ones(1, np.int64))


def test_split_bounds_shape_checked():
    panel = make_panel({"a": 20, "b": 20})
    bad = SplitBounds(train_end=np.array([10]), val_end=np.array([15]))
    with pytest.raises(ValueError, match="cover 1 series; the panel has 2"):
        build_index(panel, WindowSpec(3, 2), bad, "train")
