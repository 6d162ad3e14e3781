"""The contestants the harness knows: the default config, its float32 twin, the window-by-window reference,
and which of them the converge (time to accuracy) measure schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import Mode, Run, execute
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


def test_converge_runs_each_converging_contestant_once_per_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jobs: list[tuple[str, str | None, object]] = []

    def record(self: Run, measure: str, task: object, contestant: str | None = None, label: str = "", repeats: int = 1) -> dict:
        jobs.append((measure, contestant, task))
        return {}

    monkeypatch.setattr(Run, "job", record)
    mode = Mode.quick()
    execute(mode, list(CONTESTANTS), {"converge"}, tmp_path, {})
    converge = [(c, t) for m, c, t in jobs if m == "converge"]
    assert sorted(c for c, _ in converge) == sorted(CONVERGING * len(mode.converge))
    assert {t.dataset for _, t in converge} == {"synthetic", "weather"}
    assert all(t.patience == 2 and t.max_epochs == 6 for _, t in converge)
    assert "raw" not in CONVERGING and {m for m, _, _ in jobs} == {"machine", "converge"}
