"""Training paths on the standard task and the bundled weather data: windows/s and hold-out MAE per variant.

    .venv/bin/python -m benchmarks.training_path              # standard task + weather, 3 repeats
    .venv/bin/python -m benchmarks.training_path --quick      # 16 series x 800 points, weather 2 epochs
    .venv/bin/python -m benchmarks.training_path --task standard --repeats 2

The standard task (issue 8): 64 synthetic hourly series x 2,000 points (daily +
weekly seasonality, trend, noise), LSTM hidden 64 x 2 layers, lookback 168,
horizon 24 direct head, batch 256, Adam 1e-3, stride 1, one epoch, float32,
2 threads; hold-out = every origin of each series' last 10% (test part).

Variants run alternately, ``--repeats`` times each, repeat ``r`` with seed
``--seed`` (42) ``+ r``; medians are reported, so background load on a shared machine hits
every variant alike and the MAE column is not one seed's luck. ``w/s`` is
training windows per second of ``trainer.fit`` (validation epochs included,
as a user waits for them); ``raw loop`` is a lean PyTorch loop over the same
windows (nn.LSTM + linear head + skip, flush-denormal on), the peer reference.
Inference is ``predict_starts`` over the hold-out windows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from forecasting.config.model import deep_merge

STANDARD = {
    "name": "bench-standard",
    "data": {"dataset": "bench", "freq": "h"},
    "window": {"lookback": 168, "horizon": 24, "stride": 1},
    "model": {"hidden_size": 64, "num_layers": 2},
    "training": {"max_epochs": 1, "batch_size": 256, "learning_rate": 1e-3, "num_threads": 2},
    "split": {"val_fraction": 0.1, "test_fraction": 0.1},
    "baseline": {"season_length": 24},
}
NONE = {"model": {"anchor": "none"}}
# anchor 'delta': level-free like 'last' (encoder reads step changes), but forkable.
DELTA = {"model": {"anchor": "delta"}}
STANDARD_VARIANTS: dict[str, dict] = {
    "standard, anchor last (default)": {},
    "standard, anchor none": {**NONE, "training": {"forking": "off"}},
    "forked 32, anchor none": {**NONE, "training": {"forking_windows": 32}},
    "forked 8, anchor none": {**NONE, "training": {"forking_windows": 8}},
    "standard, anchor delta": {**DELTA, "training": {"forking": "off"}},
    "forked 32, anchor delta": {**DELTA, "training": {"forking_windows": 32}},
    "forked 8, anchor delta": {**DELTA, "training": {"forking_windows": 8}},
}
WEATHER_VARIANTS: dict[str, dict] = {
    "standard, anchor last (shipped)": {},
    "standard, anchor none": {**NONE, "training": {"forking": "off"}},
    "forked 8, anchor none": {**NONE, "training": {"forking_windows": 8}},
    "forked 32, anchor none": {**NONE, "training": {"forking_windows": 32}},
    "standard, anchor delta": {**DELTA, "training": {"forking": "off"}},
    "forked 8, anchor delta": {**DELTA, "training": {"forking_windows": 8}},
    "forked 32, anchor delta": {**DELTA, "training": {"forking_windows": 32}},
}


def standard_frame(n_series: int, n_points: int, seed: int = 0) -> pd.DataFrame:
    """Noisy daily + weekly seasonality with a trend and a level per series, hourly, UTC."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    stamps = pd.date_range("2024-01-01", periods=n_points, freq="h", tz="UTC")
    frames = []
    for i in range(n_series):
        level, trend, phase = rng.uniform(5, 50), rng.uniform(-0.002, 0.002), rng.uniform(0, 2 * np.pi)
        y = (
            level + trend * t
            + 3 * np.sin(2 * np.pi * t / 24 + phase)
            + 1.5 * np.sin(2 * np.pi * t / 168 + phase / 2)
            + 0.3 * rng.standard_normal(n_points)
        )
        frames.append(pd.DataFrame({"series_id": f"bench/s{i:03d}", "timestamp": stamps, "target": y}))
    return pd.concat(frames, ignore_index=True)


@dataclass
class Runs:
    """Per-variant samples over the repeats."""

    speed: list[float] = field(default_factory=list)
    test_mae: list[float] = field(default_factory=list)
    val_mae: list[float] = field(default_factory=list)
    infer: list[float] = field(default_factory=list)
    path: str = ""


def run_fit(raw: dict, frame: pd.DataFrame, runs: Runs, *, seed: int) -> None:
    """One ``fit`` with ``raw`` (seeded ``seed``); records training and inference windows/s and MAEs."""
    from forecasting.config.model import parse_config
    from forecasting.inference import predict_starts
    from forecasting.train import fit

    config = parse_config(deep_merge(raw, {"training": {"seed": seed}}))
    result = fit(config, frame)
    meta, m = result.forecaster.meta, result.forecaster.metrics
    runs.speed.append(meta["windows"]["train"] * max(1, meta["epochs"]) / meta["train_seconds"])
    runs.test_mae.append(m["test_mae"])
    runs.val_mae.append(m["val_mae"])
    runs.path = f"{meta['training_path']['forked_windows']} win/chunk"
    # Inference over the hold-out windows, as the harness calls it.
    from forecasting.prep.prepare import window_indexes, config_spec, select_training_frame
    from forecasting.prep.windows import SeriesPanel, chronological_split

    panel = SeriesPanel.from_frame(select_training_frame(config, frame))
    spec = config_spec(config)
    bounds = chronological_split(panel, spec, val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction)
    starts = window_indexes(config, panel, spec, bounds, {})["test"].starts
    predict_starts(result.forecaster, panel, starts[:64])  # warm-up
    started = time.perf_counter()
    predict_starts(result.forecaster, panel, starts)
    runs.infer.append(len(starts) / (time.perf_counter() - started))


def raw_loop(frame: pd.DataFrame, runs: Runs, *, threads: int, seed: int, device: str = "cpu") -> None:
    """The peer reference: a lean fp32 PyTorch loop over the same training windows, one epoch, shuffled
    (on ``device``: the GPU check runs it on CUDA)."""
    from torch import nn

    from forecasting.config.model import parse_config
    from forecasting.prep.windows import SeriesPanel, WindowSpec, build_index, chronological_split

    config = parse_config(STANDARD)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    panel = SeriesPanel.from_frame(frame[["series_id", "timestamp", "target"]])
    spec = WindowSpec(168, 24, 1)
    bounds = chronological_split(panel, spec, val_fraction=0.1, test_fraction=0.1)
    index = build_index(panel, spec, bounds, "train")
    values = panel.values[:, 0].astype(np.float32)
    mean = np.array([values[o:e].mean() for o, e in zip(panel.offsets[:-1], panel.offsets[:-1] + bounds.train_end, strict=True)])
    scale = np.array([values[o:e].std() for o, e in zip(panel.offsets[:-1], panel.offsets[:-1] + bounds.train_end, strict=True)])
    row_series = panel.row_series
    scaled = torch.from_numpy(((values - mean[row_series]) / scale[row_series]).astype(np.float32))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(1, config.model.hidden_size, config.model.num_layers, batch_first=True)
            self.head, self.skip = nn.Linear(config.model.hidden_size, 24), nn.Linear(168, 24)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, (h, _) = self.lstm(x[..., None])
            return self.head(h[-1]) + self.skip(x)

    net = Net().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    scaled = scaled.to(device)
    starts = torch.from_numpy(index.starts).to(device)
    order = torch.randperm(len(starts)).to(device)
    steps = torch.arange(spec.length, device=device)
    started = time.perf_counter()
    for lo in range(0, len(order), 256):
        w = scaled[starts[order[lo : lo + 256]][:, None] + steps]  # (B, length)
        loss = nn.functional.mse_loss(net(w[:, :168]), w[:, 168:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device != "cpu":
        torch.cuda.synchronize()
    runs.speed.append(len(order) / (time.perf_counter() - started))
    runs.path = "raw"


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(title: str, results: dict[str, Runs], reference: str) -> None:
    ref = _median(results[reference].speed)
    print(f"\n## {title}  (medians; ratio = w/s / '{reference}')\n")
    print("| variant | path | train w/s | ratio | test MAE | val MAE | inference w/s | samples w/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        infer = f"{_median(r.infer):,.0f}" if r.infer else "-"
        mae = f"{_median(r.test_mae):.4f}" if r.test_mae else "-"
        val = f"{_median(r.val_mae):.4f}" if r.val_mae else "-"
        samples = ", ".join(f"{x:,.0f}" for x in r.speed)
        print(f"| {name} | {r.path} | {_median(r.speed):,.0f} | {_median(r.speed) / ref:.2f} | {mae} | {val} | {infer} | {samples} |")
    for name, r in results.items():
        if len(r.test_mae) > 1:
            print(f"  {name}: test MAE per seed {[round(x, 4) for x in r.test_mae]}")


def main(argv: list[str] | None = None) -> None:
    """Run the chosen tasks, variants alternately, and print one markdown table per task."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 series x 800 points; weather 2 epochs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--task", choices=["standard", "weather", "both"], default="both")
    parser.add_argument("--variant", action="append", help="only these variant names (repeatable)")
    parser.add_argument("--epochs", type=int, help="weather epochs (default: the shipped config's, 2 with --quick)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the first repeat (repeat r: seed + r)")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw-loop reference on the standard task")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import logging

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)

    n_series, n_points = (16, 800) if args.quick else (64, 2000)
    keep = (lambda name: name in args.variant) if args.variant else (lambda name: True)
    if args.task in ("standard", "both"):
        frame = standard_frame(n_series, n_points)
        base = deep_merge(STANDARD, {"training": {"num_threads": args.threads}})
        variants = {n: v for n, v in STANDARD_VARIANTS.items() if keep(n)}
        results = ({} if args.no_raw else {"raw loop (peer reference)": Runs()}) | {n: Runs() for n in variants}
        for r in range(args.repeats):
            if not args.no_raw:
                raw_loop(frame, results["raw loop (peer reference)"], threads=args.threads, seed=args.seed + r)
            for name, overrides in variants.items():
                run_fit(deep_merge(base, overrides), frame, results[name], seed=args.seed + r)
                print(f"  standard {name} #{r}: {results[name].speed[-1]:,.0f} w/s, test MAE {results[name].test_mae[-1]:.4f}", flush=True)
        report(f"standard task, {n_series} series x {n_points} points, {args.threads} threads", results, next(iter(results)))
    if args.task in ("weather", "both"):
        import yaml

        from forecasting.data.sources.bundled import load_bundled

        with open("configs/weather.yaml") as fh:
            shipped = yaml.safe_load(fh)
        epochs = args.epochs or (2 if args.quick else None)
        shipped = deep_merge(shipped, {"training": {"num_threads": args.threads, **({"max_epochs": epochs} if epochs else {})}})
        frame = load_bundled(shipped["data"]["dataset"])
        variants = {n: v for n, v in WEATHER_VARIANTS.items() if keep(n)}
        results = {n: Runs() for n in variants}
        for r in range(args.repeats):
            for name, overrides in variants.items():
                run_fit(deep_merge(shipped, overrides), frame, results[name], seed=args.seed + r)
                print(f"  weather {name} #{r}: {results[name].speed[-1]:,.0f} w/s, test MAE {results[name].test_mae[-1]:.4f}", flush=True)
        report(f"weather (configs/weather.yaml), {args.threads} threads", results, next(iter(results)))


if __name__ == "__main__":
    main()
