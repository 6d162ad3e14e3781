"""This project, through its real entry points: ``fit``, ``predict_starts`` and ``backtest``.

The config is the standard task in the project's own terms: window 168/24
stride 1, LSTM hidden 64 x 2 layers, direct head, batch 256, Adam 1e-3, one
epoch, 2 threads, float32 (set explicitly: 'auto' would pick bf16 on a CPU that
computes it; that is the ``project-bf16`` contestant). Everything else stays
at the project's defaults (linear skip, anchoring on the last value, chrono
initialisation, gradient clipping 1.0), except dropout 0 (the peers' default,
so every contestant does the same arithmetic) and no validation part: the
budget is one epoch, so early stopping has nothing to choose, and the
hold-out is the project's own test split (last 10%).

The harness times the training steps with its ``epoch_timer``, handed to
``fit`` as an extra Lightning callback (``fit(..., callbacks=[timer])``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.contestants import epoch_timer
from benchmarks.task import TaskData


def config(data: TaskData, *, anchor: str = "auto", precision: str = "32") -> Any:  # noqa: ANN401 - a ForecasterConfig
    """The standard task as a ``ForecasterConfig`` (``anchor``: the model's ``anchor`` setting;
    ``precision`` ``"32"`` or ``"bf16"``: ``training.precision`` 32-true / bf16-mixed and the same
    ``inference.precision``). Explicit, because 'auto' is bf16-mixed on CPUs with native bf16 and the
    standard task is float32."""
    from forecasting.config.model import parse_config

    task = data.task
    return parse_config(
        {
            "name": "bench-project",
            "data": {"dataset": f"bench-{task.dataset}", "freq": "h"},
            "window": {"lookback": task.lookback, "horizon": task.horizon, "stride": 1},
            "split": {"val_fraction": 0.0, "test_fraction": task.holdout_fraction},
            "model": {"cell": "lstm", "hidden_size": task.hidden, "num_layers": task.layers, "dropout": 0.0, "head": "direct",
                      "anchor": anchor},
            "training": {
                "max_epochs": task.epochs, "batch_size": task.batch_size, "learning_rate": task.learning_rate,
                "num_threads": task.threads, "seed": task.seed, "accelerator": "cpu", "devices": 1,
                "precision": "bf16-mixed" if precision == "bf16" else "32-true",
            },
            "inference": {"precision": precision},
            "baseline": {"season_length": task.season},
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


def train(data: TaskData, *, anchor: str = "auto", precision: str = "32") -> dict:
    """``forecasting.train.fit`` on the full frame; its test split is the hold-out."""
    from forecasting.inference import predict_starts
    from forecasting.train import fit

    cfg = config(data, anchor=anchor, precision=precision)
    frame = data.frame()
    timer = epoch_timer()
    t0 = time.perf_counter()
    result = fit(cfg, frame, callbacks=[timer])
    wall = time.perf_counter() - t0
    trained = result.forecaster
    panel, starts = _panel_and_starts(data, frame)
    pred = predict_starts(trained, panel, starts)["mean"]  # (windows, horizon)
    windows = trained.meta["windows"]["train"]
    if windows != data.train_windows:
        raise RuntimeError(f"fit trained on {windows} windows; the task has {data.train_windows}")
    return {
        "windows": windows * data.task.epochs, "steps": timer.batches, "train_seconds": timer.seconds,
        "setup_seconds": wall - timer.seconds, "fit_seconds": trained.meta["train_seconds"],
        "forecasts": pred.reshape(data.n_series, len(data.origins), data.task.horizon),
        "training_path": trained.meta.get("training_path"), "precision": trained.meta.get("hardware", {}).get("precision"),
    }


def predict(data: TaskData, repeats: int, *, precision: str = "32") -> dict:
    """``predict_starts`` over the hold-out windows (one pass) against ``backtest`` (no refit) over the same origins,
    in the model's ``inference.precision`` (``precision``)."""
    import torch

    from forecasting.evaluation.backtest import backtest
    from forecasting.config.backtest import BacktestConfig
    from forecasting.inference import predict_starts
    from forecasting.model.forecaster import TrainedForecaster, build_network
    from forecasting.hardware import inference_autocast
    from forecasting.prep.scaling import SeriesScaler
    from forecasting.prep.prepare import config_spec
    from forecasting.prep.windows import chronological_split, gather

    task = data.task
    torch.set_flush_denormal(True)  # as fit and the CLI's processes would have it
    cfg = config(data, precision=precision)
    frame = data.frame()
    panel, starts = _panel_and_starts(data, frame)
    torch.manual_seed(task.seed)
    net = build_network(cfg)
    bounds = chronological_split(panel, config_spec(cfg), val_fraction=0.0, test_fraction=task.holdout_fraction)
    trained = TrainedForecaster(cfg, SeriesScaler.fit(panel, bounds.train_end), net.state_dict())
    # Untrained weights record no training range, so every origin is scored ('include').
    settings = BacktestConfig(origins=len(data.origins), stride=1, in_sample="include")
    network = trained.network()
    x = gather(torch.from_numpy(trained.scaler.transform(panel)), torch.as_tensor(starts), task.lookback)

    def run_network() -> None:
        with torch.no_grad(), inference_autocast(cfg.inference.precision, torch.device("cpu")):
            for chunk in torch.split(x, cfg.inference.batch_size):
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
    return {"windows": len(starts), **timings}
