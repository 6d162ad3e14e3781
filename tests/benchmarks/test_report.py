"""The page renders the goals from results alone: a hand-made run, no peers installed, no training."""

from __future__ import annotations

from benchmarks import report
from benchmarks.task import Task

TASK = Task(n_series=4, n_points=500)
MB = 1024 * 1024


def _job(measure: str, contestant: str | None, result: dict, dataset: str = "synthetic") -> dict:
    return {"measure": measure, "contestant": contestant, "label": "", "dataset": dataset, "result": result,
            "seconds": 1.0, "load_before": 0.5, "load_after": 0.5}


def _trained(rate: float, mae: float, **extra: object) -> dict:
    return {"windows": 1000, "steps": 4, "train_seconds": 1000 / rate, "setup_seconds": 0.1, "mae": mae, "mase": mae,
            "baseline": {"mae": 1.0, "mase": 1.0}, "peak_rss_bytes": 100 * MB, **extra}


def _predicted(seconds: float, **extra: object) -> dict:
    return {"windows": 500, "inference_seconds": [seconds], "backtest_seconds": [seconds * 1.1],
            "peak_rss_bytes": 100 * MB, **extra}


def _converged(wall: float, mase: float, **extra: object) -> dict:
    return {"epochs": 4, "fit_wall_seconds": wall, "mase": mase, "mae": mase / 2, "baseline": {"mae": 1.0, "mase": 1.0},
            "steps": 16, "windows": 4000, "train_seconds": wall, "setup_seconds": 0.0, "peak_rss_bytes": 100 * MB, **extra}


def run(jobs: list[dict], contestants: list[str], peers: list[str]) -> dict:
    return {"mode": "smoke", "task": TASK.to_dict(), "weather_task": TASK.with_(dataset="weather").to_dict(),
            "converge_tasks": [TASK.with_(patience=1, max_epochs=3).to_dict()], "repeats": 1, "inner": 1,
            "contestants": contestants, "skipped": [], "peers": peers, "started": 0.0, "seconds": 60.0,
            "command": "python -m benchmarks --smoke", "jobs": jobs}


def test_goal_rows_from_a_hand_made_run() -> None:
    jobs = [
        _job("train", "project", _trained(4000, 0.20, precision="bf16-mixed", training_path={"forked_windows": 32})),
        _job("train", "darts", _trained(1000, 0.30)),
        _job("predict", "project", _predicted(0.5, inference_precision="bf16")),
        _job("predict", "project-fp32", _predicted(1.0, inference_precision="32")),
        _job("predict", "darts", _predicted(1.2)),
        # Two learning rates each: the contestant's own validation loss picks one (darts' better hold-out at 3e-3
        # must not be seen), and the time to accuracy is the fit time of both.
        *[_job("converge", name, _converged(wall, mase, learning_rate=rate, val_loss=val), dataset)
          for dataset in ("weather", "m1")
          for name, rate, wall, mase, val in (("project", 1e-3, 4.0, 0.95, 0.5), ("project", 3e-3, 6.0, 0.9, 0.3),
                                              ("darts", 1e-3, 20.0, 1.0, 0.2), ("darts", 3e-3, 10.0, 0.8, 0.4))],
    ]
    page = report.render(run(jobs, ["project", "project-fp32", "darts"], ["darts"]))
    goals = page.split("## Goals")[1].split("## Machine")[0]
    assert "| Default config: training >= 2x the best peer's windows/s at equal or better hold-out MAE (standard task) " \
           "| 4.00x darts; MAE 0.2000 vs 0.3000 (forked, 32 windows a chunk, bf16-mixed) | **yes** |" in goals
    for dataset in ("weather", "m1"):
        assert (f"| Time to accuracy ({dataset}): the default config reaches a hold-out MASE at least as good as the best "
                f"peer's in less than half of its wall time | MASE 0.900 in 10.0 s (lr 0.003 picked) vs darts 1.000 in "
                "30.0 s (lr 0.001); 0.33x its time, every rate tried counted | **yes** |") in goals
    assert "Inference and batch prediction >= 1.5x the best peer with the auto setting" in goals
    assert "| 2.40x darts (predicted in bf16) | **yes** |" in goals
    assert "| Inference no slower than the best peer in float32 | 1.20x darts (predicted in 32) | **yes** |" in goals
    assert "window by window" not in goals.split("GEMM ceiling")[0]
    table = page.split("## Time to accuracy (early-stopped)")[1].split("## Memory")[0]
    assert "| project | weather | 0.001 | 4.0 | 4.0 | 0.5 | 0.950 | 0.4750 |  |  | float32 |" in table
    assert "| project | weather | 0.003 | 4.0 | 6.0 | 0.3 | 0.900 | 0.4500 | **picked**: 10.0 s in all | 0.33x | float32 |" in table
    assert "| darts | m1 | 0.001 | 4.0 | 20.0 | 0.2 | 1.000 | 0.5000 | **picked**: 30.0 s in all | 1.00x | float32 |" in table
    assert "| darts | m1 | 0.003 | 4.0 | 10.0 | 0.4 | 0.800 | 0.4000 |  |  | float32 |" in table


def test_a_run_without_converge_or_peers_says_not_measured() -> None:
    jobs = [_job("train", "project", _trained(4000, 0.2)), _job("predict", "project", _predicted(0.5))]
    page = report.render(run(jobs, ["project"], []))
    goals = page.split("## Goals")[1].split("## Machine")[0]
    assert "| Time to accuracy (weather): the default config reaches a hold-out MASE at least as good as the best " \
           "peer's in less than half of its wall time | not measured | n/a |" in goals
    assert "| Inference no slower than the best peer in float32 | not measured | n/a |" in goals
    assert "Not measured in this run" in page.split("## Time to accuracy (early-stopped)")[1]


def _memory(n_series: int, pipeline_peak: float, predict_peak: float) -> dict:
    points = n_series * 2000
    return {"n_series": n_series, "points": points, "train_windows": n_series * 1600, "drawn_windows": n_series * 1600,
            "holdout_windows": n_series * 177, "windows_x_lookback_bytes": n_series * 1600 * 168 * 4,
            "pipeline_seconds": 1.0, "peak_rss_delta": predict_peak,
            "stage_rss_delta": {"frame": 0.0, "pipeline": pipeline_peak, "predict": pipeline_peak},
            "stage_peak_delta": {"frame": 0.0, "pipeline": pipeline_peak, "predict": predict_peak}}


def test_the_memory_goal_compares_bytes_per_added_point_with_materialised_windows() -> None:
    """Both the pipeline and prediction's transient must add less than half of what materialising their windows
    (lookback x 4 B each) would per added point: 200 and 20 B pass, a 40 B prediction fails (hold-out windows
    would add 177 / 2000 x 168 x 4 = 59.5 B a point)."""
    def goal(predict_per_point: float) -> str:
        small = _memory(64, 200 * 128000, 200 * 128000 + 30 * MB)
        big = _memory(640, 200 * 1280000, 200 * 1280000 + 30 * MB + predict_per_point * 1152000)
        page = report.render(run([_job("memory", None, small), _job("memory", None, big)], ["project"], []))
        return next(line for line in page.splitlines() if line.startswith("| Peak RSS grows"))

    assert goal(20).endswith("prediction: 20 B more transient peak per added point, its materialised hold-out windows "
                             "would add 59 B | **yes** |")
    assert goal(40).endswith("| **no** |")
