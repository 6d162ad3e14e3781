"""The architecture, enforced: import-linter's contracts in pyproject.toml (stages point down;
MLflow only in forecasting.registry; Prefect only in pipelines and the CLI; the network only in
forecasting.data.sources)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_a_lower_stage_importing_a_higher_one_breaks_the_contract(tmp_path):
    # A copy of the package where prep imports the registry (and so MLflow): both contracts must break.
    for name in ("forecasting", "pipelines"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bad = tmp_path / "forecasting" / "prep" / "leak.py"
    bad.write_text(textwrap.dedent('''
        from forecasting.registry import models
        import mlflow
    '''))
    result = subprocess.run([LINT, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Stages point down BROKEN" in result.stdout
    assert "Only forecasting.registry imports MLflow BROKEN" in result.stdout
    assert "forecasting.prep.leak" in result.stdout
