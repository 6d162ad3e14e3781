"""What ``model.anchor: auto`` should pick: ``python -m benchmarks.anchor_choice`` -> docs/anchor_choice.json.

The question (issue 18): does the forkable ``delta`` anchor, trained forked, forecast as well as
``last`` trained window by window (the old default), on every kind of data we ship? Per dataset and
seed, each variant trains the shipped config (early stopping as shipped) on the data before the
hold-out and forecasts the hold-out origins without refit, scored as benchmarks/accuracy.py scores
(MASE, sMAPE). ``fit s`` is the wall time of ``fit`` (what a user waits for to get that accuracy).

Variants (the config's own transform decides which apply):

- levels (``target_transform`` none or log): ``last`` window by window (the old default), ``delta``
  window by window (the anchor alone), ``delta`` forked (the anchor plus forking, chunk size as
  ``training.forking_windows: auto`` resolves it), and ``delta`` forked with 32 windows a chunk (what
  ``auto`` resolved to at batch 256 before its cap moved to 8);
- differencing (log-return, difference): ``none`` window by window, ``none`` forked.

Datasets: the standard synthetic task (benchmarks/training_path.py, one epoch), hourly and daily
Seattle weather, the five stocks, M1 monthly (benchmarks/data). ``--datasets`` picks some,
``--seeds`` sets how many (default 3, seeds 42, 43, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import yaml

from benchmarks.accuracy import DATASETS, ROOT, holdout_split
from benchmarks.machine import cpu
from forecasting.config.model import deep_merge

OUT = ROOT / "docs" / "anchor_choice.json"
LEVEL_VARIANTS = {
    "last, window by window": {"model": {"anchor": "last"}, "training": {"forking": "off"}},
    "delta, window by window": {"model": {"anchor": "delta"}, "training": {"forking": "off"}},
    "delta, forked": {"model": {"anchor": "delta"}, "training": {"forking": "auto"}},
    # forking_windows' cap: 'auto' stopped at 32 windows a chunk until this comparison moved it to 8.
    "delta, forked, 32 windows a chunk": {"model": {"anchor": "delta"}, "training": {"forking": "auto", "forking_windows": 32}},
}
DIFF_VARIANTS = {
    "none, window by window": {"model": {"anchor": "none"}, "training": {"forking": "off"}},
    "none, forked": {"model": {"anchor": "none"}, "training": {"forking": "auto"}},
}


def synthetic() -> tuple[dict, object, int]:
    """The standard task's data and config (one epoch), hold-out: the last 4 days of 24-hour origins."""
    from benchmarks.training_path import STANDARD, standard_frame

    return dict(STANDARD), standard_frame(64, 2000), 4


def real(name: str) -> tuple[dict, object, int]:
    ds = DATASETS[name]
    return yaml.safe_load((ROOT / ds.config).read_text()), ds.frame(), ds.origins


def run(raw: dict, frame, origins: int) -> dict:
    """Train on the data before the hold-out, backtest the hold-out origins; scores, fit seconds, path."""
    from forecasting.config.backtest import BacktestConfig
    from forecasting.config.model import parse_config
    from forecasting.evaluation.backtest import backtest
    from forecasting.evaluation.report import score_backtest
    from forecasting.train import fit

    config = parse_config(raw)
    horizon = config.window.horizon
    train = holdout_split(frame, horizon, origins)
    started = time.perf_counter()
    trained = fit(config, train).forecaster
    seconds = time.perf_counter() - started
    settings = BacktestConfig(origins=origins, stride=horizon, horizon=horizon, in_sample="include")
    scores = {}
    for precision in ("32", "bf16"):  # the same weights, predicted in float32 and under bf16 autocast
        inference = config.inference.model_copy(update={"precision": precision})
        trained.config = config.model_copy(update={"inference": inference})
        started_b = time.perf_counter()
        result = backtest(frame, settings, trained=trained, model_version="benchmark")
        s = score_backtest(result).summary.set_index("forecaster").loc["model"]
        scores[precision] = (float(s["mase"]), float(s["smape"]), time.perf_counter() - started_b)
    return {
        "mase": scores["32"][0], "smape": scores["32"][1], "mase_bf16": scores["bf16"][0],
        "backtest_seconds": round(scores["32"][2], 3), "backtest_seconds_bf16": round(scores["bf16"][2], 3),
        "fit_seconds": round(seconds, 2), "train_seconds": trained.meta.get("train_seconds"),
        "epochs": trained.meta.get("epochs"), "forked_windows": trained.meta["training_path"]["forked_windows"],
        "anchor": trained.meta.get("anchor", config.model.anchor),
        "training_precision": trained.meta.get("hardware", {}).get("precision"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="weather,weather_daily,stocks,m1,synthetic")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import logging

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("forecasting").setLevel(logging.WARNING)

    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results: dict = previous.get("datasets", {})
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        base, frame, origins = synthetic() if name == "synthetic" else real(name)
        # Statistical baselines off: fit would spend minutes on AutoETS inside the timed call (they are
        # benchmarks/accuracy.py's business).
        base = deep_merge(base, {"training": {"num_threads": args.threads}, "baseline": {"statistical": []}})
        differencing = base.get("data", {}).get("target_transform", "none") in ("difference", "log-return")
        variants = DIFF_VARIANTS if differencing else LEVEL_VARIANTS
        if name == "synthetic":  # 4 minutes a run window by window on 2 cores: the anchor alone was measured before
            variants = {k: v for k, v in variants.items() if k != "delta, window by window"}
        table: dict[str, list[dict]] = {v: [] for v in variants}
        for r in range(args.seeds):
            for variant, overrides in variants.items():
                raw = deep_merge(deep_merge(base, overrides), {"training": {"seed": 42 + r}})
                row = run(raw, frame, origins)
                table[variant].append({"seed": 42 + r, **row})
                print(f"{name} | {variant} | seed {42 + r} | MASE {row['mase']:.4f} (bf16 {row['mase_bf16']:.4f}) "
                      f"| fit {row['fit_seconds']:.1f} s "
                      f"| {row['epochs']} epochs | {row['forked_windows']} win/chunk", flush=True)
        results[name] = table
        args.out.write_text(json.dumps({"cpu": cpu(), "datasets": results}, indent=1))
    print(markdown(results))


def markdown(results: dict) -> str:
    """One row per dataset and variant: median MASE (per seed, spread), bf16 inference's change of the same
    weights' MASE, median fit seconds and its ratio to the dataset's first variant (the old default)."""
    lines = ["| dataset | variant | windows a chunk | MASE median | MASE per seed (42, 43, 44) | seed spread | "
             "bf16 - fp32 MASE (median, max abs) | fit s median | fit time vs first |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, table in results.items():
        first = None
        for variant, rows in table.items():
            mase = [r["mase"] for r in rows]
            secs = statistics.median(r["fit_seconds"] for r in rows)
            first = first or secs
            delta = [r["mase_bf16"] - r["mase"] for r in rows if "mase_bf16" in r]
            bf16 = f"{statistics.median(delta):+.4f}, {max(abs(d) for d in delta):.4f}" if delta else "-"
            seeds = ", ".join(f"{m:.4f}" for m in mase)
            lines.append(f"| {name} | {variant} | {rows[0]['forked_windows']} | {statistics.median(mase):.4f} | {seeds} | "
                         f"{max(mase) - min(mase):.4f} | {bf16} | {secs:.1f} | {secs / first:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
