"""This project as a user gets it: the default config through ``fit``, ``predict_starts`` and ``backtest``.

The config is the standard task in the project's own terms: window 168/24
stride 1, LSTM hidden 64 x 2 layers, direct head, batch 256, Adam 1e-3, one
epoch, 2 threads. Everything else stays at the project's defaults:
``model.anchor: auto`` (``delta`` for level targets, so ``fit`` trains forked:
one encoder pass per chunk of ``training.forking_windows`` consecutive
windows), ``training.precision: auto`` and ``inference.precision: auto``
(bf16-mixed training and bf16 inference on a CPU with native bf16, float32
elsewhere), linear skip, chrono initialisation, gradient clipping 1.0. Only
dropout is 0 (the peers' default, so every contestant does the same
arithmetic), and there is no validation part for the fixed one-epoch budget
(early stopping has nothing to choose); the hold-out is the project's own
test split (last 10%). The training path and precision ``fit`` chose are
recorded with every training result (``training_path``, ``precision``).

Time to accuracy (``converge``): the task's validation part becomes
``split.val_fraction`` (the same points the peers validate on), with
``training.patience`` and ``training.max_epochs`` from the task; ``fit``
restores the best epoch's weights.

M1 (ragged series, ``data.ragged``): ``data.freq`` ("MS"), ``window.min_length``
from the task (12: the project left-pads series shorter than one window and
masks padding in a share of training windows), and ``fit`` on each series'
points before the hold-out (no test split: the project's split would drop the
test part of series too short for one, while the hold-out is every series'
official 18 points). The hold-out is then forecast by the project's public
``forecasting.predict.forecast`` from each series' history up to it, which
left-pads short histories as training did. The project's split also drops
the validation part of a series too short to keep one and a training window
(fewer than ``min_length + 2 * horizon`` = 48 training points: 139 of 617 on
M1): those series train on all their training points and are not validated
on, where the peers validate on them. The window counts ``fit`` reports are
checked against that rule (``_expected_windows``).

The harness times the training steps with its ``epoch_timer``, handed to
``fit`` as an extra Lightning callback (``fit(..., callbacks=[timer])``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.contestants import epoch_timer, validation_loss
from benchmarks.task import TaskData


@dataclass(frozen=True)
class Settings:
    """The few settings the project's contestants differ by; the defaults are the project's own."""

    anchor: str = "auto"
    training_precision: str = "auto"
    inference_precision: str = "auto"
    forking: str = "auto"


DEFAULT = Settings()
FLOAT32 = Settings(training_precision="32-true", inference_precision="32")


def config(data: TaskData, settings: Settings = DEFAULT) -> Any:  # noqa: ANN401 - a ForecasterConfig
    """The standard task as a ``ForecasterConfig`` with ``settings`` (the defaults unless told).

    With early stopping (``task.patience``) the validation part is the task's: ``split.val_fraction`` is
    chosen so that the project's ``max(horizon, round(fraction * n))`` gives exactly ``data.validation``
    points per series, the points the peers validate on.
    """
    from forecasting.config.model import parse_config

    task = data.task
    if data.ragged:
        # fit sees only the points before the hold-out, so no test split; validation / the longest training part
        # rounds to exactly ``data.validation`` points for every series (shorter ones get the horizon floor).
        val_fraction, test_fraction = data.validation / int(data.train_lengths.max()), 0.0
    else:
        val_fraction, test_fraction = data.validation / data.n_points, task.holdout_fraction
    window = {"lookback": task.lookback, "horizon": task.horizon, "stride": 1}
    if task.min_length is not None:
        window["min_length"] = task.min_length
    return parse_config(
        {
            "name": "bench-project",
            "data": {"dataset": f"bench-{task.dataset}", "freq": data.freq},
            "window": window,
            "split": {"val_fraction": val_fraction, "test_fraction": test_fraction},
            "model": {"cell": "lstm", "hidden_size": task.hidden, "num_layers": task.layers, "dropout": 0.0, "head": "direct",
                      "anchor": settings.anchor},
            "training": {
                "max_epochs": task.epoch_cap, "batch_size": task.batch_size, "learning_rate": task.learning_rate,
                "num_threads": task.threads, "seed": task.seed, "accelerator": "cpu", "devices": 1,
                "precision": settings.training_precision, "forking": settings.forking,
                **({"patience": task.patience} if task.early_stopping else {}),
            },
            "inference": {"precision": settings.inference_precision},
            # No statistical baselines: the backtest would refit AutoETS and AutoTheta at every origin (the
            # project's default, for promotion), which the peers' backtests do not do.
            "baseline": {"season_length": task.season, "statistical": []},
        },
        source="benchmarks.contestants.project",
    )


def _panel_and_starts(data: TaskData, frame: Any) -> tuple[Any, np.ndarray]:  # noqa: ANN401
    """The project's panel of ``frame`` and the global start rows of the hold-out windows, series-major."""
    from forecasting.data.schema import validate_observations
    from forecasting.prep.windows import SeriesPanel

    panel = SeriesPanel.from_frame(validate_observations(frame))
    if panel.series_ids != data.ids:
        raise RuntimeError(f"panel series {panel.series_ids[:3]}... are not in the task's order {data.ids[:3]}...")
    local = data.origins - data.task.lookback + 1  # (n_origins,)
    return panel, (panel.offsets[:-1, None] + local).ravel()


def _expected_windows(data: TaskData, cfg: Any) -> tuple[int, int]:  # noqa: ANN401 - a ForecasterConfig
    """Training and validation windows ``fit`` must report: the task's, except that on ragged data the
    project's split (``plan_split``) drops the validation part of a series too short to keep one and a
    training window; such a series trains on its whole training part instead (counted by the same rule as
    ``TaskData.train_windows_by_series``)."""
    if not data.ragged:
        return data.train_windows, data.val_windows
    from forecasting.prep.prepare import config_spec
    from forecasting.prep.windows import plan_split

    plan = plan_split(data.train_lengths, config_spec(cfg), val_fraction=cfg.split.val_fraction,
                      test_fraction=cfg.split.test_fraction, min_length=cfg.min_length)
    if (plan.val[plan.val > 0] != data.validation).any():
        raise RuntimeError(f"the project's validation parts {sorted(set(plan.val.tolist()))} are not {data.validation} points")
    train = data.windows_in(data.train_lengths - plan.val)  # observed points the weights train on
    val = np.where(plan.val > 0, data.val_windows_by_series, 0)
    return int(train.sum()), int(val.sum())


def _forecast_holdout(data: TaskData, trained: Any) -> np.ndarray:  # noqa: ANN401 - a TrainedForecaster
    """``(n_series, 1, horizon)`` forecasts from each series' history up to the hold-out, by the project's
    public ``forecast`` (it left-pads histories shorter than the lookback): the ragged tasks' one origin."""
    from forecasting.predict import forecast

    if len(data.origins) != 1:
        raise ValueError(f"ragged tasks have one origin per series; this one has {len(data.origins)}")
    out = forecast(trained, data.frame(data.train_points))
    pred = out.pivot(index="series_id", columns="step", values="mean").reindex(list(data.ids))
    if pred.isna().to_numpy().any() or pred.shape != (data.n_series, data.task.horizon):
        raise RuntimeError(f"forecast returned {pred.shape} forecasts; the hold-out is {data.actual.shape}")
    return pred.to_numpy(dtype=np.float64)[:, None, :]


def train(data: TaskData, settings: Settings = DEFAULT) -> dict:
    """``forecasting.train.fit`` on the full frame; its test split is the hold-out (its validation split the
    task's validation part, with early stopping). Ragged data (M1): ``fit`` on the points before the hold-out,
    then ``forecast`` from each series' history (see the module docstring)."""
    import torch

    from forecasting.hardware import resolve_inference_precision
    from forecasting.inference import predict_starts
    from forecasting.train import fit

    cfg = config(data, settings)
    frame = data.frame(data.train_points) if data.ragged else data.frame()
    timer = epoch_timer()
    t0 = time.perf_counter()
    result = fit(cfg, frame, callbacks=[timer])
    wall = time.perf_counter() - t0
    trained = result.forecaster
    if data.ragged:
        pred = _forecast_holdout(data, trained)
    else:
        panel, starts = _panel_and_starts(data, frame)
        pred = predict_starts(trained, panel, starts)["mean"]  # (windows, horizon)
    windows = trained.meta["windows"]
    expected = _expected_windows(data, cfg)
    if (windows["train"], windows["val"]) != expected:
        raise RuntimeError(f"fit used {windows['train']} training and {windows['val']} validation windows; the task "
                           f"has {expected[0]} and {expected[1]} for it")
    return {
        "windows": windows["train"] * timer.epochs, "steps": timer.batches, "epochs": timer.epochs,
        "train_seconds": timer.seconds, "setup_seconds": wall - timer.seconds, "fit_wall_seconds": wall,
        "fit_seconds": trained.meta["train_seconds"],
        "val_loss": validation_loss(timer.val_losses, restores_best=True),
        "forecasts": pred.reshape(data.n_series, len(data.origins), data.task.horizon),
        "training_path": trained.meta.get("training_path"), "precision": trained.meta.get("hardware", {}).get("precision"),
        "inference_precision": resolve_inference_precision(cfg.inference.precision, torch.device("cpu")),
    }


def untrained(data: TaskData, cfg: Any, panel: Any) -> Any:  # noqa: ANN401 - config, panel, TrainedForecaster
    """A ``TrainedForecaster`` of ``cfg`` with seeded, untrained weights and the scaler fitted on ``panel``'s
    training part: what the speed measures predict with (speed does not depend on the weights)."""
    import torch

    from forecasting.model.forecaster import TrainedForecaster, build_network
    from forecasting.prep.prepare import config_spec
    from forecasting.prep.scaling import SeriesScaler
    from forecasting.prep.windows import chronological_split

    torch.manual_seed(data.task.seed)
    net = build_network(cfg)
    bounds = chronological_split(panel, config_spec(cfg), val_fraction=0.0, test_fraction=data.task.holdout_fraction)
    return TrainedForecaster(cfg, SeriesScaler.fit(panel, bounds.train_end), net.state_dict())


def predict(data: TaskData, repeats: int, settings: Settings = DEFAULT) -> dict:
    """``predict_starts`` over the hold-out windows (one pass) against ``backtest`` (no refit) over the same origins,
    in ``settings.inference_precision`` ('auto' by default: bf16 where the CPU computes it natively)."""
    import torch

    from forecasting.evaluation.backtest import backtest
    from forecasting.config.backtest import BacktestConfig
    from forecasting.inference import predict_starts
    from forecasting.hardware import inference_autocast, resolve_inference_batch, resolve_inference_precision
    from forecasting.prep.windows import gather

    task = data.task
    torch.set_flush_denormal(True)  # as fit and the CLI's processes would have it
    cfg = config(data, settings)
    frame = data.frame()
    panel, starts = _panel_and_starts(data, frame)
    trained = untrained(data, cfg, panel)
    # Untrained weights record no training range, so every origin is scored ('include').
    settings = BacktestConfig(origins=len(data.origins), stride=1, in_sample="include")
    network = trained.network()
    x = gather(torch.from_numpy(trained.scaler.transform(panel)), torch.as_tensor(starts), task.lookback)

    def run_network() -> None:
        with torch.no_grad(), inference_autocast(cfg.inference.precision, torch.device("cpu")):
            for chunk in torch.split(x, resolve_inference_batch(cfg.inference.batch_size, torch.device("cpu"))):
                network(chunk)

    cases = {
        "inference_seconds": lambda: predict_starts(trained, panel, starts, scaler=trained.scaler),
        "backtest_seconds": lambda: backtest(frame, settings, trained=trained),
        "network_seconds": run_network,
    }
    result = cases["backtest_seconds"]()  # warm-up, and a check that both cover the same windows
    if result.n_windows != len(starts):
        raise RuntimeError(f"backtest scored {result.n_windows} windows; the hold-out has {len(starts)}")
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
    precision = resolve_inference_precision(cfg.inference.precision, torch.device("cpu"))
    return {"windows": len(starts), "inference_precision": precision, **timings}
