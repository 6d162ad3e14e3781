"""docs/python-api.md runs as written: every ```python block, in order, in one namespace, from a temp folder."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.conftest import REPO

PAGE = REPO / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_the_page_has_python_blocks():
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 6
    joined = "\n".join(blocks)
    for call in ("Forecaster.from_yaml", ".fit(df)", ".predict(", ".backtest(", ".save(", "Forecaster.load(", "from_registry("):
        assert call in joined, call


@pytest.mark.slow
def test_python_api_page_runs(tmp_path, monkeypatch, mlflow_store):
    # The page starts from the repository root; a copy of configs/ makes the temp folder one.
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path / "home"))  # the page keeps a FORECASTING_HOME it finds
    saved_env = dict(os.environ)
    namespace: dict = {"__name__": "__docs__"}
    try:
        for number, block in enumerate(python_blocks(PAGE.read_text()), start=1):
            try:
                exec(compile(block, f"{PAGE.name} block {number}", "exec"), namespace)  # noqa: S102 - our own docs
            except Exception as exc:
                raise AssertionError(f"block {number} of {PAGE.name} failed:\n{block}") from exc
    finally:
        os.environ.clear()
        os.environ.update(saved_env)  # apply_environment's defaults stay in the page's session

    settings, home = namespace["settings"], namespace["home"]
    assert home == tmp_path / "home"
    assert settings.mlflow_tracking_uri == os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{mlflow_store / 'mlflow.db'}"

    fc, df, forecasts = namespace["fc"], namespace["df"], namespace["forecasts"]
    horizon = fc.config.window.horizon
    assert list(forecasts.columns) == ["series_id", "origin", "timestamp", "step", "mean"]
    assert len(forecasts) == horizon and forecasts["step"].tolist() == list(range(1, horizon + 1))
    assert (forecasts["origin"] == df["timestamp"].max()).all()
    assert forecasts["mean"].notna().all()
    assert len(namespace["next_six"]) == 6 and len(namespace["first_hours"]) == 3

    run = namespace["run"]
    assert set(run.summary["forecaster"]) >= {"model", "naive", "seasonal_naive", "drift", "mean"}
    assert run.report.markdown.is_file() and run.report.directory == home / "backtests" / "notebook"
    assert (namespace["path"] / "weights.pt").is_file()

    champion = namespace["champion"]
    assert champion.ref is not None and champion.ref.version == namespace["ref"].version == "1"
    assert (mlflow_store / "mlflow.db").is_file()
