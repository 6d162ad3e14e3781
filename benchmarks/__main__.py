"""Run every benchmark against the peers and write ``docs/benchmarks.md``.

    .venv/bin/python -m benchmarks --quick     # 16 series x 700 points, 2 repeats: a few minutes
    .venv/bin/python -m benchmarks --full      # the standard task, 3 repeats: under an hour
    .venv/bin/python -m benchmarks --smoke     # tiny sizes, 1 thread: checks the harness end to end
    .venv/bin/python -m benchmarks --quick --contestants project,raw   # no peers installed
    .venv/bin/python -m benchmarks.report docs/benchmarks.json         # re-render the page only

The peers come with the ``bench`` extra (``make bench`` installs it and runs
the quick mode). Each contestant x measure runs in its own process
(``benchmarks.worker``), with the thread count in the environment before
torch loads; training jobs alternate contestants within every repeat, in a
rotated order, so background load hits all of them alike; figures are
medians. The machine is shared: absolute figures move with its load (the
page records the load average around every job), ratios from one run are
what to compare.

``converge`` (time to accuracy) trains each contestant of ``CONVERGING`` once
per dataset (synthetic, weather, M1 monthly) and learning rate of
``CONVERGE_RATES``, with early stopping on the same validation part, and
records each fit call's wall time, its validation
loss and the hold-out MASE it reached. The page then takes, per contestant,
the run its own validation loss picks, at the cost of every rate tried: a
user does not know the right rate beforehand, and the peers' best rate is
not the project's (on hourly weather NeuralForecast does better at 1e-3,
the project at 3e-3).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from benchmarks.contestants import CONTESTANTS, CONVERGING, PEERS, TRAINING_ONLY
from benchmarks.task import Task, m1_task
from benchmarks.worker import RESULT_PREFIX

REPO = Path(__file__).resolve().parent.parent
CONVERGE_RATES: tuple[float, ...] = (1e-3, 3e-3)
"""The learning rates every contestant of ``converge`` is tried at; the standard task's 1e-3 among them."""
PEER_PACKAGES = {"darts": "darts", "neuralforecast": "neuralforecast"}


MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
"""For the memory jobs: glibc serves every allocation of 1 MiB or more by mmap and unmaps it when freed.
By default the threshold grows after such frees, so later arrays come from a heap that keeps freed
memory, and a stage's peak RSS depended on what earlier stages had freed (about 10 MB between runs of the
same job); fixed, it follows the arrays alive (same job twice: within 1 MB)."""


@dataclass(frozen=True)
class Mode:
    """Sizes and repeats of one run."""

    name: str
    task: Task
    weather: Task
    repeats: int
    """Training jobs per contestant (each a fresh process); predict jobs likewise, ``inner`` timings each."""
    inner: int
    memory_series: tuple[int, int]
    job_timeout: float
    converge: tuple[Task, ...] = ()
    """The early-stopped tasks of the ``converge`` measure, one per dataset."""
    predict_repeats: int | None = None
    """Predict jobs per contestant (default ``repeats``). On a 2-vCPU guest a process runs inference in a
    fast or a slow regime and stays there (findings 2b), so inference needs more processes than training."""

    @property
    def predict_processes(self) -> int:
        return self.repeats if self.predict_repeats is None else self.predict_repeats

    @staticmethod
    def _converging(tasks: tuple[Task, ...], max_epochs: int, patience: int) -> tuple[Task, ...]:
        """Each task early-stopped, once per learning rate of ``CONVERGE_RATES``."""
        return tuple(t.with_(max_epochs=max_epochs, patience=patience, learning_rate=rate)
                     for t in tasks for rate in CONVERGE_RATES)

    @classmethod
    def quick(cls) -> Mode:
        task = Task(n_series=16, n_points=700)
        weather = task.with_(dataset="weather", weather_points=2000)
        # M1 on its first 200 series (sorted ids), its own window and network (``m1_task``).
        m1 = m1_task(n_series=200, threads=task.threads)
        converge = (*cls._converging((task, weather), 6, 2), *cls._converging((m1,), 20, 3))
        return cls("quick", task, weather, 2, 2, (100, 1000), 900.0, converge)

    @classmethod
    def full(cls) -> Mode:
        task = Task()
        weather = task.with_(dataset="weather")
        # Time to accuracy on an eighth of the synthetic series, at two learning rates: early-stopped
        # window-by-window peers at the full size would take most of an hour each on 2 cores. On weather an
        # epoch of the default config costs about half a second: a cap of 20 stopped it still improving.
        converge = (*cls._converging((task.with_(n_series=8),), 12, 3), *cls._converging((weather,), 60, 3),
                    *cls._converging((m1_task(threads=task.threads),), 60, 3))  # all 617 M1 series
        return cls("full", task, weather, 3, 3, (64, 640), 3600.0, converge, predict_repeats=5)

    @classmethod
    def smoke(cls) -> Mode:
        """Tiny sizes on one thread: every job runs, in a few minutes, on a busy machine; the figures mean nothing."""
        task = Task(n_series=4, n_points=500, threads=1)
        weather = task.with_(dataset="weather", weather_points=1000)
        m1 = m1_task(n_series=40, threads=1)
        return cls("smoke", task, weather, 1, 1, (20, 200), 600.0, cls._converging((task, weather, m1), 3, 1))


@dataclass
class Run:
    """Jobs done so far, each with its result or error and the load average around it."""

    mode: Mode
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for every worker (e.g. ``OMP_WAIT_POLICY``)."""
    jobs: list[dict] = field(default_factory=list)

    def job(self, measure: str, task: Task, contestant: str | None = None, label: str = "", repeats: int = 1) -> dict:
        """Run one worker process; record and return the job with its ``result`` or ``error``."""
        spec = {"measure": measure, "contestant": contestant, "task": task.to_dict(), "repeats": repeats}
        name = "-".join(p for p in (measure, contestant, label) if p)
        env = dict(os.environ, OMP_NUM_THREADS=str(task.threads), MKL_NUM_THREADS=str(task.threads),
                   PYTHONPATH=str(REPO), DO_NOT_TRACK="true", MPLCONFIGDIR=str(self.log_dir / "mpl"), **self.env)
        if measure == "memory":
            env.update(MEMORY_ENV)
        record = {"measure": measure, "contestant": contestant, "label": label, "dataset": task.dataset,
                  "load_before": os.getloadavg()[0]}
        print(f"[{len(self.jobs) + 1:>3}] {name:<40}", end=" ", flush=True)
        t0 = time.perf_counter()
        log = self.log_dir / f"{len(self.jobs) + 1:03d}-{name}.log"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.worker", json.dumps(spec)], cwd=REPO, env=env,
                capture_output=True, text=True, timeout=self.mode.job_timeout,
            )
            log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
            if proc.returncode or not lines:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                record["error"] = f"exit {proc.returncode}: {tail}"
            else:
                record["result"] = json.loads(lines[-1][len(RESULT_PREFIX):])
        except subprocess.TimeoutExpired:
            record["error"] = f"timed out after {self.mode.job_timeout:.0f} s"
        record["seconds"] = time.perf_counter() - t0
        record["load_after"] = os.getloadavg()[0]
        print(f"{record['seconds']:7.1f} s  {_summary(record)}", flush=True)
        self.jobs.append(record)
        return record


def _summary(record: dict) -> str:
    if "error" in record:
        return f"FAILED ({record['error']}; log in the run's log folder)"
    r = record["result"]
    if record["measure"] == "train":
        return f"{r['windows'] / r['train_seconds']:8.0f} windows/s  MAE {r['mae']:.4f}"
    if record["measure"] == "converge":
        val = "-" if r.get("val_loss") is None else f"{r['val_loss']:.4g}"
        return f"{r['epochs']:5.1f} epochs  {r['fit_wall_seconds']:7.1f} s  val loss {val}  MASE {r['mase']:.3f}"
    if record["measure"] == "predict":
        return f"{r['windows'] / min(r['inference_seconds']):8.0f} windows/s (best)"
    if record["measure"] == "ceiling":
        return f"{r['ceiling_gflops']:.1f} GFLOP/s"
    return ""


def available(names: list[str]) -> tuple[list[str], list[str]]:
    """Contestants whose libraries are installed, and the skipped peers (the ``bench`` extra is missing)."""
    keep, skipped = [], []
    for name in names:
        package = PEER_PACKAGES.get(name)
        (skipped if package and find_spec(package) is None else keep).append(name)
    return keep, skipped


def execute(mode: Mode, contestants: list[str], measures: set[str], log_dir: Path, env: dict[str, str]) -> Run:
    """Every job of the run, in the order that keeps the comparisons fair."""
    run = Run(mode, log_dir, env)
    run.job("machine", mode.task)
    if "ceiling" in measures:
        run.job("ceiling", mode.task, label="start")
    for r in range(mode.repeats if "train" in measures else 0):
        order = contestants[r % len(contestants):] + contestants[: r % len(contestants)]
        for name in order:
            run.job("train", mode.task, name, label=f"r{r + 1}")
    # Flushing denormals changes nothing without a backward pass, and inference is window by window
    # whichever path trained the network: raw-ftz and project-window are training contestants only.
    predictors = [c for c in contestants if c not in TRAINING_ONLY]
    for r in range(mode.predict_processes if "predict" in measures and predictors else 0):
        order = predictors[r % len(predictors):] + predictors[: r % len(predictors)]
        for name in order:
            run.job("predict", mode.task, name, label=f"r{r + 1}", repeats=mode.inner)
    if "weather" in measures:
        for name in contestants:
            run.job("train", mode.weather, name, label="weather")
    converging = [c for c in contestants if c in CONVERGING]
    for i, task in enumerate(mode.converge if "converge" in measures and converging else ()):
        order = converging[i % len(converging):] + converging[: i % len(converging)]
        for name in order:
            run.job("converge", task, name, label=f"{task.dataset}-lr{task.learning_rate:g}")
    if "memory" in measures:
        for n in mode.memory_series:
            run.job("memory", mode.task.with_(n_series=n), label=f"{n}series")
    if "ceiling" in measures:
        run.job("ceiling", mode.task, label="end")
    return run


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="16 series x 700 points, 2 repeats (the default)")
    size.add_argument("--full", action="store_true", help="the standard task: 64 series x 2,000 points, 3 repeats")
    size.add_argument("--smoke", action="store_true", help="4 series x 500 points, 1 thread, 1 repeat: checks the harness")
    parser.add_argument("--repeats", type=int, help="override the mode's repeats")
    parser.add_argument("--contestants", default=",".join(CONTESTANTS), help=f"comma-separated, from {list(CONTESTANTS)}")
    parser.add_argument("--measures", default="ceiling,train,predict,weather,converge,memory", help="comma-separated subset")
    parser.add_argument(
        "--passive", action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for every worker: on a machine busy with other work, spinning OpenMP "
        "threads slow a 2-thread LSTM several-fold (see docs/benchmarks.md); on an idle one it costs a little",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, help="raw results (default: next to --out, .json)")
    args = parser.parse_args(argv)

    mode = Mode.full() if args.full else Mode.smoke() if args.smoke else Mode.quick()
    if args.repeats:
        mode = Mode(**{**mode.__dict__, "repeats": args.repeats, "predict_repeats": None})
    wanted = [c.strip() for c in args.contestants.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CONTESTANTS]
    if unknown:
        parser.error(f"unknown contestant(s) {unknown}; known: {list(CONTESTANTS)}")
    contestants, skipped = available(wanted)
    if skipped:
        print(f"skipping {skipped}: not installed (pip install -e '.[bench]', or `make bench`)")
    measures = {m.strip() for m in args.measures.split(",") if m.strip()}

    started = time.time()
    # Worker logs are kept after the run: a failed job's page cell points at them.
    log_dir = Path(os.environ.get("BENCH_LOG_DIR") or tempfile.mkdtemp(prefix="bench-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{mode.name} mode: {contestants}, measures {sorted(measures)}; worker logs in {log_dir}")
    env = {"OMP_WAIT_POLICY": "PASSIVE"} if args.passive else {}
    run = execute(mode, contestants, measures, log_dir, env)
    results = {
        "mode": mode.name, "task": mode.task.to_dict(), "weather_task": mode.weather.to_dict(),
        "converge_tasks": [t.to_dict() for t in mode.converge],
        "repeats": mode.repeats, "predict_repeats": mode.predict_processes, "inner": mode.inner, "contestants": contestants, "skipped": skipped,
        "peers": [p for p in PEERS if p in contestants], "started": started, "seconds": time.time() - started,
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv), "log_dir": str(log_dir),
        "jobs": run.jobs,
    }
    json_path = args.json or args.out.with_suffix(".json")
    results["json"] = os.path.relpath(json_path, REPO)
    results["env"] = env
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1))
    from benchmarks import report

    args.out.write_text(report.render(results))
    print(f"wrote {args.out} and {json_path} in {results['seconds'] / 60:.1f} min")
    return args.out


if __name__ == "__main__":
    main()
