"""The network against float64 references of the textbook equations, and gradcheck of network + loss."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from forecasting.model.network import ForecastLoss, RecurrentForecaster, chrono_init, pinball_loss


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def textbook_lstm_layer(x: np.ndarray, w: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """One LSTM layer exactly as written in the issue, on [h, x]:

    f = s(W_f.[h, x] + b_f), i = s(W_i.[h, x] + b_i), c~ = tanh(W_c.[h, x] + b_c),
    c_t = f * c_{t-1} + i * c~, o = s(W_o.[h, x] + b_o), h_t = o * tanh(c_t).
    Returns every h_t (batch, steps, hidden), and the last h and c.
    """
    batch, steps, _ = x.shape
    hidden = b["f"].shape[0]
    h, c = np.zeros((batch, hidden)), np.zeros((batch, hidden))
    out = []
    for t in range(steps):
        hx = np.concatenate([h, x[:, t]], axis=1)  # (batch, hidden + inputs)
        f = _sigmoid(hx @ w["f"].T + b["f"])
        i = _sigmoid(hx @ w["i"].T + b["i"])
        c_tilde = np.tanh(hx @ w["c"].T + b["c"])
        c = f * c + i * c_tilde
        o = _sigmoid(hx @ w["o"].T + b["o"])
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1), h, c


def textbook_gru_layer(x, w, b):
    """GRU (Cho et al. 2014, torch's placement of the reset gate): r, z gates, n candidate.

    r = s(W_r.[h, x] + b_r), z = s(W_z.[h, x] + b_z),
    n = tanh(W_nx.x + b_nx + r * (W_nh.h + b_nh)), h_t = (1 - z) * n + z * h.
    """
    batch, steps, _ = x.shape
    h = np.zeros((batch, b["r"].shape[0]))
    out = []
    for t in range(steps):
        hx = np.concatenate([h, x[:, t]], axis=1)
        r = _sigmoid(hx @ w["r"].T + b["r"])
        z = _sigmoid(hx @ w["z"].T + b["z"])
        n = np.tanh(x[:, t] @ w["nx"].T + b["nx"] + r * (h @ w["nh"].T + b["nh"]))
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out, axis=1), h


def textbook_rnn_layer(x, w, b):
    """Elman RNN: h_t = tanh(W.[h, x] + b)."""
    batch, steps, _ = x.shape
    h = np.zeros((batch, b.shape[0]))
    out = []
    for t in range(steps):
        h = np.tanh(np.concatenate([h, x[:, t]], axis=1) @ w.T + b)
        out.append(h)
    return np.stack(out, axis=1), h


def _torch_params(rnn, layer: int, suffix: str = ""):
    get = lambda n: getattr(rnn, f"{n}_l{layer}{suffix}").detach().numpy()  # noqa: E731
    return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")


def reference_layer(cell: str, rnn, layer: int, suffix: str, x: np.ndarray):
    """Run one direction of one layer with the weights rearranged into the textbook [h, x] form."""
    w_ih, w_hh, b_ih, b_hh = _torch_params(rnn, layer, suffix)
    hidden = w_hh.shape[1]
    rows = lambda k: slice(k * hidden, (k + 1) * hidden)  # noqa: E731 - gate k of torch's packing
    joined = lambda k: np.concatenate([w_hh[rows(k)], w_ih[rows(k)]], axis=1)  # noqa: E731 - W acting on [h, x]
    if cell == "lstm":  # torch packs (input, forget, cell, output)
        w = {g: joined(k) for k, g in enumerate("ifco")}
        b = {g: b_ih[rows(k)] + b_hh[rows(k)] for k, g in enumerate("ifco")}
        out, h, c = textbook_lstm_layer(x, w, b)
        return out, h, c
    if cell == "gru":  # torch packs (reset, update, new)
        w = {"r": joined(0), "z": joined(1), "nx": w_ih[rows(2)], "nh": w_hh[rows(2)]}
        b = {"r": b_ih[rows(0)] + b_hh[rows(0)], "z": b_ih[rows(1)] + b_hh[rows(1)], "nx": b_ih[rows(2)], "nh": b_hh[rows(2)]}
        out, h = textbook_gru_layer(x, w, b)
        return out, h, None
    out, h = textbook_rnn_layer(x, np.concatenate([w_hh, w_ih], axis=1), b_ih + b_hh)
    return out, h, None


def reference_encoder(cell: str, rnn, x: np.ndarray):
    """Stacked, optionally bidirectional: each layer reads the previous layer's outputs, both directions side by side."""
    inputs, h_n, c_n = x, [], []
    for layer in range(rnn.num_layers):
        out, h, c = reference_layer(cell, rnn, layer, "", inputs)
        outs = [out]
        h_n.append(h), c_n.append(c)
        if rnn.bidirectional:
            back, hb, cb = reference_layer(cell, rnn, layer, "_reverse", inputs[:, ::-1])
            outs.append(back[:, ::-1])
            h_n.append(hb), c_n.append(cb)
        inputs = np.concatenate(outs, axis=2)
    return inputs, np.stack(h_n), (np.stack(c_n) if cell == "lstm" else None)


def _rel_err(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_matches_float64_textbook_reference(cell, bidirectional):
    torch.manual_seed(0)
    net = RecurrentForecaster(3, 4, cell=cell, hidden_size=5, num_layers=3, bidirectional=bidirectional, anchor="none")
    net = net.double().eval()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.8, 0.8)  # random weights and biases, not the zero / chrono init
    x = torch.randn(6, 11, 3, dtype=torch.float64)
    expected_out, expected_h, expected_c = reference_encoder(cell, net.encoder, x.numpy())
    out, state = net.encoder(x)
    h_n = state[0] if cell == "lstm" else state
    assert _rel_err(out.detach().numpy(), expected_out) < 1e-10
    assert _rel_err(h_n.detach().numpy(), expected_h) < 1e-10
    if cell == "lstm":
        assert _rel_err(state[1].detach().numpy(), expected_c) < 1e-10


def test_direct_head_is_the_documented_arithmetic():
    """forecast = head(top state) + skip(anchored lookback target) + last level, in float64."""
    torch.manual_seed(1)
    net = RecurrentForecaster(2, 4, hidden_size=5, num_layers=2, lookback=7, bidirectional=True).double().eval()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    x = torch.randn(3, 7, 2, dtype=torch.float64)
    level = x[:, -1:, :1]
    anchored = torch.cat([x[..., :1] - level, x[..., 1:]], dim=-1)
    _, h_n, _ = reference_encoder("lstm", net.encoder, anchored.numpy())
    top = np.concatenate([h_n[-2], h_n[-1]], axis=1)  # both directions of the top layer
    head, skip = net.head, net.skip
    expected = (
        top @ head.weight.detach().numpy().T + head.bias.detach().numpy()
        + anchored[:, :, 0].numpy() @ skip.weight.detach().numpy().T + skip.bias.detach().numpy()
        + level[:, :, 0].numpy()
    )
    got = net(x)[..., 0].detach().numpy()
    assert _rel_err(got, expected) < 1e-10


@pytest.mark.parametrize("head", ["direct", "autoregressive"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_variant_has_the_documented_shapes(head, cell):
    net = RecurrentForecaster(
        3, 5, n_future=2, cell=cell, hidden_size=6, num_layers=2, bidirectional=True, head=head,
        lookback=9, quantiles=(0.9, 0.1, 0.5), mean=True, n_series=4, embedding_dim=3,
    ).eval()
    out = net(torch.randn(7, 9, 3), torch.randn(7, 5, 2), torch.tensor([0, 1, 2, 3, 4, 0, 1]))
    assert out.shape == (7, 5, 4)
    assert net.outputs == ("mean", "q0.1", "q0.5", "q0.9")
    with pytest.raises(ValueError, match=r"future must be \(batch, 5, 2\)"):
        net(torch.randn(7, 9, 3))


def test_last_anchor_makes_forecast_follow_the_level():
    torch.manual_seed(1)
    net = RecurrentForecaster(1, 3, hidden_size=8, num_layers=2).eval()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    x = torch.randn(4, 10, 1)
    assert torch.allclose(net(x + 5.0), net(x) + 5.0, atol=1e-5)


def test_untrained_network_is_the_naive_forecast():
    """Zero-initialised output layers: before training, every variant forecasts the last value."""
    x = torch.randn(4, 10, 2)
    for head in ("direct", "autoregressive"):
        net = RecurrentForecaster(2, 3, n_future=1, hidden_size=8, head=head, lookback=10).eval()
        out = net(x, torch.randn(4, 3, 1))
        assert torch.equal(out[..., 0], x[:, -1:, 0].expand(4, 3))


def test_quantiles_never_cross_whatever_the_raw_outputs():
    torch.manual_seed(3)
    levels = (0.05, 0.25, 0.5, 0.75, 0.95)
    for mean in (True, False):
        net = RecurrentForecaster(1, 6, hidden_size=4, quantiles=levels, mean=mean, lookback=5).eval()
        for p in net.parameters():
            torch.nn.init.normal_(p, std=5.0)  # wild weights: raw outputs of any sign and size
        out = net(torch.randn(256, 5, 1) * 10)
        q = out[..., 1:] if mean else out
        assert (q.diff(dim=-1) >= 0).all()
        if not mean:  # the point forecast is the 0.5 quantile
            assert net.point_index == 2


def test_pinball_loss_is_minimised_by_the_true_quantile():
    y = torch.from_numpy(np.random.default_rng(0).standard_normal(4000))[:, None]  # (N, 1) standard normal
    grid = np.linspace(-2.5, 2.5, 201)
    for level, true_quantile in ((0.1, -1.2816), (0.5, 0.0), (0.9, 1.2816)):
        levels = torch.tensor([level], dtype=torch.float64)
        losses = [float(pinball_loss(torch.full((y.shape[0], 1, 1), c, dtype=torch.float64), y, levels)) for c in grid]
        assert abs(grid[int(np.argmin(losses))] - true_quantile) < 0.08, level


def test_chrono_init_spreads_forget_biases_and_leaves_rnn_alone():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(2, 32, 2)
    chrono_init(lstm, 100)
    for layer in range(2):
        b_ih, b_hh = getattr(lstm, f"bias_ih_l{layer}"), getattr(lstm, f"bias_hh_l{layer}")
        b_ih, b_hh = b_ih.detach(), b_hh.detach()
        forget = b_ih[32:64] + b_hh[32:64]
        assert float(forget.min()) >= 0.0 and float(forget.max()) <= np.log(99.0) + 1e-6
        assert torch.allclose(b_ih[:32] + b_hh[:32], -forget)  # input gate opposite to the forget gate
    rnn = torch.nn.RNN(2, 8)
    before = [p.clone() for p in rnn.parameters()]
    chrono_init(rnn, 100)
    assert all(torch.equal(a, b) for a, b in zip(before, rnn.parameters(), strict=True))


@pytest.mark.parametrize(
    "cell,head,bidirectional,mean",
    [("lstm", "direct", True, True), ("lstm", "autoregressive", False, False), ("gru", "direct", False, True), ("rnn", "autoregressive", True, False)],
)
def test_gradcheck_whole_forecaster_and_loss_float64(cell, head, bidirectional, mean):
    """Analytic gradients of loss(net(inputs)) w.r.t. every input *and* every parameter match finite differences."""
    torch.manual_seed(2)
    net = RecurrentForecaster(
        2, 3, n_future=1, cell=cell, hidden_size=3, num_layers=2, bidirectional=bidirectional, head=head,
        lookback=4, quantiles=(0.1, 0.5, 0.9), mean=mean, n_series=2, embedding_dim=2,
    ).double()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.7, 0.7)  # off the zero init, so every path carries gradient
    loss_fn = ForecastLoss(net.outputs, net.quantiles)
    names = [n for n, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    past = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    future = torch.randn(3, 3, 1, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 3, dtype=torch.float64)
    series = torch.tensor([0, 1, 2])

    def loss(past, future, *weights):
        return loss_fn(functional_call(net, dict(zip(names, weights, strict=True)), (past, future, series)), y)

    assert torch.autograd.gradcheck(loss, (past, future, *params), eps=1e-6, atol=1e-6, rtol=1e-5)


def _forkable(**kwargs) -> RecurrentForecaster:
    """A float64 network every forking path runs through: skip, known future, embedding, quantiles + mean."""
    torch.manual_seed(3)
    options = dict(
        n_future=2, hidden_size=5, num_layers=2, anchor="none", lookback=6, quantiles=(0.1, 0.5, 0.9),
        n_series=2, embedding_dim=2,
    )
    net = RecurrentForecaster(3, 4, **{**options, **kwargs}).double()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)  # off the zero init, so head and skip matter
    return net.eval()


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_forked_forecasts_equal_the_window_forward_on_the_same_inputs(stride, cell):
    """Window j of a chunk = forward() on the chunk's first lookback + j * stride steps (its lookback plus the older steps it read)."""
    net, k, lookback = _forkable(cell=cell), 4, 6
    past = torch.randn(2, lookback + (k - 1) * stride, 3, dtype=torch.float64)
    future = torch.randn(2, k, 4, 2, dtype=torch.float64)
    series = torch.tensor([1, 2])
    forked = net.forward_forked(past, future, series, lookback=lookback, stride=stride)
    assert forked.shape == (2, k, 4, len(net.outputs))
    for j in range(k):
        alone = net(past[:, : lookback + j * stride], future[:, j], series)
        torch.testing.assert_close(forked[:, j], alone, rtol=0, atol=1e-12)


def test_forked_loss_equals_the_per_window_loss_float32():
    """The forked training loss (chunk weights included) is the mean of the per-window losses computed the standard way."""
    net, k, lookback = _forkable().float(), 5, 6
    loss_fn = ForecastLoss(net.outputs, net.quantiles)
    past = torch.randn(3, lookback + k - 1, 3)
    future, y = torch.randn(3, k, 4, 2), torch.randn(3, k, 4)
    series = torch.tensor([0, 1, 2])
    weight = torch.ones(3, k)
    weight[2, 3:] = 0.0  # a short chunk: its last two positions are not windows
    forked = loss_fn(net.forward_forked(past, future, series, lookback=lookback), y, weight)
    pairs = [(c, j) for c in range(3) for j in range(k) if weight[c, j] > 0]
    preds = torch.cat([net(past[c : c + 1, : lookback + j], future[c : c + 1, j], series[c : c + 1]) for c, j in pairs])
    ys = torch.stack([y[c, j] for c, j in pairs])
    standard = loss_fn(preds, ys)
    torch.testing.assert_close(forked, standard, rtol=1e-5, atol=1e-6)
    # Unit weights reduce to the unweighted mean.
    torch.testing.assert_close(loss_fn(preds, ys, torch.ones(len(pairs))), standard, rtol=1e-5, atol=1e-6)


def test_gradcheck_forked_forecaster_and_loss_float64():
    """Analytic gradients through the forked path (unfolded skip, per-position head) match finite differences."""
    net = _forkable(hidden_size=3, lookback=4)
    net.train(False)
    loss_fn = ForecastLoss(net.outputs, net.quantiles)
    names = [n for n, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    past = torch.randn(2, 4 + 2 * 2, 3, dtype=torch.float64, requires_grad=True)  # k = 3 windows, stride 2
    future = torch.randn(2, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    y, weight = torch.randn(2, 3, 4, dtype=torch.float64), torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    series = torch.tensor([1, 2])

    def loss(past, future, *weights):
        out = functional_call(net, dict(zip(names, weights, strict=True)), (past, future, series), {"lookback": 4, "stride": 2}, strict=False)
        return loss_fn(out, y, weight)

    net.forward, forward = net.forward_forked, net.forward  # functional_call calls forward
    try:
        assert torch.autograd.gradcheck(loss, (past, future, *params), eps=1e-6, atol=1e-6, rtol=1e-5)
    finally:
        net.forward = forward


@pytest.mark.parametrize(
    "kwargs,blocked",
    [
        ({}, None),
        ({"anchor": "last"}, "anchored"),
        ({"bidirectional": True}, "bidirectional"),
        ({"head": "autoregressive"}, "autoregressive"),
    ],
)
def test_only_networks_whose_windows_share_encoder_inputs_can_fork(kwargs, blocked):
    net = _forkable(**kwargs)
    reason = net.fork_blocker()
    if blocked is None:
        assert reason is None
        return
    assert blocked in reason
    with pytest.raises(ValueError, match="cannot be trained forked"):
        net.forward_forked(torch.randn(1, 8, 3, dtype=torch.float64), torch.randn(1, 3, 4, 2, dtype=torch.float64), lookback=6)


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_delta_anchor_forks_exactly(stride, cell):
    """anchor='delta': window j of a chunk = forward() on the chunk's first lookback + j * stride steps, float64 to 1e-10."""
    net, k, lookback = _forkable(cell=cell, anchor="delta"), 5, 6
    assert net.fork_blocker() is None
    past = torch.randn(2, lookback + (k - 1) * stride, 3, dtype=torch.float64) * 3 + 10  # far from 0: the level matters
    future = torch.randn(2, k, 4, 2, dtype=torch.float64)
    series = torch.tensor([1, 2])
    forked = net.forward_forked(past, future, series, lookback=lookback, stride=stride)
    for j in range(k):
        alone = net(past[:, : lookback + j * stride], future[:, j], series)
        torch.testing.assert_close(forked[:, j], alone, rtol=0, atol=1e-10)


@pytest.mark.parametrize("head", ["direct", "autoregressive"])
def test_delta_anchor_is_translation_invariant_and_reads_changes(head):
    """Adding c to the target shifts every output by exactly c; the encoder sees changes (first step 0), the skip the lookback minus its last value."""
    torch.manual_seed(4)
    net = RecurrentForecaster(2, 3, n_future=1, hidden_size=5, head=head, anchor="delta", lookback=6, quantiles=(0.1, 0.5, 0.9)).double()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    net.eval()
    past, future = torch.randn(4, 6, 2, dtype=torch.float64), torch.randn(4, 3, 1, dtype=torch.float64)
    shifted = past.clone()
    shifted[..., 0] += 7.25
    torch.testing.assert_close(net(shifted, future), net(past, future) + 7.25, rtol=0, atol=1e-10)
    seen = []
    hook = net.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    net(past, future)
    hook.remove()
    changes = torch.cat([torch.zeros(4, 1, dtype=torch.float64), past[:, 1:, 0] - past[:, :-1, 0]], dim=1)
    torch.testing.assert_close(seen[0][..., 0], changes, rtol=0, atol=0)
    torch.testing.assert_close(seen[0][..., 1], past[..., 1], rtol=0, atol=0)  # covariates unchanged


def test_delta_anchor_direct_head_is_the_documented_arithmetic():
    """forecast = last value + head(encoder over changes) + skip(lookback - last value), in float64."""
    torch.manual_seed(5)
    net = RecurrentForecaster(2, 3, hidden_size=4, num_layers=1, anchor="delta", lookback=5).double()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.5, 0.5)
    net.eval()
    x = torch.randn(3, 5, 2, dtype=torch.float64)
    level = x[:, -1:, 0]
    changes = torch.cat([torch.zeros(3, 1, dtype=torch.float64), x[:, 1:, 0] - x[:, :-1, 0]], dim=1)
    _, (h, _) = net.encoder(torch.stack([changes, x[..., 1]], dim=-1))
    expected = level + net.head(h[-1]) + net.skip(x[..., 0] - level)
    torch.testing.assert_close(net(x)[..., 0], expected, rtol=0, atol=1e-12)


def test_gradcheck_delta_forked_and_window_paths_float64():
    """Analytic gradients through the delta anchor (changes, per-window levels, relative skip), forked and window by window."""
    net = _forkable(hidden_size=3, lookback=4, anchor="delta")
    loss_fn = ForecastLoss(net.outputs, net.quantiles)
    names = [n for n, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    past = torch.randn(2, 4 + 2 * 2, 3, dtype=torch.float64, requires_grad=True)  # k = 3 windows, stride 2
    future = torch.randn(2, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 4, dtype=torch.float64)
    series = torch.tensor([1, 2])

    def forked_loss(past, future, *weights):
        net.forward, forward = net.forward_forked, net.forward  # functional_call calls forward
        try:
            out = functional_call(net, dict(zip(names, weights, strict=True)), (past, future, series), {"lookback": 4, "stride": 2}, strict=False)
        finally:
            net.forward = forward
        return loss_fn(out, y)

    def window_loss(past, future, *weights):
        out = functional_call(net, dict(zip(names, weights, strict=True)), (past[:, -4:], future[:, 0], series))
        return loss_fn(out, y[:, 0])

    assert torch.autograd.gradcheck(forked_loss, (past, future, *params), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert torch.autograd.gradcheck(window_loss, (past, future, *params), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_anchor_defaults_to_last_and_unknown_anchors_are_named():
    assert RecurrentForecaster(1, 2, anchor="none").anchor == "none"
    assert RecurrentForecaster(1, 2).anchor == "last"
    with pytest.raises(ValueError, match="anchor must be one of"):
        RecurrentForecaster(1, 2, anchor="first")
