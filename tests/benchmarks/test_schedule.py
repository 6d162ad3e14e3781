"""The harness schedules each contestant for the measures it takes part in, alternating the order."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import Mode, Run, execute
from benchmarks.contestants import CONTESTANTS


@pytest.fixture
def scheduled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str | None, str]]:
    """Every job ``execute`` asks for, as (measure, contestant, label), without starting the workers."""
    jobs: list[tuple[str, str | None, str]] = []

    def record(self: Run, measure: str, task: object, contestant: str | None = None, label: str = "", repeats: int = 1) -> dict:
        jobs.append((measure, contestant, label))
        return {}

    monkeypatch.setattr(Run, "job", record)
    execute(Mode.quick(), list(CONTESTANTS), {"train", "predict", "weather"}, tmp_path, {})
    return jobs


def test_training_only_contestants_get_no_prediction_jobs(scheduled: list[tuple[str, str | None, str]]) -> None:
    def measures(name: str) -> set[str]:
        return {m if label != "weather" else "weather" for m, c, label in scheduled if c == name}

    assert measures("project") == {"train", "predict", "weather"}
    assert measures("project-fp32") == {"train", "predict", "weather"}
    assert measures("project-window") == {"train", "weather"}  # inference is project-fp32's (same network)
    assert measures("raw-ftz") == {"train", "weather"}


def test_repeats_rotate_the_order(scheduled: list[tuple[str, str | None, str]]) -> None:
    firsts = [c for m, c, label in scheduled if m == "train" and label != "weather"]
    per_round = len(firsts) // Mode.quick().repeats
    rounds = [firsts[i : i + per_round] for i in range(0, len(firsts), per_round)]
    assert sorted(rounds[0]) == sorted(rounds[1]) and rounds[0] != rounds[1]
    assert rounds[1] == rounds[0][1:] + rounds[0][:1]
