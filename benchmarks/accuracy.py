"""Accuracy against what users would otherwise run: python -m benchmarks.accuracy -> docs/accuracy.md.

One table per dataset, every method on the same hold-out origins:

- the default LSTM (the shipped config), the tuned LSTM (a config written by ``forecast tune``), the
  ensemble (``model.ensemble``), and the combination of the ensemble with AutoETS and AutoTheta ("comb");
- statsforecast's AutoETS, AutoTheta and SeasonalNaive, refitted per origin on the history up to it.

Scoring is the M competitions': MASE (test MAE over the in-sample seasonal-naive MAE of the history up
to the origin) and sMAPE (200·|e|/(|y|+|f|)), each averaged over series per step, then over steps
(``forecasting.evaluation.report.score_backtest``). The LSTMs are trained once on the data before the
hold-out and forecast every hold-out origin from the actuals up to it (no refit).

Data: M1 monthly (617 series, the official 18-step hold-out; benchmarks/data, see README there), the
bundled hourly and daily Seattle weather and the five bundled stocks. ``--quick`` runs M1 only with
fewer members; ``--datasets`` picks datasets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.machine import cpu, versions

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
OUT = ROOT / "docs" / "accuracy.md"


@dataclass(frozen=True)
class Dataset:
    """A frame, the config that forecasts it, and where its hold-out starts."""

    name: str
    title: str
    frame: Callable[[], pd.DataFrame]
    config: str
    tuned: str | None
    origins: int
    """Hold-out origins per series, a horizon apart, the last one leaving exactly a horizon of actuals."""


def m1_frame() -> pd.DataFrame:
    parts = [pd.read_csv(DATA / f"m1-monthly-{p}.csv.gz", parse_dates=["timestamp"]) for p in ("train", "test")]
    frame = pd.concat(parts, ignore_index=True).sort_values(["series_id", "timestamp"], ignore_index=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def bundled(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from forecasting.data.sources.bundled import load_bundled

        return load_bundled(name)

    return load


DATASETS: dict[str, Dataset] = {
    "m1": Dataset("m1", "M1 monthly (617 series, official 18-step hold-out)", m1_frame,
                  "configs/m1-monthly.yaml", "configs/tuned/m1-monthly.yaml", 1),
    "weather": Dataset("weather", "Hourly Seattle temperature (1 series, last 7 days, 24 h ahead)", bundled("seattle_temps"),
                       "configs/weather.yaml", None, 7),
    "weather_daily": Dataset("weather_daily", "Daily Seattle maximum temperature (1 series, last 8 weeks, 7 days ahead)",
                             bundled("seattle_weather"), "configs/weather_daily.yaml", None, 8),
    "stocks": Dataset("stocks", "Five stocks, daily adjusted close (last 20 sessions, 5 ahead)", bundled("stocks"),
                      "configs/stocks.yaml", None, 4),
}


@dataclass
class Row:
    method: str
    mase: float
    smape: float
    coverage: float | None
    seconds: float
    note: str = ""


def holdout_split(frame: pd.DataFrame, horizon: int, origins: int) -> pd.DataFrame:
    """The rows before the first hold-out target of each series: what every method may learn from."""
    position = frame.groupby("series_id").cumcount(ascending=False)  # 0 = the series' last row
    return frame[position >= horizon * origins].reset_index(drop=True)


def run_lstm(name: str, config, frame: pd.DataFrame, train: pd.DataFrame, origins: int, horizon: int):
    """Train on ``train``, backtest the hold-out origins of ``frame``: (result, row)."""
    from forecasting.config.backtest import BacktestConfig
    from forecasting.evaluation.backtest import backtest
    from forecasting.evaluation.report import score_backtest
    from forecasting.train import fit

    started = time.perf_counter()
    trained = fit(config, train).forecaster
    result = backtest(frame, BacktestConfig(origins=origins, stride=horizon, horizon=horizon, in_sample="include"), trained=trained,
                      model_version="benchmark")
    seconds = time.perf_counter() - started
    return trained, result, _row(name, score_backtest(result), seconds)


def _row(name: str, scores, seconds: float, forecaster: str = "model", note: str = "") -> Row:
    s = scores.summary.set_index("forecaster").loc[forecaster]
    coverage = s.get("coverage_80") if forecaster == "model" else None
    coverage = None if coverage is None or not np.isfinite(coverage) else float(coverage)
    return Row(name, float(s["mase"]), float(s["smape"]), coverage, seconds, note)


def statistical_rows(result, frame: pd.DataFrame, season: int) -> tuple[list[Row], dict[str, np.ndarray]]:
    """AutoETS, AutoTheta (refitted per origin on each series' whole history up to it) and SeasonalNaive."""
    from forecasting.evaluation.report import score_backtest
    from forecasting.evaluation.statistical import statistical_forecasts

    values = {s: g.set_index("timestamp")["target"] for s, g in frame.groupby("series_id")}
    origins = pd.to_datetime(result.origin, utc=True)
    histories = [values[result.series_ids[i]].loc[:o].to_numpy() for i, o in zip(result.series, origins, strict=True)]
    fitted = statistical_forecasts(histories, result.horizon, season=season, models=["ets", "theta"])
    rows, forecasts = [], {}
    for name, label in (("ets", "AutoETS"), ("theta", "AutoTheta")):
        forecasts[name] = fitted.forecasts[name]
        scored = score_backtest(_only(result, fitted.forecasts[name]))
        note = f"{fitted.fallbacks[name]} fits fell back to seasonal naive" if fitted.fallbacks[name] else ""
        rows.append(_row(label, scored, fitted.seconds[name], note=note))
    naive = score_backtest(_only(result, result.forecasts["seasonal_naive"]))
    rows.append(_row(f"SeasonalNaive (season {season})", naive, 0.0))
    return rows, forecasts


def _only(result, forecasts: np.ndarray):
    """``result`` with ``forecasts`` as the model's (scored against the same seasonal naive)."""
    return dataclasses.replace(
        result, forecasts={"model": forecasts, "seasonal_naive": result.forecasts["seasonal_naive"]}, quantiles={}
    )


def run_dataset(ds: Dataset, *, members: int, log: Callable[[str], None]) -> tuple[list[Row], dict]:
    from forecasting.config.backtest import BacktestConfig
    from forecasting.config.model import load_config
    from forecasting.evaluation.backtest import backtest
    from forecasting.evaluation.report import score_backtest
    from forecasting.model.forecaster import TrainedForecaster

    frame = ds.frame()
    base = load_config(ROOT / ds.config)
    horizon = base.window.horizon
    train = holdout_split(frame, horizon, ds.origins)
    quiet = {"baseline": base.baseline.model_copy(update={"statistical": []})}  # the stat rows are computed once below
    rows: list[Row] = []
    extra: dict = {"train_rows": len(train), "rows": len(frame), "series": int(frame["series_id"].nunique())}

    log(f"{ds.name}: default LSTM")
    default = base.model_copy(update=quiet)
    _, result, row = run_lstm("LSTM, default config", default, frame, train, ds.origins, horizon)
    rows.append(row)
    stat_rows, _ = statistical_rows(result, frame, base.baseline.season_length)

    if ds.tuned and (ROOT / ds.tuned).is_file():
        log(f"{ds.name}: tuned LSTM")
        tuned = load_config(ROOT / ds.tuned)
        rows.append(run_lstm("LSTM, tuned (forecast tune)", tuned.model_copy(update=quiet), frame, train, ds.origins, horizon)[2])

    log(f"{ds.name}: ensemble of {members}")
    ensemble_config = ensemble_of(base, members).model_copy(update=quiet)
    trained, result, row = run_lstm(f"LSTM ensemble ({members}, median)", ensemble_config, frame, train, ds.origins, horizon)
    row.note = ", ".join(f"lookback {m.config.window.lookback}" for m in trained.members[:3]) + ", ..."
    rows.append(row)
    extra["ensemble_train_seconds"] = trained.meta.get("wall_seconds")

    # comb: the same members; the forecast is the mean of their median, AutoETS and AutoTheta (ensemble.statistical)
    log(f"{ds.name}: comb (ensemble + AutoETS + AutoTheta)")
    ensemble = ensemble_config.model.ensemble.model_copy(update={"statistical": ["ets", "theta"]})
    comb_config = ensemble_config.model_copy(update={"model": ensemble_config.model.model_copy(update={"ensemble": ensemble})})
    comb = TrainedForecaster(config=comb_config, scaler=trained.scaler, state_dict={}, meta=trained.meta, members=trained.members)
    t0 = time.perf_counter()
    comb_result = backtest(frame, BacktestConfig(origins=ds.origins, stride=horizon, horizon=horizon, in_sample="include"), trained=comb,
                           model_version="benchmark")
    rows.append(_row("comb: mean of ensemble, AutoETS, AutoTheta", score_backtest(comb_result),
                     extra["ensemble_train_seconds"] + time.perf_counter() - t0))
    rows += stat_rows
    return rows, extra


def ensemble_of(config, members: int):
    """The benchmark's ensemble: ``members`` seeds over lookbacks of two and three seasons (where the config's
    lookback allows; else the config's own). Measured on M1: mixing lookbacks 24 and 36 gave 1.056 MASE where
    six seeds of one lookback gave 1.068-1.070; 1.5 seasons (18) was worse on its own (1.10)."""
    from forecasting.config.model import EnsembleConfig

    season, lookback = config.baseline.season_length, config.window.lookback
    lookbacks = [k * season for k in (2, 3) if season > 1 and season <= k * season <= lookback] or [lookback]
    ensemble = EnsembleConfig(members=members, lookbacks=lookbacks)
    return config.model_copy(update={"model": config.model.model_copy(update={"ensemble": ensemble})})


def markdown(tables: dict[str, tuple[Dataset, list[Row], dict]], started: float, args) -> str:
    machine = cpu()
    flags = ", ".join(f for f, on in machine["flags"].items() if on)
    lines = [
        "# Accuracy against statistical forecasters",
        "",
        f"Generated by `python -m benchmarks.accuracy{' --quick' if args.quick else ''}` on {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores of {machine['model']} ({flags}); {time.perf_counter() - started:.0f} s in all. "
        "Every method forecasts the same hold-out origins; the LSTMs learn only from the data before the hold-out, "
        "AutoETS and AutoTheta (statsforecast) are refitted at every origin on the series' whole history up to it.",
        "",
        "MASE: the hold-out MAE over the in-sample seasonal-naive MAE (the dataset's season) of the history up to "
        "the origin; sMAPE: 200·|e|/(|y|+|f|) in percent. Both are averaged over series per step, then over steps, "
        "as in the M competitions. Coverage: share of actuals inside [q0.1, q0.9] where the model has quantiles. "
        "Wall time: training + forecasting for the LSTMs (the ensemble's members one after another), fitting and "
        "forecasting for the statistical models. The hold-out is cut off before training, so every origin is out of "
        "sample (the backtests run with `in_sample: include`: M1's synthetic calendars end on different dates, which "
        "the backtest's own in-sample guard, working from the training data's last date, would count as in-sample).",
        "",
    ]
    for ds, rows, extra in tables.values():
        best_stat = min(r.mase for r in rows if r.method in ("AutoETS", "AutoTheta"))
        lines += [f"## {ds.title}", "",
                  f"{extra['series']} series, {extra['rows']:,} rows, {extra['train_rows']:,} before the hold-out; config "
                  f"`{ds.config}`.", "",
                  "| method | MASE | vs best of ETS/Theta | sMAPE % | 80% coverage | wall s | note |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            cov = "-" if r.coverage is None else f"{r.coverage:.1%}"
            lines.append(f"| {r.method} | {r.mase:.4f} | {r.mase / best_stat - 1:+.1%} | {r.smape:.2f} | {cov} | "
                         f"{r.seconds:.0f} | {r.note} |")
        lines.append("")
    if "m1" in tables:
        _, rows, extra = tables["m1"]
        by = {r.method: r for r in rows}
        ets, theta = by["AutoETS"].mase, by["AutoTheta"].mase
        best = min(ets, theta)
        ens = next(r for r in rows if r.method.startswith("LSTM ensemble"))
        comb = next(r for r in rows if r.method.startswith("comb"))
        single = by["LSTM, default config"]
        lines += [
            "## Goals (M1 monthly, this run)", "",
            f"- The ensemble or the combination beats both AutoETS ({ets:.4f}) and AutoTheta ({theta:.4f}) on MASE: "
            f"ensemble {ens.mase:.4f}, comb {comb.mase:.4f}: **{'met' if min(ens.mase, comb.mase) < best else 'not met'}**.",
            f"- The single default LSTM is within 5% of the better of the two: {single.mase:.4f} vs {best:.4f} "
            f"({single.mase / best - 1:+.1%}): **{'met' if single.mase <= 1.05 * best else 'not met'}**.",
            f"- The whole ensemble trains on the 617 series in under 10 minutes on 2 cores: "
            f"{extra['ensemble_train_seconds']:.0f} s: **{'met' if extra['ensemble_train_seconds'] < 600 else 'not met'}**.",
            "",
        ]
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items() if v), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="M1 only, 4 ensemble members")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    names = ["m1"] if args.quick else [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(DATASETS)}")
    members = 4 if args.quick else args.members
    started = time.perf_counter()
    tables = {}
    for name in names:
        rows, extra = run_dataset(DATASETS[name], members=members, log=lambda m: print(m, flush=True))
        tables[name] = (DATASETS[name], rows, extra)
        for r in rows:
            print(f"  {r.method:48s} MASE {r.mase:.4f}  sMAPE {r.smape:6.2f}  {r.seconds:6.0f} s {r.note}", flush=True)
    text = markdown(tables, started, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {name: {"rows": [dataclasses.asdict(r) for r in rows], **extra} for name, (_, rows, extra) in tables.items()}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
