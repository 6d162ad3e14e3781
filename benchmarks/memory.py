"""Peak memory of the project's training data pipeline and batch prediction, at n and 10 x n series.

    .venv/bin/python -m benchmarks.memory --series 64     # one size, in this process

The goal: peak RSS grows with the points, not with windows x lookback. The
harness runs this at the task's series count and at ten times it, each in a
fresh process, and compares the growth with both. Stages, with the library's
own functions in ``fit``'s order:

1. ``frame``: the observation frame is built (the input; O(points) by nature);
2. ``pipeline``: what ``fit`` builds before the Trainer: validated frame,
   ``SeriesPanel``, split, scaler, float32 model values, the training
   ``WindowIndex`` and ``WindowBatches``; then every batch of one epoch is
   drawn through the project's ``DataLoader`` (gathers only, no network);
3. ``predict``: ``predict_starts`` over every hold-out window (untrained net).

The peak RSS is reset before each stage (Linux ``/proc/self/clear_refs``) and
read after it, so every stage has its own peak; all figures are growth over
the RSS once the libraries are imported. The harness runs these jobs with
``MALLOC_MMAP_THRESHOLD_`` fixed at 1 MiB (``MEMORY_ENV`` in ``__main__``),
so RSS follows the arrays alive rather than what glibc's heap kept.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from benchmarks.task import Task, load


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Start a new peak (``VmHWM``) from the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def stage_peak_bytes() -> int:
    """Peak RSS since the last ``reset_peak`` (``VmHWM`` of ``/proc/self/status``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return peak_rss_bytes()


def run(task: Task) -> dict:
    """RSS after each stage, the peak, and the sizes to compare them with."""
    import numpy as np
    import torch

    from benchmarks.contestants.project import config
    from forecasting.inference import predict_starts
    from forecasting.prep.features import InputLayout, model_values
    from forecasting.model.forecaster import TrainedForecaster, build_network
    from forecasting.model.lightning import WindowBatches, WindowDataModule
    from forecasting.prep.scaling import SeriesScaler
    from forecasting.prep.prepare import config_spec, select_training_frame
    from forecasting.prep.windows import SeriesPanel, build_index, chronological_split

    base = rss_bytes()
    stages: dict[str, int] = {}
    peaks: dict[str, int] = {}

    def done(stage: str) -> None:
        stages[stage], peaks[stage] = rss_bytes() - base, stage_peak_bytes() - base
        reset_peak()

    reset_peak()
    data = load(task)
    cfg = config(data)
    frame = data.frame()
    del data  # the benchmark's own array; the frame is the input the library sees
    done("frame")

    t0 = time.perf_counter()
    spec = config_spec(cfg)
    layout = InputLayout.from_config(cfg)
    frame = select_training_frame(cfg, frame)
    panel = SeriesPanel.from_frame(frame)
    bounds = chronological_split(panel, spec, val_fraction=0.0, test_fraction=task.holdout_fraction)
    scaler = SeriesScaler.fit(panel, bounds.train_end)
    values = model_values(panel, layout, scaler, transform="none")  # (n_points, C) float32
    index = build_index(panel, spec, bounds, "train")
    batches = WindowBatches(
        torch.from_numpy(values), index, spec, past_columns=layout.past_columns, future_columns=layout.future_columns,
        codes=np.arange(1, panel.n_series + 1, dtype=np.int64), cumulative=False,
    )
    loader = WindowDataModule(batches, None, batch_size=task.batch_size, seed=task.seed).train_dataloader()
    drawn = sum(batch[0].shape[0] for batch in loader)
    pipeline_seconds = time.perf_counter() - t0
    done("pipeline")

    test = build_index(panel, spec, bounds, "test")
    torch.manual_seed(task.seed)
    trained = TrainedForecaster(cfg, scaler, build_network(cfg).state_dict())
    t0 = time.perf_counter()
    predict_starts(trained, panel, test.starts, scaler=scaler)
    predict_seconds = time.perf_counter() - t0
    done("predict")

    return {
        "n_series": panel.n_series, "points": int(panel.values.shape[0]), "train_windows": len(index),
        "drawn_windows": drawn, "holdout_windows": len(test),
        "stage_rss_delta": stages, "stage_peak_delta": peaks, "peak_rss_delta": max(peaks.values()),
        "windows_x_lookback_bytes": len(index) * task.lookback * 4,
        "pipeline_seconds": pipeline_seconds, "predict_seconds": predict_seconds,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=64)
    parser.add_argument("--points", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(run(Task(n_series=args.series, n_points=args.points)), indent=2))
