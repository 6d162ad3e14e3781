"""Render a benchmark run (the JSON ``python -m benchmarks`` writes) as ``docs/benchmarks.md``.

    .venv/bin/python -m benchmarks.report docs/benchmarks.json [--out docs/benchmarks.md]

Every figure is a median over the run's repeats; every ratio compares
figures of the same run. The hand-written findings (profiles, explanations)
live in ``benchmarks/findings.md`` and are included as they are.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path

from benchmarks.contestants import CONTESTANTS, DEFAULT, REFERENCE
from benchmarks.task import Task, lstm_flops

FINDINGS = Path(__file__).resolve().parent / "findings.md"
MB = 1024 * 1024


def _median(values: Iterable[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("**yes**" if flag else "**no**")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in rows]]


class Results:
    """Medians per contestant and measure, from the run's job records."""

    def __init__(self, run: dict) -> None:
        self.run = run
        self.task = Task.from_dict(run["task"])
        self.contestants: list[str] = run["contestants"]
        self.peers: list[str] = run["peers"]
        self.jobs: list[dict] = run["jobs"]

    def results(self, measure: str, contestant: str | None = None, dataset: str = "synthetic") -> list[dict]:
        return [
            j["result"] for j in self.jobs
            if j["measure"] == measure and "result" in j and j["contestant"] == contestant
            and (measure not in ("train", "predict", "converge") or j["dataset"] == dataset)
        ]

    def errors(self) -> list[dict]:
        return [j for j in self.jobs if "error" in j]

    def machine(self) -> dict:
        found = self.results("machine")
        return found[0] if found else {}

    def ceiling(self) -> float | None:
        return _median(r["ceiling_gflops"] for r in self.results("ceiling"))

    def train(self, contestant: str, dataset: str = "synthetic") -> dict | None:
        rs = self.results("train", contestant, dataset)
        if not rs:
            return None
        seconds = _median(r["train_seconds"] for r in rs)
        return {
            "runs": len(rs), "windows": rs[0]["windows"], "steps": rs[0]["steps"], "seconds": seconds,
            "rate": rs[0]["windows"] / seconds, "setup": _median(r["setup_seconds"] for r in rs),
            "mae": _median(r["mae"] for r in rs), "mase": _median(r["mase"] for r in rs),
            "baseline": rs[0]["baseline"], "rss": _median(r["peak_rss_bytes"] for r in rs),
            "rates": [r["windows"] / r["train_seconds"] for r in rs],
            "precision": rs[0].get("precision"), "forked": (rs[0].get("training_path") or {}).get("forked_windows"),
        }

    def predict(self, contestant: str) -> dict | None:
        rs = self.results("predict", contestant)
        if not rs:
            return None
        out = {"windows": rs[0]["windows"], "rss": _median(r["peak_rss_bytes"] for r in rs), "runs": len(rs)}
        for key in ("inference_seconds", "backtest_seconds", "network_seconds"):
            timings = [t for r in rs for t in (r.get(key) or [])]
            out[key] = _median(timings)
        return out

    def converge_rates(self, contestant: str, dataset: str) -> dict[float, dict]:
        """Medians of the early-stopped runs (``converge``) of ``contestant`` on ``dataset``, per learning rate."""
        by_rate: dict[float, list[dict]] = {}
        for r in self.results("converge", contestant, dataset):
            by_rate.setdefault(r.get("learning_rate", self.task.learning_rate), []).append(r)
        return {
            rate: {
                "runs": len(rs), "epochs": _median(r["epochs"] for r in rs),
                "wall": _median(r["fit_wall_seconds"] for r in rs), "mase": _median(r["mase"] for r in rs),
                "mae": _median(r["mae"] for r in rs), "val_loss": _median(r.get("val_loss") for r in rs),
                "baseline": rs[0]["baseline"], "precision": rs[0].get("precision"), "rate": rate,
            }
            for rate, rs in sorted(by_rate.items())
        }

    def converge(self, contestant: str, dataset: str) -> dict | None:
        """Time to accuracy of ``contestant`` on ``dataset``: the learning rate its own validation loss picks,
        with that run's hold-out scores, and as ``wall`` the fit time of every rate tried (finding the rate is
        part of the time a user waits); None if none ran.

        Without a validation loss for every rate (an older results file) the only, or first, rate's run counts.
        """
        rates = self.converge_rates(contestant, dataset)
        if not rates:
            return None
        known = [c for c in rates.values() if c["val_loss"] is not None]
        chosen = min(known, key=lambda c: c["val_loss"]) if len(known) == len(rates) else next(iter(rates.values()))
        return {**chosen, "wall": sum(c["wall"] for c in rates.values()), "chosen_wall": chosen["wall"],
                "tried": sorted(rates)}

    def season(self, dataset: str) -> int:
        """The seasonal-naive season of ``dataset``'s converge tasks (the standard task's otherwise)."""
        for raw in self.run.get("converge_tasks", []):
            if raw.get("dataset") == dataset:
                return int(raw.get("season", self.task.season))
        return self.task.season

    def converge_datasets(self) -> list[str]:
        """Datasets the run had ``converge`` jobs on (ran or failed), in run order: synthetic, weather, m1..."""
        return list(dict.fromkeys(j["dataset"] for j in self.jobs if j["measure"] == "converge"))

    def native_bf16(self) -> bool | None:
        """Whether the CPU computes bf16 natively (so 'auto' means bf16): from what the project resolved 'auto'
        to, else the machine's flags; None when neither is known."""
        for r in self.results("predict", DEFAULT) + self.results("train", DEFAULT):
            if r.get("inference_precision"):
                return r["inference_precision"] == "bf16"
        flags = self.machine().get("cpu", {}).get("flags", {})
        if not flags:
            return None
        return bool(flags.get("avx512_bf16") or flags.get("amx_bf16") or flags.get("amx_tile"))

    def best_peer(self, figure: Callable[[str], float | None], *, lower: bool = False) -> tuple[str | None, float | None]:
        """The peer with the best figure (highest, or lowest with ``lower``)."""
        scored = [(p, figure(p)) for p in self.peers if figure(p) is not None]
        if not scored:
            return None, None
        return (min if lower else max)(scored, key=lambda pair: pair[1])


def _goals(res: Results) -> list[str]:
    flops, ceiling = lstm_flops(res.task), res.ceiling()
    rows = []

    peer, peer_rate = res.best_peer(lambda p: (res.train(p) or {}).get("rate"))
    project_train = res.train(DEFAULT)
    goal = "Default config: training >= 2x the best peer's windows/s at equal or better hold-out MAE (standard task)"
    if project_train and peer_rate:
        speed = project_train["rate"] / peer_rate
        peer_mae = res.train(peer)["mae"]
        met = speed >= 2 and project_train["mae"] <= peer_mae
        how = ""
        if project_train["precision"]:
            forked = project_train["forked"] or 1
            how = f" ({f'forked, {forked} windows a chunk' if forked > 1 else 'window by window'}, {project_train['precision']})"
        rows.append([goal, f"{speed:.2f}x {peer}; MAE {project_train['mae']:.4f} vs {peer_mae:.4f}{how}", _yes(met)])
    else:
        rows.append([goal, "not measured", _yes(None)])
    # FLOPs per window are the window-by-window count: for the forked default it is an effective share.
    for name, path in ((DEFAULT, "default config"), ("project-window", "window by window, float32")):
        t = res.train(name)
        if name == DEFAULT and t and (t["forked"] or 1) > 1:
            path += ", effective: forking does fewer FLOPs per window"
        if t and ceiling:
            share = t["rate"] * flops["train"] / (ceiling * 1e9)
            rows.append([f"Training >= 40% of the GEMM ceiling ({path})", f"{share:.1%} of {ceiling:.0f} GFLOP/s",
                         _yes(share >= 0.4)])

    for dataset in res.converge_datasets() or ["weather"]:
        goal = (f"Time to accuracy ({dataset}): the default config reaches a hold-out MASE at least as good as the "
                "best peer's in less than half of its wall time")
        mine = res.converge(DEFAULT, dataset)
        peer, _ = res.best_peer(lambda p: (res.converge(p, dataset) or {}).get("mase"), lower=True)
        if not (mine and peer):
            rows.append([goal, "not measured", _yes(None)])
            continue
        theirs = res.converge(peer, dataset)
        met = mine["mase"] <= theirs["mase"] and mine["wall"] < theirs["wall"] / 2
        rows.append([goal, f"MASE {mine['mase']:.3f} in {mine['wall']:.1f} s (lr {mine['rate']:g} picked) vs {peer} "
                           f"{theirs['mase']:.3f} in {theirs['wall']:.1f} s (lr {theirs['rate']:g}); "
                           f"{mine['wall'] / theirs['wall']:.2f}x its time, every rate tried counted", _yes(met)])

    def inference_rate(p: str) -> float | None:
        pr = res.predict(p)
        return pr["windows"] / pr["inference_seconds"] if pr and pr["inference_seconds"] else None

    peer, peer_rate = res.best_peer(inference_rate)
    native = res.native_bf16()
    auto = {True: "auto = bf16 on this native-bf16 CPU", False: "this CPU has no native bf16: auto = float32",
            None: "auto"}[native]
    goals = ((DEFAULT, f"Inference and batch prediction >= 1.5x the best peer with the auto setting ({auto})", 1.5),
             ("project-fp32", "Inference no slower than the best peer in float32", 1.0))
    for name, goal, target in goals:
        rate = inference_rate(name)
        if rate and peer_rate:
            speed = rate / peer_rate
            used = next((r["inference_precision"] for r in res.results("predict", name) if r.get("inference_precision")), None)
            used = f"predicted in {used}" if used else "precision not recorded"
            rows.append([goal, f"{speed:.2f}x {peer} ({used})", _yes(speed >= target)])
        else:
            rows.append([goal, "not measured", _yes(None)])
    peer_bt = {p: (res.predict(p) or {}).get("backtest_seconds") for p in res.peers}
    peer_bt = {p: s for p, s in peer_bt.items() if s}
    for name, setting in ((DEFAULT, "auto"), ("project-fp32", "float32")):
        pred = res.predict(name)
        if not (pred and pred["backtest_seconds"]):
            continue
        ratio = pred["backtest_seconds"] / pred["inference_seconds"]
        rows.append([f"No-refit backtest within 1.2x of one batched pass over the same windows ({setting})",
                     f"{ratio:.2f}x", _yes(ratio <= 1.2)])
        if peer_bt:
            faster = all(pred["backtest_seconds"] < s for s in peer_bt.values())
            figure = f"{name} {pred['backtest_seconds']:.2f} s; " + ", ".join(
                f"{p} {s:.2f} s ({s / pred['backtest_seconds']:.2f}x its time)" for p, s in peer_bt.items()
            )
            rows.append([f"No-refit backtest faster than both peers ({setting})", figure, _yes(faster)])
    memory = _memory_rows(res)
    if len(memory) >= 2:
        small, big = memory[0], memory[-1]
        added = big["points"] - small["points"]
        pipeline = (big["stage_peak_delta"]["pipeline"] - small["stage_peak_delta"]["pipeline"]) / added
        windows = (big["windows_x_lookback_bytes"] - small["windows_x_lookback_bytes"]) / added
        predict = (_predict_transient(big) - _predict_transient(small)) / added
        holdout = (big["holdout_windows"] - small["holdout_windows"]) * res.task.lookback * 4 / added
        rows.append([f"Peak RSS grows with points, not windows x lookback ({small['n_series']} -> {big['n_series']} series)",
                     f"training pipeline: {pipeline:,.0f} B more peak per added point, materialised windows would "
                     f"add {windows:,.0f} B; prediction: {predict:,.0f} B more transient peak per added point, its "
                     f"materialised hold-out windows would add {holdout:,.0f} B",
                     _yes(pipeline < windows / 2 and predict < holdout / 2)])
    return _table(["goal", "this run", "met"], rows)


def _machine(res: Results) -> list[str]:
    m = res.machine()
    if not m:
        return ["(machine job failed)"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["cpu"]["flags"].items())
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    missing = [k for k, v in m["versions"].items() if not v]
    lines = [
        f"- CPU: {m['cpu']['model']}, {m['cores']} cores ({m['affinity']} usable); torch CPU capability {m['cpu_capability']}",
        f"- CPU flags: {flags}",
        f"- torch threads: {m['torch_threads']} (interop {m['torch_interop_threads']}); "
        f"OMP_NUM_THREADS={m['env']['OMP_NUM_THREADS']}, MKL_NUM_THREADS={m['env']['MKL_NUM_THREADS']}, "
        f"OMP_WAIT_POLICY={res.run.get('env', {}).get('OMP_WAIT_POLICY', 'unset (spin)')}; oneDNN {'on' if m['mkldnn'] else 'off'}",
        f"- torch parallel info: {'; '.join(m['parallel_info'])}",
        f"- packages: {versions}" + (f" (not installed: {', '.join(missing)})" if missing else ""),
    ]
    loads = [j[k] for j in res.jobs for k in ("load_before", "load_after")]
    if loads:
        lines.append(f"- 1-minute load average around the jobs: median {statistics.median(loads):.1f}, max {max(loads):.1f} "
                     f"on {m['cores']} cores (others share this machine: absolute figures move with it)")
    return lines


def _training(res: Results, dataset: str = "synthetic") -> list[str]:
    flops, ceiling = lstm_flops(res.task), res.ceiling()
    ref = res.train(REFERENCE, dataset)
    _, peer_rate = res.best_peer(lambda p: (res.train(p, dataset) or {}).get("rate"))
    rows = []
    for name in res.contestants:
        t = res.train(name, dataset)
        if t is None:
            rows.append([name, *["-"] * 11])  # the job failed: the run log says why
            continue
        share = t["rate"] * flops["train"] / (ceiling * 1e9) if ceiling and dataset == "synthetic" else None
        rows.append([
            name, f"{t['windows']:,}", f"{t['steps']:,}", _fmt(t["seconds"], ".1f"), f"{t['rate']:,.0f}",
            _ratio(t["rate"], ref and ref["rate"]), _ratio(t["rate"], peer_rate), _fmt(share, ".1%"),
            _fmt(t["setup"], ".1f"), f"{t['mae']:.4f}", f"{t['mase']:.3f}", _fmt(t["rss"] / MB, ",.0f"),
        ])
    base = next((res.train(n, dataset)["baseline"] for n in res.contestants if res.train(n, dataset)), None)
    if base:
        rows.append(["seasonal naive (24)", *["-"] * 8, f"{base['mae']:.4f}", f"{base['mase']:.3f}", "-"])
    header = ["contestant", "windows", "steps", "train s", "windows/s", "vs raw", "vs best peer", "of ceiling",
              "other s", "MAE", "MASE", "peak RSS MB"]
    return _table(header, rows)


def _prediction(res: Results) -> list[str]:
    flops, ceiling = lstm_flops(res.task), res.ceiling()

    def rate(name: str, key: str) -> float | None:
        p = res.predict(name)
        return p["windows"] / p[key] if p and p.get(key) else None

    ref = rate(REFERENCE, "inference_seconds")
    _, peer_inf = res.best_peer(lambda p: rate(p, "inference_seconds"))
    _, peer_bt = res.best_peer(lambda p: rate(p, "backtest_seconds"))
    rows = []
    for name in res.contestants:
        p = res.predict(name)
        if p is None:
            continue  # a training contestant only (raw-ftz, project-window)
        inf, bt = rate(name, "inference_seconds"), rate(name, "backtest_seconds")
        share = inf * flops["forward"] / (ceiling * 1e9) if inf and ceiling else None
        rows.append([
            name, f"{p['windows']:,}", _fmt(p["inference_seconds"], ".3f"), _fmt(inf), _ratio(inf, ref),
            _ratio(inf, peer_inf), _fmt(share, ".1%"), _fmt(p["backtest_seconds"], ".3f"), _fmt(bt),
            _ratio(p["backtest_seconds"], p["inference_seconds"]) if p["backtest_seconds"] else "-",
            _ratio(bt, peer_bt), _fmt(p["rss"] / MB, ",.0f"),
        ])
    header = ["contestant", "windows", "inference s", "windows/s", "vs raw", "vs best peer", "of ceiling",
              "backtest s", "windows/s", "backtest / own inference", "vs best peer", "peak RSS MB"]
    lines = _table(header, rows)
    project = res.predict("project")
    if project and project.get("network_seconds"):
        lines += ["", f"The project's bare network on pre-gathered windows took {project['network_seconds']:.3f} s "
                  f"({project['windows'] / project['network_seconds']:,.0f} windows/s): the rest of `predict_starts` "
                  "is scaling, gather and inverse scaling."]
    return lines


def _converge(res: Results) -> list[str]:
    datasets = res.converge_datasets()
    if not datasets:
        return ["Not measured in this run (`--measures converge`)."]
    rows = []
    for dataset in datasets:
        _, peer_wall = res.best_peer(lambda p: (res.converge(p, dataset) or {}).get("wall"), lower=True)
        base = None
        for name in res.contestants:
            c = res.converge(name, dataset)
            if c is None:
                if any(j["measure"] == "converge" and j["contestant"] == name and j["dataset"] == dataset for j in res.jobs):
                    rows.append([name, dataset, *["-"] * 8, "failed (see the run log)"])
                continue
            base = base or c["baseline"]
            for rate, r in res.converge_rates(name, dataset).items():
                picked = rate == c["rate"]
                rows.append([name, dataset, f"{rate:g}", _fmt(r["epochs"], ".1f"), _fmt(r["wall"], ".1f"),
                             _fmt(r["val_loss"], ".4g"), f"{r['mase']:.3f}", f"{r['mae']:.4f}",
                             f"**picked**: {c['wall']:.1f} s in all" if picked else "",
                             _ratio(c["wall"], peer_wall) if picked else "", r["precision"] or "float32"])
        if base:
            rows.append([f"seasonal naive ({res.season(dataset)})", dataset, "-", "-", "-", "-", f"{base['mase']:.3f}",
                         f"{base['mae']:.4f}", "-", "-", "-"])
    header = ["contestant", "dataset", "learning rate", "epochs", "wall s", "own val loss", "hold-out MASE", "MAE",
              "time to accuracy (every rate tried)", "vs best peer's", "training precision"]
    return _table(header, rows)


def _predict_transient(r: dict) -> int:
    """Peak RSS during prediction above what the pipeline left resident: what predicting itself allocates."""
    return r["stage_peak_delta"]["predict"] - r["stage_rss_delta"]["pipeline"]


def _memory_rows(res: Results) -> list[dict]:
    return sorted(res.results("memory"), key=lambda r: r["n_series"])


def _memory(res: Results) -> list[str]:
    rows = []
    for r in _memory_rows(res):
        s, p = r["stage_rss_delta"], r["stage_peak_delta"]
        rows.append([
            f"{r['n_series']:,}", f"{r['points']:,}", f"{r['train_windows']:,}", f"{r['holdout_windows']:,}",
            f"{r['windows_x_lookback_bytes'] / MB:,.0f}", f"{s['frame'] / MB:,.0f}", f"{p['pipeline'] / MB:,.0f}",
            f"{s['pipeline'] / MB:,.0f}", f"{p['predict'] / MB:,.0f}", f"{_predict_transient(r) / MB:,.0f}",
            f"{r['peak_rss_delta'] / MB:,.0f}",
            f"{r['drawn_windows'] / r['pipeline_seconds']:,.0f}",
        ])
    header = ["series", "points", "train windows", "hold-out windows", "windows x lookback x 4 B (MB)", "frame (MB)",
              "pipeline peak (MB)", "after pipeline (MB)", "predict peak (MB)", "of which predicting (MB)", "peak (MB)",
              "pipeline windows/s"]
    if not rows:
        return ["(memory jobs did not run)"]
    return [*_table(header, rows), "",
            "Goal test, between the two sizes: the extra peak per extra point of the training pipeline, and of "
            "prediction's transient (what predicting allocates above the resident data), must each stay under half "
            "of what materialising its windows (lookback x 4 bytes each: every training window, every hold-out "
            "window) would add per point. With series of equal length windows grow as fast as points, so only the "
            "bytes per point tell the two apart. Prediction's transient is its chunk (`inference.batch_size`) plus "
            "what grows with the windows predicted: the forecasts it returns (horizon x 8 bytes each), their "
            "indexes, and the scaled float32 copy of the data. Until 2026-12-05 the test asked that transient to "
            "grow less than 25% for 10x the points, which held only while a 1,024-window chunk outweighed the "
            "forecasts themselves."]

def _ceiling(res: Results) -> list[str]:
    found = res.results("ceiling")
    if not found:
        return ["(ceiling jobs did not run)"]
    t, flops = res.task, lstm_flops(res.task)
    rows = [[name, " x ".join(map(str, found[0]["shapes"][name])), _fmt(_median(r["gflops"][name] for r in found), ",.1f")]
            for name in found[0]["gflops"]]
    ceiling = res.ceiling()
    return [
        *_table(["GEMM", "m x k x n", "GFLOP/s (median of runs)"], rows), "",
        f"Ceiling: {ceiling:,.1f} GFLOP/s (best shape). FLOPs per window of the task's LSTM "
        f"(hidden {t.hidden}, {t.layers} layers, lookback {t.lookback}, horizon {t.horizon}, 1 input feature):",
        "",
        "    forward = sum over layers of lookback * 2 * 4H * (I_l + H)  +  2 * H * horizon",
        f"            = {t.lookback} * 2 * {4 * t.hidden} * ({1} + {t.hidden}) + {t.lookback} * 2 * {4 * t.hidden} * "
        f"({t.hidden} + {t.hidden}) + 2 * {t.hidden} * {t.horizon} = {flops['forward'] / 1e6:.1f} MFLOP",
        f"    training = 3 x forward (backward = gradients of inputs and of weights) = {flops['train'] / 1e6:.1f} MFLOP",
        "",
        f"So the ceiling allows about {ceiling * 1e9 / flops['train']:,.0f} training windows/s and "
        f"{ceiling * 1e9 / flops['forward']:,.0f} inference windows/s; 'of ceiling' in the tables is "
        "windows/s x FLOPs per window / ceiling. Elementwise gate work and the small heads are not counted.",
    ]


def _settings(res: Results) -> list[str]:
    t = res.task
    w = Task.from_dict(res.run["weather_task"])
    lines = [
        f"- Synthetic task: {t.n_series} series x {t.n_points:,} hourly points (daily + weekly seasonality, trend, "
        f"noise, seed {t.seed}); LSTM hidden {t.hidden} x {t.layers} layers, lookback {t.lookback}, horizon {t.horizon} "
        f"(direct), batch {t.batch_size}, Adam lr {t.learning_rate:g}, stride 1, {t.epochs} epoch, "
        f"{t.threads} threads; the peers and the raw loop in float32, the project in the precision its "
        "contestant names (`project`: 'auto').",
        f"- Hold-out: the last {t.holdout_fraction:.0%} of every series (at least one horizon): contestants train on "
        "the points before it and are scored on every origin whose 24 targets lie inside it, stride 1, in original "
        "units. MASE divides by each series' in-sample seasonal-naive (24) MAE over its training part "
        "(`forecasting.metrics.seasonal_naive_scale`).",
        "- Weather: the bundled hourly Seattle temperatures (`seattle_temps`, one series"
        + (f", its last {w.weather_points:,} points" if w.weather_points else "")
        + ", the one missing hour interpolated), same model, budget and hold-out rule.",
        "- Inference and backtest use the hold-out windows; their weights are untrained (speed does not depend on them).",
        *_converge_settings(res),
        f"- {res.run['repeats']} training process(es) per contestant, alternating in a rotated order; "
        f"{res.run.get('predict_repeats', res.run['repeats'])} prediction process(es) x {res.run['inner']} timings each, "
        "alternating likewise; medians over every timing.",
        "",
    ]
    for name in res.contestants:
        doc = ((importlib.import_module(CONTESTANTS[name]).__doc__ or "").strip() if name in CONTESTANTS
               else "(no longer in the harness: see the results file)")
        lines += [f"**{name}**", "", doc, ""]
    return lines


def _converge_settings(res: Results) -> list[str]:
    tasks = [Task.from_dict(t) for t in res.run.get("converge_tasks", [])]
    if not tasks or not res.converge_datasets():
        return []
    rates = sorted({task.learning_rate for task in tasks})
    lines = []
    for t in {task.dataset: task for task in tasks}.values():  # one line per dataset: the tasks differ only in rate
        if t.dataset == "m1":
            lines.append(
                f"- Time to accuracy on M1 monthly: the first {t.n_series} of its 617 series (sorted ids; 48 to 150 "
                "points), re-dated to end on the same month; LSTM hidden "
                f"{t.hidden} x {t.layers} layer, lookback {t.lookback}, horizon {t.horizon}, batch {t.batch_size}, Adam, "
                f"{t.threads} thread(s). Hold-out: the official {t.holdout_points}-month test part of "
                f"every series, one origin. Validation: the last {t.validation_points} points before it (one window per "
                f"series); early stopping after {t.patience} epochs without a better validation loss, at most "
                f"{t.max_epochs}. Series shorter than a window are left-padded (the project and NeuralForecast mask the "
                f"padding; Darts repeats the first value), keeping at least {t.min_length} observed lookback points; "
                "MASE divides by each series' in-sample seasonal-naive "
                f"({t.season}) MAE. The project's split keeps no validation part for series with fewer than "
                f"{(t.min_length or t.lookback) + 2 * t.horizon} training points (they train on all of them); the peers "
                "validate on them (see each contestant's notes).")
        else:
            lines.append(
                f"- Time to accuracy ({t.dataset}): the task above on {t.n_series} series, early-stopped (patience {t.patience} epochs, "
                f"at most {t.max_epochs}) on the same validation part, the last {t.val_fraction:.0%} of each series' "
                "training part (at least one horizon; the windows whose targets lie inside it); the hold-out is "
                "untouched.")
    lines.append(
        f"- Time to accuracy, every dataset: each contestant once per learning rate ({', '.join(f'{r:g}' for r in rates)}). "
        "Its own validation loss picks the rate (of the weights it forecasts with: the project restores its best "
        "epoch, the peers keep their last), and its time to accuracy is the fit time of every rate tried: a user does "
        "not know the rate beforehand. 'wall s' is the whole fit call, setup and validation included: what a user "
        "waits for.")
    return lines


def _run_log(res: Results) -> list[str]:
    rows = []
    for j in res.jobs:
        what = "-".join(p for p in (j["measure"], j["contestant"], j["label"]) if p)
        status = j.get("error", "ok")
        rows.append([what, j["dataset"], f"{j['seconds']:.1f}", f"{j['load_before']:.1f}", f"{j['load_after']:.1f}", status])
    return _table(["job", "data", "seconds", "load before", "load after", "status"], rows)


def render(run: dict) -> str:
    """The whole page."""
    res = Results(run)
    when = dt.datetime.fromtimestamp(run["started"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    findings = FINDINGS.read_text().strip() if FINDINGS.exists() else "(no benchmarks/findings.md)"
    t = res.task
    lines = [
        "# Benchmarks against the peers",
        "",
        f"<!-- Generated by `{run['command']}` (benchmarks/report.py) from {run.get('json', 'docs/benchmarks.json')}: "
        "do not edit by hand; edit benchmarks/findings.md for the findings section. -->",
        "",
        f"**Generated** by `{run['command']}` on {when} in {run['seconds'] / 60:.1f} min "
        f"({run['mode']} mode: {t.n_series} series x {t.n_points:,} points). Regenerate with `make bench` "
        "(quick) or `.venv/bin/python -m benchmarks --full`; see benchmarks/README.md.",
        "",
    ]
    if run["mode"] != "full":
        lines += ["> Quick mode: a smaller task than the standard one, for checking the harness. Only a "
                  "`--full` run speaks for the goals.", ""]
    if run.get("skipped"):
        lines += [f"> Not installed, so not run: {', '.join(run['skipped'])} (install the `bench` extra).", ""]
    if res.errors():
        lines += ["> Failed jobs: " + "; ".join(f"{j['measure']} {j['contestant'] or ''} {j['label']}: {j['error']}"
                                                 for j in res.errors()), ""]
    lines += ["## Goals", "", *_goals(res), "",
              "## Machine", "", *_machine(res), "",
              "## Training (synthetic task)", "",
              "`train s`: the training steps only (first epoch start to last batch end: data loading, forward, "
              "backward, optimiser); `other s`: the rest of the fit call (setup, and for the project scoring its "
              "test split). Ratios are of windows/s; MAE and MASE on the hold-out after the one-epoch budget.", "",
              *_training(res), "",
              "## Inference and no-refit backtest (hold-out windows)", "",
              "`inference`: each contestant's batch prediction over every hold-out window; `backtest`: its "
              "no-refit backtest over the same origins. 'backtest / own inference' is the project's goal "
              "(<= 1.2x).", "",
              *_prediction(res), "",
              "## Accuracy on real data (bundled weather series)", "",
              *_training(res, "weather"), "",
              "## Time to accuracy (early-stopped)", "",
              "Each contestant trained as a user would to a validation part: early stopping on the same validation "
              "windows for everyone, the hold-out untouched. `wall s` is the whole fit call; 'wall vs best peer's' "
              "divides by the fastest peer's.", "",
              *_converge(res), "",
              "## Memory (the project's data pipeline and prediction)", "",
              "RSS figures are growth over the process's RSS once the libraries are imported "
              "(`benchmarks/memory.py`).", "",
              *_memory(res), "",
              "## Hardware ceiling", "", *_ceiling(res), "",
              "## Findings and profiles", "", findings, "",
              "## Settings", "", *_settings(res),
              "## Run log", "", *_run_log(res), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", default=Path("docs/benchmarks.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    args.out.write_text(render(json.loads(args.results.read_text())))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
