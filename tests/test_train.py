import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.config.model import parse_config
from forecasting.errors import ConfigError, DataValidationError, ForecastingError
from forecasting.train import fit, resolve_precision
from tests.conftest import synthetic_frame, tiny_config_dict


def test_training_loss_falls_on_a_learnable_series(tiny_fit):
    _, _, result = tiny_fit
    losses = [e["train_loss"] for e in result.forecaster.history]
    assert len(losses) >= 2
    assert losses[-1] < 0.5 * losses[0]


def test_metrics_are_in_original_units_and_finite(tiny_fit):
    _, frame, result = tiny_fit
    m = result.forecaster.metrics
    for key in ("val_mae", "val_rmse", "val_baseline_mae", "test_mae"):
        assert np.isfinite(m[key]), key
    # The series swing by +-3 around levels 10..30: errors in scaled units would be tiny fractions.
    assert 0.01 < m["val_mae"] < 3.0
    assert m["val_rmse"] >= m["val_mae"]
    # The validation forecasts really are in original units.
    assert abs(result.validation.actual.mean() - frame["target"].mean()) < 5.0


def test_seeded_training_is_reproducible(tiny_fit):
    config, frame, result = tiny_fit
    again = fit(config, frame)
    for key, value in result.forecaster.state_dict.items():
        assert torch.equal(value, again.forecaster.state_dict[key]), key


def test_held_out_windows_score_only_later_targets(tiny_fit):
    config, frame, result = tiny_fit
    n = frame.groupby("series_id").size().iloc[0]
    windows = result.forecaster.meta["windows"]
    val_points = max(config.window.horizon, round(config.split.val_fraction * n))
    assert windows["val"] == 3 * (val_points - config.window.horizon + 1)


def test_missing_covariate_is_one_clear_error():
    config = parse_config(tiny_config_dict(data={"covariates": ["humidity", "pressure"]}))
    with pytest.raises(ForecastingError) as err:
        fit(config, synthetic_frame())
    assert "['humidity', 'pressure']" in str(err.value)
    assert "tiny-synthetic" in str(err.value)


def test_short_series_and_nan_targets_are_named():
    config = parse_config(tiny_config_dict())
    frame = synthetic_frame(n_series=2, length=400)
    short = synthetic_frame(n_series=1, length=50).assign(series_id="synthetic/short")
    with pytest.raises(ForecastingError, match=r"series 'synthetic/short' has 50 points"):
        fit(config, pd.concat([frame, short]))
    frame.loc[5, "target"] = np.nan
    with pytest.raises(DataValidationError, match=r"synthetic/s0.*NaN"):
        fit(config, frame)


def _cpuinfo_flags() -> set[str]:
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo to check the CPU's flags against")
    line = next(x for x in info.read_text().splitlines() if x.startswith("flags"))
    return set(line.split(":", 1)[1].split())


def test_precision_auto_is_bf16_only_where_the_hardware_computes_it():
    """'auto' is bf16-mixed on a CPU whose flags (read from /proc/cpuinfo, not from torch) include
    AVX512-BF16 or AMX, float32 on any other CPU; explicit settings pass through."""
    flags = _cpuinfo_flags()
    native = bool({"avx512_bf16", "amx_bf16"} & flags)
    on_cpu = "bf16-mixed" if native else "32-true"
    assert resolve_precision(parse_config(tiny_config_dict(training={"accelerator": "cpu"}))) == on_cpu
    on_gpu = "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"
    assert resolve_precision(parse_config(tiny_config_dict())) == (on_gpu if torch.cuda.is_available() else on_cpu)
    explicit = parse_config(tiny_config_dict(training={"precision": "64-true"}))
    assert resolve_precision(explicit) == "64-true"


def _tiny(**overrides) -> dict:
    """tiny_config_dict on one thread (the test machine is shared) with fewer epochs."""
    raw = tiny_config_dict(**overrides)
    raw["training"] = {"max_epochs": 2, "num_threads": 1, **raw["training"], **overrides.get("training", {})}
    return raw


@pytest.fixture(scope="module")
def quantile_fit():
    config = parse_config(_tiny(model={"quantiles": [0.1, 0.5, 0.9]}, training={"max_epochs": 3}))
    return config, fit(config, synthetic_frame())


def test_quantile_model_reports_coverage_next_to_nominal(quantile_fit):
    config, result = quantile_fit
    m = result.forecaster.metrics
    assert m["val_coverage_80_nominal"] == pytest.approx(0.8)
    assert 0.0 <= m["val_coverage_80"] <= 1.0 and 0.0 <= m["test_coverage_80"] <= 1.0
    assert m["val_pinball"] > 0
    v = result.validation
    assert set(v.quantiles) == {"q0.1", "q0.5", "q0.9"}
    assert np.array_equal(v.predicted, v.quantiles["q0.5"])  # the point forecast is the median
    assert (v.quantiles["q0.1"] <= v.quantiles["q0.5"]).all() and (v.quantiles["q0.5"] <= v.quantiles["q0.9"]).all()
    inside = (v.actual >= v.quantiles["q0.1"]) & (v.actual <= v.quantiles["q0.9"])
    assert m["val_coverage_80"] == pytest.approx(inside.mean())
    losses = [e["train_loss"] for e in result.forecaster.history]
    assert losses[-1] < losses[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        {"model": {"cell": "gru", "bidirectional": True, "head": "autoregressive"}, "data": {"calendar": ["hour_of_day"]}},
        {"model": {"cell": "rnn", "embedding_dim": 3, "quantiles": [0.25, 0.5, 0.75], "point": "mean"}, "data": {"target_transform": "log"}},
        {"model": {"num_layers": 1}, "data": {"target_transform": "log-return"}, "window": {"min_length": 24}},
        {"model": {"head": "autoregressive"}, "data": {"target_transform": "difference", "future_covariates": ["promo"]}},
    ],
    ids=["gru-bi-seq2seq-calendar", "rnn-embedding-mean+quantiles-log", "padded-logreturn", "seq2seq-difference-future"],
)
def test_every_variant_trains_and_scores_in_original_units(overrides):
    config = parse_config(_tiny(**overrides))
    frame = synthetic_frame(covariates=("promo",))
    result = fit(config, frame)
    m = result.forecaster.metrics
    # Levels 10, 20, 30 +- 3: a forecast in scaled or transformed units would be off by about the level.
    assert 0.005 < m["val_mae"] < 3.0, m
    assert np.isfinite(result.test.predicted).all()
    assert abs(result.validation.predicted.mean() - result.validation.actual.mean()) < 2.0
    net = result.forecaster.network()
    assert net.cell == config.model.cell and net.head_kind == config.model.head


def test_padded_training_takes_short_series_and_names_those_too_short():
    config = parse_config(_tiny(window={"min_length": 24}))
    frame = synthetic_frame(n_series=2, length=400)
    # min_length 24 + horizon 12 + validation 12 + test 12: 60 points keep both parts;
    # 40 points train only (24 + 12 = 36 is the least a series can train on), left-padded to one window.
    ok = synthetic_frame(n_series=1, length=60, seed=3).assign(series_id="synthetic/new")
    small = synthetic_frame(n_series=1, length=40, seed=5).assign(series_id="synthetic/small")
    result = fit(config, pd.concat([frame, ok, small]))
    padded = result.forecaster.meta["padded_series"]
    assert list(padded) == ["synthetic/new", "synthetic/small"] and padded["synthetic/new"]["points"] == 60
    assert padded["synthetic/small"] == {"points": 40, "padding": 20}  # 48 + 12 rows make one training window
    assert 2 in result.validation.series  # the short series is scored too (its series index is 2)
    assert 3 not in result.validation.series and 3 not in result.test.series
    assert result.split_summary == "4 series: 3 train+val+test, 1 train only (2 left-padded)"
    too_short = [
        synthetic_frame(n_series=1, length=n, seed=4).assign(series_id=f"synthetic/short{n}") for n in (35, 30)
    ]
    with pytest.raises(ForecastingError) as err:
        fit(config, pd.concat([frame, *too_short]))
    message = str(err.value)
    assert "2 of 4 series are too short for one training window" in message
    assert "series 'synthetic/short35' has 35 points; min_length 24 + horizon 12 needs 36" in message
    assert "series 'synthetic/short30' has 30 points" in message


def test_mask_prefix_pads_like_left_pad():
    import torch

    from forecasting.model.lightning import Padding, mask_prefix

    torch.manual_seed(0)
    past = torch.randn(200, 10, 4)
    past[..., -1] = 1.0  # observed mask column
    out = mask_prefix(past, Padding(min_length=3, fraction=0.5, covariates=(1,), fill_first=True))
    masked = out[..., -1] == 0  # (B, lookback)
    chosen = masked.any(dim=1)
    assert 0.3 < chosen.float().mean() < 0.7
    kept = (~masked).sum(dim=1)
    assert int(kept.min()) >= 3 and int(kept[chosen].max()) <= 9
    assert (masked[:, :-1] >= masked[:, 1:]).all()  # padding is a prefix
    for b in torch.nonzero(chosen).flatten()[:20]:
        first = 10 - int(kept[b])
        assert torch.all(out[b, :first, 0] == past[b, first, 0])  # target: the first kept value
        assert torch.all(out[b, :first, 1] == 0) and torch.equal(out[b, :first, 2], past[b, :first, 2])
        assert torch.equal(out[b, first:], past[b, first:])
    unchosen = torch.nonzero(~chosen).flatten()
    assert torch.equal(out[unchosen], past[unchosen])


def test_pinned_memory_only_on_cuda():
    import torch

    from forecasting.model.lightning import WindowBatches, WindowDataModule
    from forecasting.train import uses_cuda
    from forecasting.prep.windows import WindowIndex, WindowSpec

    config = parse_config(tiny_config_dict())
    assert uses_cuda(config) == torch.cuda.is_available()
    assert not uses_cuda(parse_config(tiny_config_dict(training={"accelerator": "cpu"})))
    index = WindowIndex(np.arange(5, dtype=np.int64), np.zeros(5, dtype=np.int64))
    batches = WindowBatches(
        torch.zeros(20, 1), index, WindowSpec(3, 2), past_columns=[0], future_columns=[], codes=np.ones(1, np.int64), cumulative=False
    )
    for pin in (False, True):
        data = WindowDataModule(batches, batches, batch_size=2, seed=0, pin_memory=pin)
        assert data.train_dataloader().pin_memory is pin and data.val_dataloader().pin_memory is pin


def test_network_code_makes_no_device_calls():
    """The forward pass creates tensors only from its inputs: it runs on the meta device (as on any GPU)."""
    import torch

    from forecasting.model.forecaster import build_network

    config = parse_config(
        _tiny(model={"head": "autoregressive", "quantiles": [0.1, 0.5, 0.9], "embedding_dim": 2}, data={"calendar": ["hour_of_day"]}, window={"min_length": 24})
    )
    with torch.device("meta"):
        net = build_network(config, n_series=3)
        out = net(torch.randn(4, 48, 4), torch.randn(4, 12, 2), torch.tensor([0, 1, 2, 3]))
    assert out.device.type == "meta" and out.shape == (4, 12, 3)


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").environ.get("FORECASTING_DDP_TEST"), reason="opt-in: FORECASTING_DDP_TEST=1")
def test_two_process_gloo_ddp_trains_on_cpu():
    config = parse_config(_tiny(training={"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn", "max_epochs": 2}))
    result = fit(config, synthetic_frame())
    assert result.forecaster.meta["hardware"]["world_size"] == 2
    assert np.isfinite(result.forecaster.metrics["val_mae"])
    # The weights trained in the worker processes came back: the zero-initialised head moved.
    assert float(result.forecaster.state_dict["head.weight"].abs().sum()) > 0


def test_a_freq_that_does_not_match_the_data_is_named():
    config = parse_config(_tiny(data={"freq": "min"}))  # the synthetic data is hourly
    with pytest.raises(ForecastingError, match=r"no training window fits between the gaps of the 'min' grid .* does data.freq match"):
        fit(config, synthetic_frame())


@pytest.mark.parametrize(
    "overrides,windows",
    [
        ({"model": {"anchor": "none"}}, 8),  # forking_windows 'auto': batch 64 // 8
        ({"data": {"target_transform": "difference"}}, 8),  # anchor 'auto' resolves to none
        ({"model": {"anchor": "none", "embedding_dim": 2, "quantiles": [0.1, 0.5, 0.9]}, "data": {"calendar": ["hour_of_day"]}}, 8),
        ({"model": {"anchor": "none"}, "training": {"forking_windows": 32}}, 32),
        ({"model": {"anchor": "none"}, "training": {"batch_size": 16, "forking_windows": 32}}, 16),
        ({"model": {"anchor": "none"}, "training": {"batch_size": 512}}, 8),  # 'auto' stops at 8
        ({}, 8),  # anchor 'auto' resolves to delta
        ({"model": {"anchor": "last"}}, 1),
        ({"model": {"anchor": "none"}, "training": {"forking": "off"}}, 1),
        ({"model": {"anchor": "none", "bidirectional": True}}, 1),
        ({"model": {"anchor": "none", "head": "autoregressive"}}, 1),
        ({"data": {"target_transform": "log-return"}, "window": {"min_length": 24}}, 8),  # padded chunks fork
        ({"model": {"anchor": "delta"}}, 8),  # level-free like 'last', but its encoder inputs are shared
        ({"model": {"anchor": "delta", "head": "autoregressive"}}, 1),
        ({"training": {"batch_size": 8}}, 1),  # 'auto': one window per chunk
    ],
    ids=[
        "anchor-none", "difference", "embedding-quantiles-calendar", "32-windows", "batch-16", "batch-512", "auto",
        "anchor-last", "off", "bidirectional", "seq2seq", "padded", "anchor-delta", "delta-seq2seq", "batch-8",
    ],
)
def test_forking_is_chosen_exactly_where_the_network_allows_it(overrides, windows):
    from forecasting.model.forecaster import build_network
    from forecasting.train import resolve_forking

    raw = tiny_config_dict(**overrides)
    raw["training"] = {**raw["training"], "batch_size": 64, **overrides.get("training", {})}
    config = parse_config(raw)
    k, why = resolve_forking(config)
    assert k == windows, why
    if k > 1:  # the network agrees: forking is exact for it
        assert build_network(config, 3).fork_blocker() is None


def test_chunks_hold_exactly_the_windows_of_the_index():
    """Every window's target, future block and lookback sit in its chunk; chunks never span a gap or a series end."""
    from forecasting.model.lightning import ChunkBatches, WindowBatches, chunk_plan
    from forecasting.prep.windows import WindowIndex, WindowSpec

    spec = WindowSpec(lookback=5, horizon=3, stride=2)
    values = torch.randn(200, 3)
    # Series 0: rows 0..99, a gap drops the window at 20; series 1: rows 100..199.
    starts = np.r_[np.arange(0, 20, 2), np.arange(22, 60, 2), np.arange(100, 130, 2)].astype(np.int64)
    series = (starts >= 100).astype(np.int64)
    index = WindowIndex(starts, series)
    first, count, position = chunk_plan(index, spec.stride, 4)
    assert count.sum() == len(index) and count.max() == 4
    assert np.array_equal(starts[first], [0, 8, 16, 22, 30, 38, 46, 54, 100, 108, 116, 124])
    codes = np.array([7, 9], dtype=np.int64)
    kw = dict(past_columns=[0, 2], future_columns=[1], codes=codes, cumulative=False)
    chunks, windows = ChunkBatches(values, index, spec, windows=4, **kw), WindowBatches(values, index, spec, **kw)
    past_c, future_c, y_c, series_c, weight_c = chunks.__getitems__(list(range(len(chunks))))
    past_w, future_w, y_w, series_w = windows.__getitems__(list(range(len(index))))
    assert past_c.shape == (12, 5 + 3 * 2, 2) and future_c.shape == (12, 4, 3, 1) and weight_c.shape == (12, 4)
    chunk_of = np.repeat(np.arange(len(first)), count)
    for i in range(len(index)):
        c, j = chunk_of[i], position[i]
        assert weight_c[c, j] == 1.0 and series_c[c] == series_w[i]
        assert torch.equal(y_c[c, j], y_w[i]) and torch.equal(future_c[c, j], future_w[i])
        assert torch.equal(past_c[c, j * 2 : j * 2 + 5], past_w[i])
    assert float(weight_c.sum()) == len(index)


def test_delta_anchor_trains_forked_and_is_rejected_on_differenced_targets():
    config = parse_config(_tiny(model={"anchor": "delta"}, training={"max_epochs": 1, "forking_windows": 8}))
    result = fit(config, synthetic_frame())
    assert result.forecaster.meta["training_path"]["forked_windows"] == 8
    assert np.isfinite(result.forecaster.metrics["val_mae"])
    with pytest.raises(ConfigError, match="model.anchor: 'delta' with data.target_transform 'difference'"):
        parse_config(_tiny(model={"anchor": "delta"}, data={"target_transform": "difference"}))


def test_forked_training_is_reproducible_and_learns():
    config = parse_config(_tiny(model={"anchor": "none"}, training={"max_epochs": 3, "forking_windows": 8}))
    frame = synthetic_frame()
    first, again = fit(config, frame), fit(config, frame)
    assert first.forecaster.meta["training_path"]["forked_windows"] == 8
    for key, value in first.forecaster.state_dict.items():
        assert torch.equal(value, again.forecaster.state_dict[key]), key
    losses = [e["train_loss"] for e in first.forecaster.history]
    assert losses[-1] < 0.5 * losses[0]
    # Scored window by window in original units (levels 10..30 +- 3), as inference runs it.
    assert 0.005 < first.forecaster.metrics["val_mae"] < 3.0


def test_extra_callbacks_see_every_training_batch(tmp_path):
    """``fit(callbacks=...)`` hands the caller's Lightning callbacks to the Trainer, after fit's own."""
    import pytorch_lightning as pl

    class Count(pl.Callback):
        def __init__(self) -> None:
            self.batches, self.epochs = 0, 0

        def on_train_batch_end(self, *args) -> None:
            self.batches += 1

        def on_train_epoch_end(self, *args) -> None:
            self.epochs += 1

    config = parse_config(tiny_config_dict(training={"max_epochs": 2, "patience": 5}))
    counter = Count()
    result = fit(config, synthetic_frame(), checkpoint_dir=tmp_path, callbacks=[counter])
    batches_per_epoch = -(-result.forecaster.meta["windows"]["train"] // config.training.batch_size)
    assert counter.epochs == 2
    assert counter.batches == 2 * batches_per_epoch


class _Payload:
    """Unpickling this would write a marker file: what a swapped checkpoint could do with weights_only=False."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.write_text, (self.marker, "ran"))


def test_checkpoints_are_read_weights_only(tmp_path, monkeypatch):
    """Issue 19, row 12: fit reads its best checkpoint with weights_only=True; a checkpoint holding an
    object is refused with an error naming the file, and its payload never runs."""
    import forecasting.train as train_module
    from forecasting.train import load_checkpoint

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    config = parse_config(tiny_config_dict(training={"max_epochs": 1}))
    result = fit(config, synthetic_frame(n_series=1, length=200), checkpoint_dir=tmp_path)
    assert calls == [True] and result.forecaster.state_dict
    monkeypatch.setattr(torch, "load", real_load)

    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3, "loops": {"fit": {"n": 1}}}, good)
    assert load_checkpoint(good)["epoch"] == 3
    marker = tmp_path / "payload-ran"
    bad = tmp_path / "swapped.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": _Payload(marker)}, bad)
    with pytest.raises(ForecastingError, match=rf"checkpoint {bad} holds more than tensors and plain values"):
        train_module.load_checkpoint(bad)
    assert not marker.exists()


def test_checkpoint_folders_of_killed_fits_are_removed_by_the_next(tmp_path):
    import socket
    import subprocess
    import sys

    from forecasting.train import remove_orphaned_checkpoints

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    orphan = tmp_path / f"fit-{host}-{dead_pid}-abc"
    live = tmp_path / f"fit-{host}-{__import__('os').getpid()}-def"
    other_host = tmp_path / f"fit-elsewhere-{dead_pid}-ghi"
    for path in (orphan, live, other_host):
        path.mkdir()
        (path / "best.ckpt").write_bytes(b"x")
    assert remove_orphaned_checkpoints(tmp_path) == [orphan]
    assert not orphan.exists() and live.exists() and other_host.exists()
