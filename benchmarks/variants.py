"""Model variants against the baselines on the bundled data, on one hold-out.

    python benchmarks/variants.py                  # weather and stocks, every variant
    python benchmarks/variants.py --dataset weather --variant "LSTM direct"
    python benchmarks/variants.py --out benchmarks/variants.md

Every variant is the shipped config (configs/weather.yaml, configs/stocks.yaml)
with its variant knobs reset (``NEUTRAL``) plus the overrides its name says,
trained by ``forecasting.train.fit`` exactly as the pipelines do. All are scored on the same windows: every origin of each
series' test part (its last 10%, never seen by training or early stopping),
in original units. Baselines are computed on those windows from the same
lookback. MASE divides by each series' in-sample seasonal-naive MAE on its
training part (season 24 for hourly weather, 1 for daily stocks); below 1
beats that in-sample naive. Coverage is the share of actuals inside
[q0.1, q0.9] (nominal 80%).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from forecasting.config.model import deep_merge

REPO = Path(__file__).resolve().parent.parent

# Every variant starts from the shipped config with the variant knobs reset, so a row
# differs from "LSTM direct" only by what its name says.
NEUTRAL = {
    "data": {"calendar": [], "target_transform": "none"},
    "window": {"min_length": None},
    "model": {"cell": "lstm", "head": "direct", "quantiles": [], "point": "auto"},
}
WEATHER_CALENDAR = {"calendar": ["hour_of_day"]}
VARIANTS: dict[str, dict[str, dict]] = {
    "weather": {
        "LSTM direct": {},
        "LSTM + calendar": {"data": WEATHER_CALENDAR},
        "GRU + calendar": {"data": WEATHER_CALENDAR, "model": {"cell": "gru"}},
        "LSTM + calendar, quantiles": {"data": WEATHER_CALENDAR, "model": {"quantiles": [0.1, 0.5, 0.9]}},
        "LSTM + calendar, seq2seq": {"data": WEATHER_CALENDAR, "model": {"head": "autoregressive"}},
        "RNN + calendar": {"data": WEATHER_CALENDAR, "model": {"cell": "rnn"}},
    },
    "stocks": {
        "LSTM direct": {},
        "LSTM + calendar": {"data": {"calendar": ["day_of_week", "day_of_year"]}},
        "GRU": {"model": {"cell": "gru"}},
        "LSTM, quantiles": {"model": {"quantiles": [0.1, 0.5, 0.9]}},
        "LSTM, log-return": {"data": {"target_transform": "log-return"}},
        "LSTM, log-return, quantiles, padding (shipped)": {
            "data": {"target_transform": "log-return"},
            "model": {"quantiles": [0.1, 0.5, 0.9]},
            "window": {"min_length": 20},
        },
    },
}
CONFIGS = {"weather": "configs/weather.yaml", "stocks": "configs/stocks.yaml"}


def in_sample_scales(config, frame) -> dict[str, float]:  # noqa: ANN001
    """Per series: mean |y_t - y_{t-m}| over its training part (the MASE denominator)."""
    from forecasting.prep.prepare import config_spec, select_training_frame
    from forecasting.prep.windows import SeriesPanel, chronological_split

    frame = select_training_frame(config, frame)
    panel = SeriesPanel.from_frame(frame)
    bounds = chronological_split(
        panel, config_spec(config), val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction
    )
    m = config.baseline.season_length
    scales = {}
    for i, sid in enumerate(panel.series_ids):
        y = panel.series_values(i)[: bounds.train_end[i], 0]
        scales[sid] = float(np.mean(np.abs(y[m:] - y[:-m])))
    return scales


def log_drift(config, frame) -> dict[str, float]:  # noqa: ANN001
    """Per series: the mean log-return of its training part (what an untrained log-return network forecasts)."""
    from forecasting.prep.prepare import config_spec, select_training_frame
    from forecasting.prep.windows import SeriesPanel, chronological_split

    frame = select_training_frame(config, frame)
    panel = SeriesPanel.from_frame(frame)
    bounds = chronological_split(
        panel, config_spec(config), val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction
    )
    return {
        sid: float(np.mean(np.diff(np.log(panel.series_values(i)[: bounds.train_end[i], 0]))))
        for i, sid in enumerate(panel.series_ids)
    }


def scores(actual: np.ndarray, pred: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    errors = np.abs(actual - pred)
    return {"MAE": float(errors.mean()), "MASE": float((errors / scale[:, None]).mean())}


def run(dataset: str, names: list[str], threads: int) -> list[dict]:
    from forecasting.evaluation.baselines import drift, naive, seasonal_naive
    from forecasting.config.model import parse_config
    from forecasting.data.sources.bundled import load_bundled

    from forecasting.train import fit

    base = yaml.safe_load((REPO / CONFIGS[dataset]).read_text())
    base = deep_merge(deep_merge(base, NEUTRAL), {"training": {"num_threads": threads}})
    config0 = parse_config(base)
    frame = load_bundled(config0.data.dataset)
    scales = in_sample_scales(config0, frame)
    rows, reference = [], None
    for name in names:
        config = parse_config(deep_merge(base, VARIANTS[dataset][name]), source=f"{dataset}: {name}")
        started = time.perf_counter()
        result = fit(config, frame)
        seconds = time.perf_counter() - started
        test = result.test
        scale = np.array([scales[result.series_ids[s]] for s in test.series])
        row = {"dataset": dataset, "model": name, **scores(test.actual, test.predicted, scale)}
        if "q0.1" in test.quantiles and "q0.9" in test.quantiles:
            inside = (test.actual >= test.quantiles["q0.1"]) & (test.actual <= test.quantiles["q0.9"])
            row["coverage"] = float(inside.mean())
        row["seconds"] = seconds
        row["epochs"] = result.forecaster.meta["epochs"]
        rows.append(row)
        print(_line(row), file=sys.stderr, flush=True)
        reference = test
    if reference is not None:
        season = config0.baseline.season_length
        scale = np.array([scales[result.series_ids[s]] for s in reference.series])
        horizon = reference.actual.shape[1]
        baselines = {
            f"seasonal naive ({season})": seasonal_naive(reference.lookback, horizon, season=season),
            "naive": naive(reference.lookback, horizon),
            "drift": drift(reference.lookback, horizon),
        }
        if season == 1:
            baselines.pop(f"seasonal naive ({season})")
        if dataset == "stocks":  # prices: the drift an untrained log-return network forecasts
            growth = log_drift(config0, frame)  # per series
            rate = np.array([growth[result.series_ids[s]] for s in reference.series])
            last = reference.lookback[:, -1:]
            baselines["naive x mean training log-return"] = last * np.exp(rate[:, None] * np.arange(1, horizon + 1))
        for name, pred in baselines.items():
            rows.append({"dataset": dataset, "model": name, **scores(reference.actual, pred, scale)})
        rows[-1]["windows"] = int(reference.actual.shape[0])
    return rows


def _line(row: dict) -> str:
    cov = f"{100 * row['coverage']:.1f}%" if "coverage" in row else "-"
    secs = f"{row['seconds']:.0f}" if "seconds" in row else "-"
    return f"| {row['dataset']} | {row['model']} | {row['MAE']:.4f} | {row['MASE']:.3f} | {cov} | {secs} |"


def table(rows: list[dict]) -> str:
    head = "| data | model | MAE | MASE | coverage (80% nominal) | train s |\n|---|---|---|---|---|---|"
    return "\n".join([head, *(_line(r) for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(VARIANTS), action="append")
    parser.add_argument("--variant", action="append", help="Variant name(s); default all.")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "1")))
    parser.add_argument("--out", type=Path, help="Also write the markdown table here.")
    args = parser.parse_args()
    rows = []
    for dataset in args.dataset or sorted(VARIANTS):
        names = [v for v in VARIANTS[dataset] if not args.variant or v in args.variant]
        rows += run(dataset, names, args.threads)
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
