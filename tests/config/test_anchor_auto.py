"""``model.anchor: auto`` resolves as docs/forecaster.md ("Choosing the anchor") says, for every shipped config.

The doc's table is the contract: a row per shipped forecaster config (and one for short series), with the
transform, whether it pads short series, the anchor 'auto' resolves to and the training path ``fit`` takes.
A config added without a row, or a rule changed without the doc, fails here.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from forecasting.config.model import load_config, parse_config
from forecasting.model.forecaster import TrainedForecaster, build_network
from forecasting.train import fit, resolve_forking
from tests.conftest import REPO, synthetic_frame, tiny_config_dict
from tests.config.test_config import CONFIGS

DOC = REPO / "docs" / "forecaster.md"
ROW = re.compile(r"^\| (`[^`]+`|short series[^|]*) \| ([\w-]+) \| (yes|no) \| (\w+) \| (forked, (\d+) windows a chunk|window by window) \|")


def _documented() -> dict[str, tuple[str, bool, str, int]]:
    text = DOC.read_text()
    section = text[text.index("## Choosing the anchor") :]
    section = section[: section.find("\n## ", 3)]
    rows = {}
    for line in section.splitlines():
        if m := ROW.match(line):
            rows[m.group(1).strip("`").strip()] = (m.group(2), m.group(3) == "yes", m.group(4), int(m.group(6) or 1))
    return rows


SHORT_SERIES = tiny_config_dict(window={"lookback": 48, "horizon": 12, "min_length": 16})


def test_every_shipped_config_has_a_row():
    documented = _documented()
    shipped = {str(p.relative_to(REPO)) for p in CONFIGS}
    assert shipped <= set(documented), f"configs without a row in {DOC.name}: {sorted(shipped - set(documented))}"
    assert any(k.startswith("short series") for k in documented)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_anchor_auto_resolves_as_documented(path):
    transform, padded, anchor, windows = _documented()[str(path.relative_to(REPO))]
    config = load_config(path)
    assert (config.data.target_transform, config.padded, config.resolved_anchor) == (transform, padded, anchor)
    k, why = resolve_forking(config)
    assert k == windows, why
    assert build_network(config).anchor == anchor


def test_a_short_series_config_resolves_and_trains_forked_as_documented():
    (key,) = [k for k in _documented() if k.startswith("short series")]
    transform, padded, anchor, windows = _documented()[key]
    config = parse_config({**SHORT_SERIES, "training": {**SHORT_SERIES["training"], "max_epochs": 1, "num_threads": 1}})
    assert (config.data.target_transform, config.padded, config.resolved_anchor) == (transform, padded, anchor)
    assert resolve_forking(config)[0] == windows
    frame = synthetic_frame(n_series=3, length=400)
    frame = frame[~((frame["series_id"] == frame["series_id"].iloc[0]) & (frame.groupby("series_id").cumcount() < 370))]
    trained = fit(config, frame.reset_index(drop=True)).forecaster  # one series of 30 points: left-padded
    assert trained.meta["padded_series"] and trained.meta["training_path"]["forked_windows"] == windows
    assert trained.meta["anchor"] == anchor
    assert np.isfinite(trained.metrics["val_mae"])


def test_models_saved_when_auto_meant_last_load_with_last(tmp_path):
    """A version saved before 'auto' meant 'delta' carries 'auto' and no recorded anchor: it must load with the
    anchor its weights were trained with, or every forecast would be silently skewed."""
    import json

    import yaml

    from forecasting.predict import forecast

    config = parse_config(tiny_config_dict(model={"anchor": "last"}, training={"max_epochs": 1, "num_threads": 1}))
    frame = synthetic_frame()
    trained = fit(config, frame).forecaster
    expected = forecast(trained, frame)
    old = trained.save(tmp_path / "old")
    raw = yaml.safe_load((old / "config.yaml").read_text())
    raw["model"]["anchor"] = "auto"  # as the older code wrote it
    (old / "config.yaml").write_text(yaml.safe_dump(raw))
    meta = json.loads((old / "meta.json").read_text())
    del meta["anchor"]
    (old / "meta.json").write_text(json.dumps(meta))
    loaded = TrainedForecaster.load(old)
    assert loaded.config.model.anchor == "last" and loaded.network().anchor == "last"
    np.testing.assert_allclose(forecast(loaded, frame)["mean"], expected["mean"], rtol=1e-6)
    # A model trained now with 'auto' records what it meant, and loads with it.
    auto = parse_config(tiny_config_dict(training={"max_epochs": 1, "num_threads": 1}))
    fresh = TrainedForecaster.load(fit(auto, frame).forecaster.save(tmp_path / "new"))
    assert fresh.config.model.anchor == "auto" and fresh.config.resolved_anchor == "delta" and fresh.meta["anchor"] == "delta"
    assert fresh.network().anchor == "delta"


def test_ensemble_members_train_on_the_fast_path():
    raw = tiny_config_dict(model={"ensemble": {"members": 2}}, training={"max_epochs": 1, "num_threads": 1})
    trained = fit(parse_config(raw), synthetic_frame()).forecaster
    members = trained.meta["ensemble"]
    assert [m["forked_windows"] for m in members] == [8, 8]
    assert all(m.meta["anchor"] == "delta" for m in trained.members) and trained.meta["anchor"] == "delta"
    assert all(m["train_seconds"] > 0 for m in members)
