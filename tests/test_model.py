"""The network against a float64 reference of the textbook LSTM equations."""

import numpy as np
import torch

from forecasting.model import LSTMForecaster


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_lstm(x: np.ndarray, layers: list[dict]) -> np.ndarray:
    """f, i, o gates, candidate cell, c_t = f*c + i*c~, h_t = o*tanh(c_t); stacked layers."""
    batch, steps, _ = x.shape
    inputs = x
    for p in layers:
        hidden = p["w_hh"].shape[1]
        h = np.zeros((batch, hidden))
        c = np.zeros((batch, hidden))
        outputs = []
        for t in range(steps):
            z = inputs[:, t] @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]
            # torch packs the gates as (input, forget, candidate, output).
            i, f, g, o = np.split(z, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            outputs.append(h)
        inputs = np.stack(outputs, axis=1)
    return inputs[:, -1]


def test_encoder_matches_float64_reference_stacked():
    torch.manual_seed(0)
    net = LSTMForecaster(n_features=3, horizon=4, hidden_size=5, num_layers=3, anchor_last=False).double().eval()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.8, 0.8)
    x = torch.randn(6, 11, 3, dtype=torch.float64)
    layers = []
    for k in range(3):
        layers.append({n: getattr(net.encoder, f"{n}_l{k}").detach().numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        layers[-1] = {"w_ih": layers[-1]["weight_ih"], "w_hh": layers[-1]["weight_hh"], "b_ih": layers[-1]["bias_ih"], "b_hh": layers[-1]["bias_hh"]}
    expected = reference_lstm(x.numpy(), layers)
    _, (h_n, _) = net.encoder(x)
    got = h_n[-1].detach().numpy()
    assert np.max(np.abs(got - expected) / (np.abs(expected) + 1e-12)) < 1e-10
    # And the head is exactly linear on top of it.
    head = net.head[1]
    assert torch.allclose(net(x), head(h_n[-1]), atol=1e-12)


def test_output_shapes_uni_and_bidirectional():
    x = torch.randn(7, 20, 2)
    assert LSTMForecaster(2, 5, hidden_size=8, num_layers=2)(x).shape == (7, 5)
    assert LSTMForecaster(2, 5, hidden_size=8, num_layers=1, bidirectional=True)(x).shape == (7, 5)


def test_anchor_last_makes_forecast_follow_the_level():
    torch.manual_seed(1)
    net = LSTMForecaster(1, 3, hidden_size=8, num_layers=2).eval()
    x = torch.randn(4, 10, 1)
    shifted = net(x + 5.0)
    assert torch.allclose(shifted, net(x) + 5.0, atol=1e-5)


def test_gradcheck_float64():
    torch.manual_seed(2)
    net = LSTMForecaster(2, 3, hidden_size=4, num_layers=2).double()
    x = torch.randn(3, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: net(inp), (x,), eps=1e-6, atol=1e-5)
