"""The contestants the harness knows: the default config, its float32 twin, the window-by-window reference,
and which of them the converge (time to accuracy) measure schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import CONVERGE_RATES, Mode, Run, execute
from benchmarks.contestants import CONTESTANTS, CONVERGING, TRAINING_ONLY, project
from benchmarks.contestants.project_window import SETTINGS as WINDOW
from benchmarks.task import load


def test_project_contestants_are_the_default_float32_and_window_by_window() -> None:
    assert {"project", "project-fp32", "project-window"} <= set(CONTESTANTS)
    assert "project-window" in TRAINING_ONLY and "project-fp32" not in TRAINING_ONLY
    data = load(Mode.smoke().task)
    default = project.config(data)
    assert default.model.anchor == "auto" and default.training.forking == "auto"
    assert default.training.precision == "auto" and default.inference.precision == "auto"
    fp32 = project.config(data, project.FLOAT32)
    assert (fp32.model.anchor, fp32.training.precision, fp32.inference.precision) == ("auto", "32-true", "32")
    window = project.config(data, WINDOW)
    assert (window.model.anchor, window.training.forking, window.training.precision) == ("last", "off", "32-true")


def test_converge_runs_each_converging_contestant_once_per_dataset_and_learning_rate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jobs: list[tuple[str, str | None, object]] = []

    def record(self: Run, measure: str, task: object, contestant: str | None = None, label: str = "", repeats: int = 1) -> dict:
        jobs.append((measure, contestant, task))
        return {}

    monkeypatch.setattr(Run, "job", record)
    mode = Mode.quick()
    execute(mode, list(CONTESTANTS), {"converge"}, tmp_path, {})
    converge = [(c, t) for m, c, t in jobs if m == "converge"]
    assert sorted(c for c, _ in converge) == sorted(CONVERGING * len(mode.converge))
    datasets = ["synthetic", "weather", "m1"]
    assert list(dict.fromkeys(t.dataset for t in mode.converge)) == datasets
    assert {t.dataset for _, t in converge} == set(datasets)
    assert all(t.patience == 2 and t.max_epochs == 6 for _, t in converge if t.dataset != "m1")
    for dataset in datasets:
        for name in CONVERGING:
            rates = sorted(t.learning_rate for c, t in converge if c == name and t.dataset == dataset)
            assert rates == sorted(CONVERGE_RATES), (name, dataset, rates)
    m1 = next(t for t in mode.converge if t.dataset == "m1")
    assert (m1.n_series, m1.lookback, m1.horizon, m1.season, m1.holdout_points) == (200, 36, 18, 12, 18)
    assert list(dict.fromkeys(t.dataset for t in Mode.full().converge)) == datasets
    assert Mode.full().converge[-1].n_series == 617 and Mode.smoke().converge[-1].n_series == 40
    assert "raw" not in CONVERGING and {m for m, _, _ in jobs} == {"machine", "converge"}


def test_a_converge_run_reports_the_validation_loss_its_learning_rate_is_picked_by() -> None:
    """The learning-rate grid picks by each contestant's own validation loss: the project's run must carry it
    (the best epoch's, the one ``fit`` restores), recorded by the harness's timer from what Lightning logged."""
    import math

    data = load(Mode.smoke().converge[0].with_(n_series=2, max_epochs=2, patience=1))
    out = project.train(data)
    assert out["val_loss"] is not None and math.isfinite(out["val_loss"]) and out["val_loss"] > 0
    assert out["epochs"] == 2
