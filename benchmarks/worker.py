"""One measurement in a fresh process: ``python -m benchmarks.worker '<json job>'``.

A fresh process per contestant and measure keeps peak RSS clean (each
process has only its own library loaded) and keeps one library's global
state (thread pools, denormal flags, patched classes) from leaking into the
next. Thread counts are set in the environment before torch is imported.
The result is printed as one JSON line starting with ``RESULT_PREFIX``;
anything else on stdout or stderr is the library's own chatter.

Jobs: ``{"measure": "train" | "converge" | "predict" | "memory" | "ceiling" | "machine",
"contestant": name, "task": Task fields, "repeats": n}``. ``converge`` is ``train``
on a task with early stopping (``patience`` set): the contestant stops on the
task's validation part and the result adds the epochs run and the fit call's
wall time.
"""

from __future__ import annotations

import json
import os
import sys
import time

RESULT_PREFIX = "BENCH_RESULT "


def _threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch

    torch.set_num_threads(n)


def run(job: dict) -> dict:
    """Run one job and return its JSON-able result, with the process's RSS figures added."""
    from benchmarks.memory import peak_rss_bytes, rss_bytes
    from benchmarks.task import Task, load

    task = Task.from_dict(job["task"])
    _threads(task.threads)
    import torch

    measure = job["measure"]
    started = time.perf_counter()
    rss_start = rss_bytes()
    if measure == "machine":
        from benchmarks import machine

        out = machine.describe()
    elif measure == "ceiling":
        from benchmarks import ceiling

        out = ceiling.run(task)
    elif measure == "memory":
        from benchmarks import memory

        out = memory.run(task)
    else:
        from benchmarks.contestants import module

        contestant = module(job["contestant"])
        data = load(task)
        if measure in ("train", "converge"):
            if (measure == "converge") != task.early_stopping:
                raise ValueError(f"measure {measure!r} with patience {task.patience}: converge needs it, train must not")
            out = contestant.train(data)
            forecasts = out.pop("forecasts")
            out |= data.score(forecasts)
            out["baseline"] = data.score(data.seasonal_naive())
            out["holdout_windows"] = data.holdout_windows
            out["val_windows"] = data.val_windows
            out["learning_rate"] = task.learning_rate
        elif measure == "predict":
            out = contestant.predict(data, int(job.get("repeats", 3)))
        else:
            raise ValueError(f"unknown measure {measure!r}")
    out["rss_start_bytes"] = rss_start
    out["peak_rss_bytes"] = peak_rss_bytes()
    out["threads"] = torch.get_num_threads()
    out["wall_seconds"] = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m benchmarks.worker '<json job>'")
    job = json.loads(argv[0])
    n = job["task"].get("threads", 2)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    result = run(job)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
