"""Windows per forward pass at inference (``inference.batch_size``): speed against the current default.

    .venv/bin/python -m benchmarks.inference_batch                 # standard task, 2 threads
    .venv/bin/python -m benchmarks.inference_batch --sizes 64,256,1024 --repeats 5

An LSTM's recurrence multiplies a ``(batch, hidden)`` state by its weights
at every step; with a small batch the state and the gate activations stay
in the core's cache across the 168 steps, with a large one every step goes
to memory. So the best batch is a property of the CPU's caches, and the
default is chosen by this measurement: ``predict_starts`` (the project's one
inference path: gather, scale, network, inverse scale) over the standard
task's hold-out windows, float32 and bf16, each batch size timed
``repeats`` times in a rotated order within one process, the median divided
by the reference (``REFERENCE``, the default before this measurement) of the
same run. Weights are untrained: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

REFERENCE = 1024


def measure(sizes: list[int], precisions: list[str], repeats: int, threads: int) -> list[dict]:
    """Median seconds of ``predict_starts`` per (precision, batch size), with the ratio to ``REFERENCE``'s."""
    import torch

    torch.set_num_threads(threads)
    from dataclasses import replace

    from benchmarks.contestants import project
    from benchmarks.task import Task, load
    from forecasting.inference import predict_starts

    data = load(Task(threads=threads))
    frame = data.frame()
    panel, starts = project._panel_and_starts(data, frame)
    rows = []
    for precision in precisions:
        cfg = project.config(data, project.Settings(inference_precision=precision))
        base = project.untrained(data, cfg, panel)
        scaler = base.scaler
        trained = {
            size: replace(base, config=cfg.model_copy(update={"inference": cfg.inference.model_copy(update={"batch_size": size})}))
            for size in sizes
        }
        timings: dict[int, list[float]] = {size: [] for size in sizes}
        for size in sizes:  # warm-up: oneDNN primitives are built per shape
            predict_starts(trained[size], panel, starts[: 2 * size], scaler=scaler)
        for r in range(repeats):
            for size in sizes[r % len(sizes):] + sizes[: r % len(sizes)]:
                t0 = time.perf_counter()
                predict_starts(trained[size], panel, starts, scaler=scaler)
                timings[size].append(time.perf_counter() - t0)
        reference = statistics.median(timings[REFERENCE]) if REFERENCE in timings else None
        for size in sizes:
            median = statistics.median(timings[size])
            rows.append({"precision": precision, "batch_size": size, "seconds": median, "all": timings[size],
                         "windows_per_second": len(starts) / median,
                         "speed_vs_reference": reference / median if reference else None})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64,128,256,512,1024,4096")
    parser.add_argument("--precisions", default="32,bf16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    from benchmarks.machine import describe

    machine = describe()
    flags = machine.get("cpu", {}).get("flags", {})
    print(f"CPU: {machine.get('cpu', {}).get('model', '?')}; flags: {', '.join(k for k, v in flags.items() if v)}; "
          f"threads {args.threads}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    sizes = [int(s) for s in args.sizes.split(",")]
    if REFERENCE not in sizes:
        sizes.append(REFERENCE)
    rows = measure(sizes, args.precisions.split(","), args.repeats, args.threads)
    print(f"{'precision':>9} {'batch':>6} {'median s':>9} {'windows/s':>10} {'vs ' + str(REFERENCE):>8}")
    for r in rows:
        print(f"{r['precision']:>9} {r['batch_size']:>6} {r['seconds']:9.3f} {r['windows_per_second']:10,.0f} "
              f"{r['speed_vs_reference']:7.2f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "threads": args.threads, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
