"""docs/your-data.md runs as written: every ```bash block, in order, in real `forecast` processes, from a temp folder.

The page's model config is used as shipped except for fewer epochs, so the
walk from a CSV to forecasts dated on local days takes minutes, not more.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO

PAGE = REPO / "docs" / "your-data.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)


def bash_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_the_page_walks_ingest_train_backtest_predict_with_the_shipped_files() -> None:
    text = PAGE.read_text()
    joined = "\n".join(bash_blocks(text))
    for step in ("forecast ingest --file", "forecast ingest --config configs/ingest/example-files.yaml",
                 "forecast train --config configs/example-files.yaml", "forecast backtest", "forecast predict"):
        assert step in joined, step
    for path in ("data/seattle_daily.csv", "../configs/ingest/example-files.yaml", "../configs/example-files.yaml"):
        assert f"]({path})" in text and (PAGE.parent / path).resolve().is_file(), path
    assert "## Your own data" in (REPO / "README.md").read_text()


@pytest.mark.slow
def test_your_data_page_runs_end_to_end(tmp_path, prefect_harness) -> None:
    from prefect.settings import PREFECT_API_URL

    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copytree(REPO / "docs" / "data", tmp_path / "docs" / "data")
    model = tmp_path / "configs" / "example-files.yaml"
    raw = yaml.safe_load(model.read_text())
    raw["training"]["max_epochs"] = 2
    raw["baseline"]["statistical"] = []  # ETS/Theta refits add minutes and are tested elsewhere
    model.write_text(yaml.safe_dump(raw))

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "FORECASTING_HOME")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        FORECASTING_HOME=str(tmp_path / ".forecasting"),
        PREFECT_API_URL=str(PREFECT_API_URL.value()),  # the session's server: no temporary one per command
        COLUMNS="200",
    )
    outputs = []
    for number, block in enumerate(bash_blocks(PAGE.read_text()), start=1):
        done = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        outputs.append(done.stdout)
        assert done.returncode == 0, f"block {number} of {PAGE.name} failed:\n{block}\n{done.stdout}\n{done.stderr}"

    assert "frequency: D in America/Los_Angeles (inferred from the file" in outputs[0]
    home = tmp_path / ".forecasting"
    stored = pd.read_parquet(home / "store" / "my_daily" / "seattle.parquet")
    assert len(stored) == 1461 and stored["timestamp"].iloc[0] == pd.Timestamp("2012-01-01 08:00", tz="UTC")
    assert not (home / "store" / "my_daily" / "_quarantine").exists()
    assert (home / "backtests" / "my-daily").is_dir()
    (path,) = (home / "forecasts" / "my-daily").glob("*.parquet")
    forecasts = pd.read_parquet(path)
    assert forecasts["date"].dt.strftime("%Y-%m-%d").tolist() == [f"2016-01-0{d}" for d in range(1, 8)]
    assert forecasts["timestamp"].iloc[0] == pd.Timestamp("2016-01-01 08:00", tz="UTC")
    assert "2016-01-01" in outputs[-1] and "seattle" in outputs[-1]
