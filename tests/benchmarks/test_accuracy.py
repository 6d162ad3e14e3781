"""The accuracy benchmark's pipeline on tiny data: every method scored on the same hold-out origins."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from tests.conftest import synthetic_frame, tiny_config_dict

pytestmark = pytest.mark.slow


def test_every_method_is_scored_on_the_same_holdout_and_the_page_states_the_goals(tmp_path, monkeypatch):
    from benchmarks import accuracy

    raw = tiny_config_dict(name="tiny-acc", training={"max_epochs": 1}, model={"hidden_size": 4, "num_layers": 1})
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(accuracy, "ROOT", tmp_path)
    frame = synthetic_frame(n_series=2, length=300)
    ds = accuracy.Dataset("m1", "tiny", lambda: frame, "configs/tiny.yaml", None, 2)

    train = accuracy.holdout_split(frame, 12, 2)
    assert len(train) == len(frame) - 2 * 2 * 12  # two origins a horizon apart, per series

    rows, extra = accuracy.run_dataset(ds, members=2, log=lambda _: None)
    methods = [r.method for r in rows]
    assert methods[0] == "LSTM, default config" and methods[-3:] == ["AutoETS", "AutoTheta", "SeasonalNaive (season 24)"]
    assert any(m.startswith("LSTM ensemble (2") for m in methods) and any(m.startswith("comb") for m in methods)
    assert all(np.isfinite(r.mase) and np.isfinite(r.smape) for r in rows)
    # a noisy sine: ETS with the right season is close to perfect, seasonal naive too; both beat a 1-epoch LSTM
    by = {r.method: r for r in rows}
    assert by["AutoETS"].mase < by["LSTM, default config"].mase
    assert extra["series"] == 2 and extra["ensemble_train_seconds"] > 0

    args = type("Args", (), {"quick": False})()
    page = accuracy.markdown({"m1": (dataclasses.replace(ds, title="tiny"), rows, extra)}, 0.0, args)
    assert "| AutoETS |" in page and "## Goals (M1 monthly, this run)" in page
    assert page.count("**met**") + page.count("**not met**") == 3
