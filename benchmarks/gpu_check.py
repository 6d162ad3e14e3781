"""The GPU check (issue 18): ``python -m benchmarks.gpu_check`` on a machine with a CUDA device.

The standard task (benchmarks/training_path.py: 64 series x 2,000 points, lookback 168, one epoch)
trained once each on CUDA by the default path (``anchor: auto`` -> delta, forked; ``precision:
auto`` -> bf16-mixed where the device has bf16), window by window (the old default: anchor last,
forking off) and a raw PyTorch loop, plus batch prediction over the hold-out in float32 and bf16.
Prints one markdown table and writes ``gpu_check.json`` to ``$OUT`` (the device tool's folder) or
``--out``; docs/benchmarks.md shows that file's figures under the GPU's name (``make gpu-check`` runs
the ``-m gpu`` tests first, all under a hard 8-minute timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from benchmarks.training_path import STANDARD, Runs, raw_loop, standard_frame
from forecasting.config.model import deep_merge

VARIANTS = {
    "default (anchor auto: delta, forked; precision auto)": {"training": {"accelerator": "auto"}},
    "window by window (anchor last, forking off)": {"model": {"anchor": "last"}, "training": {"forking": "off", "accelerator": "auto"}},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu_check.json")
    parser.add_argument("--series", type=int, default=64)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: the GPU check needs one (the CPU figures are in docs/benchmarks.md)")
    import logging

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    from forecasting.config.model import parse_config
    from forecasting.inference import predict_starts
    from forecasting.prep.prepare import window_indexes, config_spec, select_training_frame
    from forecasting.prep.windows import SeriesPanel, chronological_split
    from forecasting.train import fit

    frame = standard_frame(args.series, 2000)
    rows = []
    raw = Runs()
    raw_loop(frame, raw, threads=torch.get_num_threads(), seed=42, device="cuda")
    rows.append({"variant": "raw PyTorch loop (fp32)", "train_windows_per_s": raw.speed[0]})
    for name, overrides in VARIANTS.items():
        config = parse_config(deep_merge(deep_merge(STANDARD, overrides), {"training": {"num_threads": None}}))
        started = time.perf_counter()
        trained = fit(config, frame).forecaster
        wall = time.perf_counter() - started
        meta = trained.meta
        row = {
            "variant": name, "train_windows_per_s": meta["windows"]["train"] * max(1, meta["epochs"]) / meta["train_seconds"],
            "fit_seconds": wall, "test_mae": trained.metrics.get("test_mae"), "path": meta["training_path"],
            "precision": meta["hardware"]["precision"], "device": meta["hardware"]["device"],
        }
        panel = SeriesPanel.from_frame(select_training_frame(config, frame))
        spec = config_spec(config)
        bounds = chronological_split(panel, spec, val_fraction=config.split.val_fraction, test_fraction=config.split.test_fraction)
        starts = window_indexes(config, panel, spec, bounds, {})["test"].starts
        for precision in ("32", "bf16"):
            trained.config = config.model_copy(update={"inference": config.inference.model_copy(update={"precision": precision})})
            predict_starts(trained, panel, starts[:64])  # warm-up
            t0 = time.perf_counter()
            predict_starts(trained, panel, starts)
            row[f"inference_windows_per_s_{precision}"] = len(starts) / (time.perf_counter() - t0)
        rows.append(row)
        print(f"{name}: {row['train_windows_per_s']:,.0f} w/s, test MAE {row['test_mae']:.4f}", flush=True)
    ref = rows[0]["train_windows_per_s"]
    print(f"\n## GPU check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}\n")
    print("| variant | train windows/s | vs raw loop | test MAE | precision | inference w/s fp32 | bf16 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['train_windows_per_s']:,.0f}", f"{r['train_windows_per_s'] / ref:.2f}x",
                 f"{r['test_mae']:.4f}" if r.get("test_mae") is not None else "-", r.get("precision", "32-true"),
                 f"{r['inference_windows_per_s_32']:,.0f}" if "inference_windows_per_s_32" in r else "-",
                 f"{r['inference_windows_per_s_bf16']:,.0f}" if "inference_windows_per_s_bf16" in r else "-"]
        print(f"| {r['variant']} | " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows,
    }, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
