"""The recurrent network and its loss: tensors in, tensors out, nothing else.

Config, scaling and windowing belong to the forecaster object
(``forecasting.forecaster``); this module owns the arithmetic only, so it can be
checked against float64 references of the textbook equations
(``tests/model/test_model.py``) and by ``torch.autograd.gradcheck``. It makes no
device calls: every tensor it creates is derived from its inputs.

Outputs are ``(batch, horizon, n_outputs)``, named by ``net.outputs``: a
``"mean"`` column (trained with MSE) and/or quantile columns ``"q0.1"``, ...
(trained with pinball loss). Quantiles are built as a centre quantile plus
cumulative softplus steps, so they are sorted by construction and never cross.

``forward_forked`` is the training shortcut of the forking-sequences scheme
(MQ-RNN, Wen et al. 2017): stride-1 windows of one series share all but one
lookback step, so the encoder runs once over a chunk of consecutive windows and
the direct head reads its state at each window's origin. It is exact only for
networks whose encoder input does not depend on the window (``fork_blocker``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias

CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
HEADS: tuple[str, ...] = ("direct", "autoregressive")
ANCHORS: tuple[str, ...] = ("last", "delta", "none")


def quantile_name(q: float) -> str:
    """Column name of quantile level ``q``: 0.1 -> 'q0.1'."""
    return f"q{q:g}"


def output_names(quantiles: tuple[float, ...], mean: bool) -> tuple[str, ...]:
    """``("mean", "q0.1", ...)``: the output columns of a network."""
    return (("mean",) if mean else ()) + tuple(quantile_name(q) for q in sorted(quantiles))


class RecurrentForecaster(nn.Module):
    """Recurrent encoder over the lookback window, then a direct or autoregressive multi-horizon head.

    * ``cell``: ``lstm``, ``gru`` or ``rnn`` (vanilla tanh), stacked ``num_layers``
      deep, optionally bidirectional.
    * ``head="direct"``: the top layer's last state (both directions) feeds one
      linear layer that emits every step at once; with known-future inputs a
      small per-step network adds what those covariates say about each step.
    * ``head="autoregressive"``: a decoder of the same cell, started from the
      encoder state, steps through the horizon reading its own previous point
      forecast and that step's known-future inputs (seq2seq).
    * ``anchor``: how the network is kept independent of the series level.
      ``"last"``: the target is read and predicted relative to its last
      observed value, so a level never seen in training is no problem.
      ``"delta"``: the encoder reads the target as step-to-step changes
      ``x_t - x_{t-1}`` (0 at the first step it reads) and the forecast is
      the last value + head + skip of the lookback relative to that value.
      Equally translation-invariant, but every encoder input step is the
      same whichever window it belongs to, so it can be trained forked
      (``"last"`` subtracts a per-window level from every step and cannot).
      ``"none"``: raw scaled values in and out.
    * ``lookback`` given: a linear skip from the lookback target to the horizon
      (LSTNet's highway) that represents naive and seasonal-naive exactly.
    * Every output layer starts at zero: training starts from the anchored
      level (naive), the skip, or the scaled mean, and moves only where the
      data pays for it.
    * ``memory`` given: LSTM and GRU gate biases get the chrono initialisation
      for dependencies up to that many steps (see ``chrono_init``).
    """

    def __init__(
        self,
        n_features: int,
        horizon: int,
        *,
        n_future: int = 0,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        bidirectional: bool = False,
        head: str = "direct",
        anchor: str = "last",
        lookback: int | None = None,
        quantiles: tuple[float, ...] = (),
        mean: bool = True,
        n_series: int = 0,
        embedding_dim: int = 0,
        memory: int | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
        if not mean and 0.5 not in quantiles:
            raise ValueError(f"without a mean output the quantiles {quantiles} must include 0.5 (the point forecast)")
        self.horizon = horizon
        self.n_future = n_future
        self.cell = cell
        self.head_kind = head
        self.anchor = anchor
        self.quantiles = tuple(sorted(quantiles))
        self.outputs = output_names(self.quantiles, mean)
        n_out = len(self.outputs)
        self.point_index = 0 if mean else self.outputs.index("q0.5")
        # The quantile built first; the others step away from it by softplus increments.
        self._q0 = int(mean)
        self._centre = self._q0 + min(range(len(self.quantiles)), key=lambda k: abs(self.quantiles[k] - 0.5), default=0)

        self.embedding = nn.Embedding(n_series + 1, embedding_dim) if embedding_dim else None  # row 0: unknown series
        directions = 2 if bidirectional else 1
        context = hidden_size * directions
        self.encoder = CELLS[cell](
            input_size=n_features + embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # torch applies it between stacked layers only
            bidirectional=bidirectional,
        )
        if memory is not None and memory > 2:
            chrono_init(self.encoder, memory)
        self.dropout = nn.Dropout(dropout)
        if head == "direct":
            self.head = nn.Linear(context, horizon * n_out)
            self.future_head = (
                nn.Sequential(nn.Linear(context + n_future, hidden_size), nn.Tanh(), nn.Linear(hidden_size, n_out))
                if n_future
                else None
            )
            zero = [self.head, self.future_head[-1] if self.future_head is not None else None]
        else:
            # Decoder input per step: previous point forecast, known-future inputs, series embedding.
            self.decoder = CELLS[cell](
                input_size=1 + n_future + embedding_dim,
                hidden_size=context,  # starts from the encoder state, both directions side by side
                num_layers=num_layers,
                batch_first=True,
                dropout=dropout if num_layers > 1 else 0.0,
            )
            self.projection = nn.Linear(context, n_out)
            zero = [self.projection]
        self.skip = nn.Linear(lookback, horizon) if lookback else None
        for layer in [*zero, self.skip]:
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(
        self, past: torch.Tensor, future: torch.Tensor | None = None, series: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled lookback (+ known future, + series index) -> ``(batch, horizon, n_outputs)`` scaled forecasts.

        past: (batch, lookback, n_features), target in feature 0
        future: (batch, horizon, n_future) known-future inputs, or None when n_future == 0
        series: (batch,) int64 embedding rows (0 = unknown series), or None without an embedding
        """
        batch = past.shape[0]
        if self.n_future and (future is None or future.shape[1:] != (self.horizon, self.n_future)):
            got = None if future is None else tuple(future.shape)
            raise ValueError(f"future must be (batch, {self.horizon}, {self.n_future}), got {got}")
        target = past[..., 0]  # (batch, lookback)
        if self.anchor == "none":
            level = past.new_zeros(batch, 1)  # (batch, 1)
            relative = target
        else:
            level = target[:, -1:]  # (batch, 1): last observed target
            relative = target - level  # (batch, lookback): the lookback as the skip reads it
        if self.anchor == "last":
            past = torch.cat([relative[..., None], past[..., 1:]], dim=-1)  # (batch, lookback, n_features)
        elif self.anchor == "delta":
            past = torch.cat([_changes(target)[..., None], past[..., 1:]], dim=-1)
        encoded = past[:, -1, :1]  # (batch, 1): the last target step as the encoder reads it
        past, emb = self._with_embedding(past, series)

        _, state = self.encoder(past)  # h_n: (layers * directions, batch, hidden)
        shift = level.expand(batch, self.horizon)  # (batch, horizon): added to every output column
        if self.skip is not None:
            shift = shift + self.skip(relative[:, -self.skip.in_features :])

        if self.head_kind == "direct":
            h_n = state[0] if isinstance(state, tuple) else state
            return self._direct(self._top_layer(h_n), future, shift)
        return self._decode(state, future, emb, shift, level, encoded)

    def fork_blocker(self) -> str | None:
        """Why ``forward_forked`` would not equal ``forward`` window by window, or None when it does.

        The one home of the network's side of the forking rule: ``train.resolve_forking``
        adds only the training side (``training.forking``, padding, chunk size).

        Forking shares one encoder pass among windows, so the encoder input of
        each step must be the same whichever window it belongs to, and each
        window's head must need only the encoder's top-layer output at its
        origin. Anchoring on the last value subtracts a per-window level from
        every input step (``anchor="delta"`` reads changes, which do not depend
        on the window, and forks),
        the backward direction of a bidirectional encoder starts at each
        window's end, and the autoregressive decoder starts from every layer's
        (h, c) at the origin, which a fused multi-layer cell does not return.
        """
        if self.anchor == "last":
            return "inputs are anchored on each window's last value (model.anchor resolves to 'last'; 'delta' forks)"
        if self.encoder.bidirectional:
            return "a bidirectional encoder reads each window backwards from its own end"
        if self.head_kind != "direct":
            return "the autoregressive decoder starts from every layer's state at each origin"
        return None

    def forward_forked(
        self,
        past: torch.Tensor,
        future: torch.Tensor | None = None,
        series: torch.Tensor | None = None,
        *,
        lookback: int,
        stride: int = 1,
    ) -> torch.Tensor:
        """Forecasts of ``k`` consecutive windows per chunk from one encoder pass: ``(chunks, k, horizon, n_out)``.

        past: (chunks, lookback + (k - 1) * stride, n_features): window ``j`` of a
        chunk reads steps ``[j * stride, j * stride + lookback)``.
        future: (chunks, k, horizon, n_future) or None; series: (chunks,) or None.

        Window ``j``'s forecast is what ``forward`` gives on the chunk's first
        ``lookback + j * stride`` steps, i.e. on its own lookback plus up to
        ``(k - 1) * stride`` older steps the encoder read before it. The encoder
        is causal, so nothing after a window's origin reaches its forecast.
        """
        blocker = self.fork_blocker()
        if blocker is not None:
            raise ValueError(f"this network cannot be trained forked: {blocker}")
        chunks, steps, _ = past.shape
        if steps < lookback or (steps - lookback) % stride:
            raise ValueError(f"past has {steps} steps; a chunk needs lookback {lookback} + a multiple of stride {stride}")
        k = (steps - lookback) // stride + 1
        if self.n_future and (future is None or future.shape[1:] != (k, self.horizon, self.n_future)):
            got = None if future is None else tuple(future.shape)
            raise ValueError(f"future must be (chunks, {k}, {self.horizon}, {self.n_future}), got {got}")
        target = past[..., 0]  # (chunks, steps)
        if self.anchor == "delta":
            # Changes within the chunk: step t reads x_t - x_{t-1} for every window holding it,
            # so window j reads what forward() reads on the chunk's first lookback + j * stride steps.
            past = torch.cat([_changes(target)[..., None], past[..., 1:]], dim=-1)
        past, _ = self._with_embedding(past, series)
        out, _ = self.encoder(past)  # (chunks, steps, hidden): the top layer at every step
        context = out[:, lookback - 1 :: stride]  # (chunks, k, hidden): the state at each window's origin
        if self.anchor == "delta":
            level = target[:, lookback - 1 :: stride]  # (chunks, k): each window's last value
        else:
            level = past.new_zeros(chunks, k)
        shift = level[..., None].expand(chunks, k, self.horizon)
        if self.skip is not None:
            # Each window's last skip.in_features target steps, relative to its level: (chunks, k, in_features).
            width = self.skip.in_features
            shift = shift + self.skip(target[:, lookback - width :].unfold(1, width, stride) - level[..., None])
        return self._direct(context, future, shift)

    def _with_embedding(
        self, past: torch.Tensor, series: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Append the series embedding to every input step: ``(batch, steps, F)`` -> ``(batch, steps, F + E)``."""
        if self.embedding is None:
            return past, None
        batch, steps, _ = past.shape
        if series is None:
            series = torch.zeros(batch, dtype=torch.long, device=past.device)
        emb = self.embedding(series)  # (batch, embedding_dim)
        return torch.cat([past, emb[:, None].expand(batch, steps, -1)], dim=-1), emb

    def _direct(self, context: torch.Tensor, future: torch.Tensor | None, shift: torch.Tensor) -> torch.Tensor:
        """Direct head: ``(..., context)`` encoder state -> ``(..., horizon, n_out)``, plus ``shift`` ``(..., horizon)``."""
        lead = context.shape[:-1]
        raw = self.head(self.dropout(context)).view(*lead, self.horizon, -1)  # (..., horizon, n_out)
        if self.future_head is not None:
            steps = context[..., None, :].expand(*lead, self.horizon, -1)  # (..., horizon, context)
            raw = raw + self.future_head(torch.cat([self.dropout(steps), future], dim=-1))
        return self._monotone(raw) + shift[..., None]

    def _top_layer(self, h_n: torch.Tensor) -> torch.Tensor:
        """(layers * directions, batch, hidden) -> (batch, directions * hidden): the top layer's last state."""
        if self.encoder.bidirectional:
            return torch.cat([h_n[-2], h_n[-1]], dim=-1)
        return h_n[-1]

    def _decoder_state(self, h_n: torch.Tensor) -> torch.Tensor:
        """(layers * directions, batch, hidden) -> (layers, batch, directions * hidden)."""
        layers = self.encoder.num_layers
        directions = 2 if self.encoder.bidirectional else 1
        h = h_n.view(layers, directions, h_n.shape[1], h_n.shape[2])  # (layers, directions, batch, hidden)
        return torch.cat(list(h.unbind(1)), dim=-1)  # (layers, batch, directions * hidden)

    def _decode(
        self,
        state: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        future: torch.Tensor | None,
        emb: torch.Tensor | None,
        shift: torch.Tensor,
        level: torch.Tensor,
        last: torch.Tensor,
    ) -> torch.Tensor:
        """Autoregressive horizon: one decoder step per horizon step, fed the previous point forecast.

        shift: (batch, horizon) level + skip; level: (batch, 1) anchor (zeros without);
        last: (batch, 1) last lookback target as the encoder read it (0 when anchored on
        it, the last change with ``anchor="delta"``).
        """
        if isinstance(state, tuple):  # LSTM: (h, c)
            hidden = (self._decoder_state(state[0]), self._decoder_state(state[1]))
        else:
            hidden = self._decoder_state(state)
        previous = last  # (batch, 1)
        base = level  # (batch, 1): what the fed-back forecast is read relative to
        outputs = []
        for h in range(self.horizon):
            parts = [previous]
            if self.n_future:
                parts.append(future[:, h])  # (batch, n_future)
            if emb is not None:
                parts.append(emb)  # (batch, embedding_dim)
            step_in = torch.cat(parts, dim=-1)[:, None]  # (batch, 1, decoder inputs)
            out, hidden = self.decoder(step_in, hidden)  # out: (batch, 1, context)
            raw = self.projection(self.dropout(out[:, 0]))[:, None]  # (batch, 1, n_out)
            step = self._monotone(raw)[:, 0] + shift[:, h : h + 1]  # (batch, n_out)
            outputs.append(step)
            # Fed back as the encoder saw the target: relative to the anchor, or the
            # change from the previous step (the last observed value, then the last forecast).
            point = step[:, self.point_index : self.point_index + 1]
            previous = point - base
            if self.anchor == "delta":
                base = point
        return torch.stack(outputs, dim=1)  # (batch, horizon, n_out)

    def _monotone(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw ``(..., n_out)`` -> outputs whose quantile columns are sorted: centre +/- cumulative softplus."""
        if len(self.quantiles) <= 1:
            return raw
        q0, c, n = self._q0, self._centre, raw.shape[-1]
        centre = raw[..., c : c + 1]
        up = centre + torch.cumsum(F.softplus(raw[..., c + 1 : n]), dim=-1)
        down = centre - torch.cumsum(F.softplus(raw[..., q0:c].flip(-1)), dim=-1).flip(-1)
        return torch.cat([raw[..., :q0], down, centre, up], dim=-1)


def _changes(target: torch.Tensor) -> torch.Tensor:
    """``(batch, steps)`` -> step-to-step changes ``x_t - x_{t-1}``, 0 at the first step (it has no predecessor)."""
    return torch.cat([torch.zeros_like(target[:, :1]), target.diff(dim=1)], dim=1)


@torch.no_grad()
def chrono_init(rnn: nn.RNNBase, memory: int) -> None:
    """Chrono initialisation (Tallec & Ollivier, ICLR 2018) of LSTM and GRU gate biases.

    Each unit's forget gate (GRU: update gate) bias is ``log(u)``, ``u`` uniform
    in ``[1, memory - 1]``, and an LSTM's input gate bias its negative: at
    initialisation the units keep their state for characteristic times spread
    up to ``memory`` steps. With torch's default (all biases near 0) every
    unit forgets half its state per step, and a value seen 50 steps earlier
    leaves a gradient of ``0.5**50``. A vanilla RNN has no gate to set.
    """
    if not isinstance(rnn, (nn.LSTM, nn.GRU)):
        return
    hidden = rnn.hidden_size
    for name, bias in rnn.named_parameters():
        if not name.startswith("bias_"):
            continue
        keep = torch.log(1.0 + torch.rand(hidden, dtype=bias.dtype, device=bias.device) * (memory - 2))
        # torch packs LSTM gates as (input, forget, cell, output) and GRU gates as (reset, update, new).
        gate = slice(hidden, 2 * hidden)
        if name.startswith("bias_hh"):
            bias[gate] = 0.0  # the input-side bias carries the whole initial value
            if isinstance(rnn, nn.LSTM):
                bias[:hidden] = 0.0
            continue
        bias[gate] = keep
        if isinstance(rnn, nn.LSTM):
            bias[:hidden] = -keep


class ForecastLoss(nn.Module):
    """MSE on the mean output plus the mean pinball loss over the quantile outputs."""

    def __init__(self, outputs: tuple[str, ...], quantiles: tuple[float, ...]) -> None:
        super().__init__()
        self.has_mean = "mean" in outputs
        self.register_buffer("levels", torch.tensor(sorted(quantiles), dtype=torch.float64), persistent=False)

    def forward(self, pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """pred: (..., horizon, n_outputs); y: (..., horizon) -> scalar mean over windows and steps.

        ``weight`` (...,) of 0/1 leaves some windows out (the unused positions of
        a short forked chunk) without a boolean index, which would cost a host
        sync on a GPU: the loss is then the mean over the windows it keeps.
        """
        if weight is not None:
            return (self.per_window(pred, y) * weight).sum() / weight.sum().clamp_min(1.0)
        loss = pred.new_zeros(())
        first = 0
        if self.has_mean:
            loss = loss + F.mse_loss(pred[..., 0], y)
            first = 1
        if self.levels.numel():
            loss = loss + pinball_loss(pred[..., first:], y, self.levels.to(pred.dtype))
        return loss

    def per_window(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """pred: (..., horizon, n_outputs); y: (..., horizon) -> (...) each window's loss."""
        loss = pred.new_zeros(pred.shape[:-2])
        first = 0
        if self.has_mean:
            loss = loss + (pred[..., 0] - y).square().mean(dim=-1)
            first = 1
        if self.levels.numel():
            error = y[..., None] - pred[..., first:]  # (..., horizon, Q)
            levels = self.levels.to(pred.dtype)
            loss = loss + torch.maximum(levels * error, (levels - 1.0) * error).mean(dim=(-2, -1))
        return loss


def pinball_loss(quantiles: torch.Tensor, y: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss: quantiles (batch, horizon, Q), y (batch, horizon), levels (Q,) -> scalar.

    For level q and error e = y - f: ``max(q * e, (q - 1) * e)``; minimised in
    expectation by the true q-quantile.
    """
    error = y[..., None] - quantiles  # (batch, horizon, Q)
    return torch.maximum(levels * error, (levels - 1.0) * error).mean()
