"""A person browsing models: the MLflow UI, served over a store the train flow made, in headless Chromium."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# STACK.md: without the background flags Chromium floods the closed network.
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui_store(tmp_path_factory, prefect_harness):
    from forecasting.data.sources.bundled import load_bundled
    from forecasting.data.store import ObservationStore
    from pipelines.train import train_flow

    home = tmp_path_factory.mktemp("ui-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    ObservationStore(home / "store").upsert("seattle_weather", load_bundled("seattle_weather"))
    raw = tiny_config_dict(name="ui-seattle-daily", description="Daily Seattle maximum temperature, next week.",
                           data={"dataset": "seattle_weather", "freq": "D"},
                           window={"lookback": 28, "horizon": 7, "stride": 3}, baseline={"season_length": 7},
                           training={"max_epochs": 1},
                           promotion={"must_beat": []})  # the page needs a champion; a 1-epoch model barely beats naive
    (home / "ui.yaml").write_text(yaml.safe_dump(raw))
    summary = train_flow(str(home / "ui.yaml"), home=str(home))
    yield home, summary
    mp.undo()


@pytest.fixture(scope="module")
def mlflow_server(ui_store):
    home, _ = ui_store
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not become healthy in 90 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER), "make test installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_registered_model_page_shows_champion_description_and_metric(ui_store, mlflow_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, summary = ui_store
    browser.get(f"{mlflow_server}/#/models/ui-seattle-daily")

    def page_text(driver):
        return driver.find_element(By.TAG_NAME, "body").text

    WebDriverWait(browser, 60).until(lambda d: "champion" in page_text(d) and "Version 1" in page_text(d))
    WebDriverWait(browser, 30).until(lambda d: "Validation MAE" in page_text(d))
    text = page_text(browser)
    browser.save_screenshot(str(tmp_path / "model-page.png"))
    assert "@ champion" in text or "champion" in text
    assert "Daily Seattle maximum temperature, next week." in text
    mae = summary["metrics"]["val_mae"]
    assert f"Validation MAE {mae:.4g}" in text
