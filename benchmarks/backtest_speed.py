"""How close is a no-refit backtest to one batched forward pass over the same windows?

    .venv/bin/python -m benchmarks.backtest_speed            # the standard task, ~1-2 min on 2 cores
    .venv/bin/python -m benchmarks.backtest_speed --quick    # 16 series x 800 points, seconds

The standard task (issue "Benchmarks against the peers"): 64 synthetic hourly
series x 2,000 points (daily + weekly seasonality, trend, noise, fixed seed),
LSTM hidden 64 x 2 layers, lookback 168, horizon 24, float32, 2 threads. The
backtest scores the most recent ``--origins`` origins per series, one every
24 steps, against all four baselines. Weights are untrained: speed does not
depend on them.

Timed in one run, alternating, ``--repeats`` times each, medians reported:

- ``backtest``: ``forecasting.backtest.backtest`` end to end (validation,
  origin plan, one ``predict_starts`` call, actuals, baselines, MASE scales);
- ``one pass``: ``predict_starts`` over exactly the same windows (scaling, one
  gather, the network, inverse scaling): the floor the backtest is held to;
- ``network``: the bare ``net(x)`` on pre-gathered windows, for reference;
- ``loop/origin``: one ``predict_starts`` call per origin (all series at once),
  as a rolling-origin loop without batching across origins would do;
- ``loop/forecast``: one public ``forecast(trained, history)`` call per origin
  on the history up to it, as a user would write it without a backtest engine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from benchmarks.task import standard_frame


def _time(fn: Callable[[], object], results: list[float]) -> None:
    started = time.perf_counter()
    fn()
    results.append(time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=64)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--origins", type=int, default=40, help="origins per series, one every 24 steps")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="16 series x 800 points, 10 origins, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.points, args.origins, args.repeats = 16, 800, 10, 3
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    from forecasting.evaluation.backtest import backtest
    from forecasting.config.backtest import BacktestConfig
    from forecasting.config.model import parse_config
    from forecasting.inference import predict_starts
    from forecasting.model.forecaster import TrainedForecaster, build_network
    from forecasting.predict import forecast
    from forecasting.prep.scaling import SeriesScaler
    from forecasting.prep.prepare import config_spec
    from forecasting.prep.windows import SeriesPanel, chronological_split, gather

    config = parse_config(
        {
            "name": "bench-backtest",
            "data": {"dataset": "bench", "freq": "h"},
            "window": {"lookback": 168, "horizon": 24},
            "model": {"hidden_size": 64, "num_layers": 2, "dropout": 0.0},
            "baseline": {"season_length": 24},
        }
    )
    frame = standard_frame(args.series, args.points)
    panel = SeriesPanel.from_frame(frame)
    torch.manual_seed(0)
    net = build_network(config)
    bounds = chronological_split(panel, config_spec(config), val_fraction=0.1, test_fraction=0.1)
    trained = TrainedForecaster(config, SeriesScaler.fit(panel, bounds.train_end), net.state_dict())
    # Untrained weights carry no training range, so every origin is scored (none is in-sample).
    settings = BacktestConfig(origins=args.origins, stride=24, in_sample="include")

    result = backtest(frame, settings, trained=trained)
    pos = (result.origin - panel.timestamps[panel.offsets[result.series]]) // np.timedelta64(1, "h")
    starts = panel.offsets[result.series] + pos - 168 + 1  # the backtest's windows, same order
    times = np.unique(result.origin)
    by_origin = [starts[result.origin == t] for t in times]
    cut = {t: frame[frame["timestamp"] <= pd.Timestamp(t, tz="UTC")] for t in times}
    network = trained.network()
    scaled = torch.from_numpy(trained.scaler.transform(panel))
    x = gather(scaled, torch.as_tensor(starts), 168)  # (windows, lookback, features)

    def run_network() -> None:
        with torch.no_grad():
            for chunk in torch.split(x, 4096):
                network(chunk)

    cases: dict[str, Callable[[], object]] = {
        "backtest": lambda: backtest(frame, settings, trained=trained),
        "one pass": lambda: predict_starts(trained, panel, starts, scaler=trained.scaler),
        "network": run_network,
        "loop/origin": lambda: [predict_starts(trained, panel, s, scaler=trained.scaler) for s in by_origin],
        "loop/forecast": lambda: [forecast(trained, cut[t]) for t in times],
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):  # alternate, so background load hits every case alike
        for name, fn in cases.items():
            _time(fn, timings[name])
    med = {name: statistics.median(values) for name, values in timings.items()}

    windows = len(starts)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"task: {args.series} series x {args.points} points, LSTM 64x2, lookback 168, horizon 24; "
        f"{len(times)} origins x {args.series} series = {windows} windows; {args.repeats} repeats, medians"
    )
    print(f"{'case':<14} {'seconds':>9} {'windows/s':>10}")
    for name, seconds in med.items():
        print(f"{name:<14} {seconds:9.3f} {windows / seconds:10.0f}")
    ratios = {
        "backtest / one pass": med["backtest"] / med["one pass"],
        "backtest / network": med["backtest"] / med["network"],
        "loop/origin / backtest": med["loop/origin"] / med["backtest"],
        "loop/forecast / backtest": med["loop/forecast"] / med["backtest"],
    }
    for name, value in ratios.items():
        print(f"{name:<26} {value:6.2f}x")
    return ratios



if __name__ == "__main__":
    main()
