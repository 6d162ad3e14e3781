"""The fast (forked) training path where issue 18 extended it: padded short series and target transforms.

Exactness is claimed in one sense only, the one the plain forked path has: window ``j`` of a chunk
is forecast as ``forward`` forecasts the masked chunk's first ``lookback + j * stride`` steps, so
the forked loss and its gradients are those of window-by-window training on those inputs. Each
claim is checked in float64 and by ``gradcheck`` on a tiny network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.func import functional_call

from forecasting.model.lightning import ChunkBatches, Padding, WindowBatches, mask_prefix
from forecasting.model.network import ForecastLoss, RecurrentForecaster
from forecasting.prep import transforms
from forecasting.prep.windows import SeriesPanel, WindowIndex, WindowSpec

LOOKBACK, K, STRIDE = 6, 4, 1


def _masked_net(anchor: str = "delta", **kwargs) -> RecurrentForecaster:
    """float64, 3 past features: target, a data covariate, the observed mask (last, as InputLayout puts it)."""
    torch.manual_seed(11)
    options = {"hidden_size": 5, "num_layers": 2, "lookback": LOOKBACK, **kwargs}
    net = RecurrentForecaster(3, 4, anchor=anchor, **options).double()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)  # off the zero init, so head and skip matter
    return net.eval()


def _chunk(chunks: int = 3, stride: int = STRIDE) -> torch.Tensor:
    past = torch.randn(chunks, LOOKBACK + (K - 1) * stride, 3, dtype=torch.float64)
    past[..., 0] = past[..., 0] * 2 + 10  # a level far from 0
    past[..., -1] = 1.0  # every step observed before masking
    return past


@pytest.mark.parametrize("fill_first", [True, False], ids=["levels", "differencing"])
@pytest.mark.parametrize("stride", [1, 2])
def test_a_masked_chunk_pads_each_window_as_left_pad_would(fill_first, stride):
    """Every window of a chosen chunk reads a padded prefix of its own lookback: mask 0, covariate 0, the
    first kept target (0 for differencing), the prefix shrinking by the stride from window to window."""
    torch.manual_seed(1)
    past = _chunk(chunks=64, stride=stride)
    padding = Padding(min_length=2, fraction=0.5, covariates=(1,), fill_first=fill_first)
    out = mask_prefix(past, padding, lookback=LOOKBACK)
    masked = out[..., -1] == 0  # (C, steps)
    chosen = masked.any(dim=1)
    assert 0.25 < chosen.double().mean() < 0.75
    assert (masked[:, :-1] >= masked[:, 1:]).all()  # a prefix of the chunk
    assert not masked[:, LOOKBACK - padding.min_length :].any()  # the first window keeps min_length steps
    for c in torch.nonzero(chosen).flatten():
        first = int((~masked[c]).nonzero()[0])  # the chunk's first observed step
        fill = past[c, first, 0] if fill_first else 0.0
        for j in range(K):
            window = out[c, j * stride : j * stride + LOOKBACK]
            pad = max(0, first - j * stride)  # this window's padded steps
            assert torch.all(window[:pad, 0] == fill) and torch.all(window[:pad, 1:] == 0)
            assert torch.equal(window[pad:], past[c, j * stride + pad : j * stride + LOOKBACK])
    assert torch.equal(out[~chosen], past[~chosen])


@pytest.mark.parametrize("anchor", ["delta", "none"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padded_forked_forecasts_equal_the_window_forward_float64(anchor, cell):
    """Masked chunk, forked: window j = forward() on the masked chunk's first lookback + j steps, to 1e-10."""
    net = _masked_net(anchor=anchor, cell=cell)
    torch.manual_seed(2)
    past = mask_prefix(_chunk(), Padding(2, 1.0, (1,), True), lookback=LOOKBACK)  # every chunk padded
    assert (past[..., -1] == 0).any(dim=1).all()
    forked = net.forward_forked(past, lookback=LOOKBACK, stride=STRIDE)
    for j in range(K):
        alone = net(past[:, : LOOKBACK + j * STRIDE])
        torch.testing.assert_close(forked[:, j], alone, rtol=0, atol=1e-10)
    if anchor == "delta":  # padding repeats the first kept value: the encoder reads "no change" there
        seen = []
        hook = net.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0]))
        net.forward_forked(past, lookback=LOOKBACK)
        hook.remove()
        assert torch.all(seen[0][..., 0][past[..., -1] == 0] == 0)


def test_gradcheck_padded_forked_loss_float64():
    """Gradients of the masked, forked loss (the path padded training takes) match finite differences."""
    net = _masked_net(hidden_size=3, quantiles=(0.1, 0.5, 0.9))
    loss_fn = ForecastLoss(net.outputs, net.quantiles)
    names = [n for n, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    past = _chunk(chunks=2).requires_grad_(True)
    y = torch.randn(2, K, 4, dtype=torch.float64)
    padding = Padding(2, 1.0, (1,), True)

    def loss(past, *weights):
        with torch.random.fork_rng():  # the same mask at every evaluation
            torch.manual_seed(5)
            masked = mask_prefix(past, padding, lookback=LOOKBACK)
        net.forward, forward = net.forward_forked, net.forward  # functional_call calls forward
        try:
            out = functional_call(net, dict(zip(names, weights, strict=True)), (masked,), {"lookback": LOOKBACK}, strict=False)
        finally:
            net.forward = forward
        return loss_fn(out, y)

    assert torch.autograd.gradcheck(loss, (past, *params), eps=1e-6, atol=1e-6, rtol=1e-5)


def _panel(kind: str) -> tuple[torch.Tensor, WindowIndex, WindowSpec]:
    """Two positive series through ``transforms.apply``: the values training reads, and every window of them."""
    rng = np.random.default_rng(3)
    frames = []
    for i, n in enumerate((40, 33)):
        y = 20 + 5 * np.sin(np.arange(n) / 3) + rng.uniform(0, 1, n) + 10 * i
        frames.append(pd.DataFrame({
            "series_id": f"s{i}", "timestamp": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "target": y, "observed": 1.0,
        }))
    panel = transforms.apply(SeriesPanel.from_frame(pd.concat(frames, ignore_index=True), ("observed",)), kind)
    values = torch.from_numpy(np.nan_to_num(panel.values.astype(np.float64)))
    spec = WindowSpec(LOOKBACK, 4, 1)
    starts, series = [], []
    for i in range(len(panel.series_ids)):
        first = int(panel.offsets[i]) + (1 if transforms.is_cumulative(kind) else 0)  # the first change is NaN
        last = int(panel.offsets[i + 1]) - spec.length
        starts += list(range(first, last + 1))
        series += [i] * (last + 1 - first)
    return values, WindowIndex(np.array(starts, dtype=np.int64), np.array(series, dtype=np.int64)), spec


@pytest.mark.parametrize("kind", ["none", "log", "difference", "log-return"])
def test_forked_training_equals_window_training_for_every_transform(kind):
    """Per transform, the forked chunks' loss and gradients equal window-by-window training on the same windows,
    each read with the older steps its chunk gave it (the network: delta for levels, none for differencing,
    as anchor 'auto' resolves). log: the encoder reads changes of log values; log-return and difference: it
    reads changes already, and each window's target is the cumulative change since its own origin."""
    cumulative = transforms.is_cumulative(kind)
    net = _masked_net(anchor="none" if cumulative else "delta", hidden_size=4)
    loss_fn = ForecastLoss(net.outputs, net.quantiles)
    values, index, spec = _panel(kind)
    kw = dict(past_columns=[0, 1, 1], future_columns=[], codes=np.zeros(2, np.int64), cumulative=cumulative)
    chunks = ChunkBatches(values, index, spec, windows=K, **kw)
    windows = WindowBatches(values, index, spec, **kw)
    past_c, _, y_c, _, weight = chunks.__getitems__(list(range(len(chunks))))
    past_w, _, y_w, _ = windows.__getitems__(list(range(len(index))))

    forked = loss_fn(net.forward_forked(past_c, lookback=LOOKBACK), y_c, weight)
    grads_forked = torch.autograd.grad(forked, list(net.parameters()))
    # Window by window on the same windows, each with the older steps its chunk read before it.
    inputs, targets = [], []
    for c in range(len(chunks)):
        for j in range(int(weight[c].sum())):
            prefix = past_c[c, : LOOKBACK + j]
            assert torch.equal(prefix[-LOOKBACK + 1 :], past_w[len(targets)][1:])  # the window's own lookback ...
            assert torch.equal(y_c[c, j], y_w[len(targets)])  # ... and its target, as the standard path reads them
            if cumulative:
                assert past_w[len(targets)][0, 0] == 0.0  # the window path's first change is "no change"
            inputs.append(prefix)
            targets.append(y_c[c, j])
    assert len(targets) == len(index)
    preds = torch.cat([net(x[None]) for x in inputs])
    standard = loss_fn(preds, torch.stack(targets))
    grads_standard = torch.autograd.grad(standard, list(net.parameters()))
    torch.testing.assert_close(forked, standard, rtol=1e-10, atol=1e-12)
    for a, b in zip(grads_forked, grads_standard, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
