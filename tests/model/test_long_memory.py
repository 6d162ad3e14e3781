"""Long memory: recall a value seen 55+ steps earlier. The LSTM variant learns it; the vanilla RNN does not.

The input is white noise with a marker channel flagging one of the first
five steps; the target, read after the last step, is the flagged value.
Distractor noise fills every step in between, so the network must latch the
value and hold it for 55 to 59 steps. Both networks are the product's
``RecurrentForecaster`` with its default initialisation, trained identically
(seeded, one thread, a few seconds).
"""

import pytest
import torch

from forecasting.model.network import ForecastLoss, RecurrentForecaster

STEPS = 60


def echo_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, STEPS, 2, generator=generator)  # channel 0: values, channel 1: marker
    x[:, :, 1] = 0.0
    where = torch.randint(0, 5, (n,), generator=generator)  # flagged step: 55..59 steps before the end
    rows = torch.arange(n)
    x[rows, where, 1] = 1.0
    return x, x[rows, where, 0][:, None]  # target (n, horizon 1)


def train_echo(cell: str, *, iterations: int = 400, seed: int = 0) -> float:
    """Test MSE after training; 1.0 is what ignoring the past scores (the target has unit variance)."""
    torch.manual_seed(seed)
    net = RecurrentForecaster(2, 1, cell=cell, hidden_size=8, num_layers=1, anchor="none", memory=STEPS)
    loss_fn = ForecastLoss(net.outputs, ())
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        x, y = echo_batch(64, generator)
        loss = loss_fn(net(x), y)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
    x, y = echo_batch(1024, torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        return float(loss_fn(net.eval()(x), y))


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_lstm_remembers_55_steps_and_vanilla_rnn_does_not(one_thread):
    lstm = train_echo("lstm")
    rnn = train_echo("rnn")
    assert lstm < 0.05, f"LSTM test MSE {lstm:.4f}"
    assert rnn > 0.5, f"RNN test MSE {rnn:.4f}"
