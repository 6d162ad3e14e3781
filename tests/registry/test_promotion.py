"""Champion/challenger on a real SQLite registry: promotion, rejection with reasons, rollback, races."""

import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.registry import promotion
from forecasting.registry import models as registry
from forecasting.errors import ForecastingError
from forecasting.predict import latest_history
from tests.conftest import tiny_config_dict

pytestmark = pytest.mark.slow


def _naive_copy(trained):
    """The same forecaster with a zeroed head: with the anchored level it forecasts the naive value."""
    worse = copy.deepcopy(trained)
    worse.state_dict = {k: (torch.zeros_like(v) if k.startswith(("head.", "skip.")) else v) for k, v in worse.state_dict.items()}
    return worse


def _judged_against_naive(trained):
    """The synthetic series repeat exactly every 24 steps, so seasonal naive is nearly perfect there;
    judge these tests' models against the plain naive forecast instead (season 1)."""
    out = copy.deepcopy(trained)
    out.config = out.config.model_copy(update={"baseline": out.config.baseline.model_copy(update={"season_length": 1})})
    return out


@pytest.fixture
def lifecycle(tiny_fit, mlflow_store):
    config, frame, result = tiny_fit
    history = latest_history(frame, config.window.lookback)

    def register(trained):
        return registry.log_and_register(trained, history_example=history, artifacts_dir=mlflow_store / "artifacts",
                                         aliases=(registry.CHALLENGER,))

    def promote(ref, **kw):
        return promotion.promote_challenger(ref.name, ref.version, frame, lock_dir=mlflow_store / "locks", origins=5, **kw)

    return _judged_against_naive(result.forecaster), register, promote, mlflow_store


def test_first_model_that_loses_to_seasonal_naive_is_not_champion(lifecycle, tiny_fit):
    good, register, promote, _ = lifecycle
    # Forecasts the naive value on series that repeat every 24 steps, judged against seasonal naive (season 24).
    v1 = register(_naive_copy(tiny_fit[2].forecaster))
    first = promote(v1)
    assert not first.promote
    assert first.lost_to == ("seasonal_naive",) and "lost to seasonal naive" in first.reason
    assert registry.champion_or_none(v1.name) is None
    tags = registry.version_tags(v1.name, v1.version)
    assert tags["promotion.decision"] == "rejected" and tags["promotion.reason"] == first.reason
    assert tags["promotion.must_beat"] == "seasonal_naive" and tags["promotion.lost_to"] == "seasonal_naive"
    assert float(tags["promotion.challenger_score"]) >= float(tags["promotion.baseline.seasonal_naive"])
    assert tags["promotion.baseline_score"] == tags["promotion.baseline.seasonal_naive"]
    assert int(tags["promotion.origins"]) > 0

    with pytest.raises(promotion.NoChampionError) as caught:
        promotion.require_champion(v1.name)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"model '{v1.name}' has no champion: no version passed the promotion gate "
                              f"(latest v{v1.version}: lost to seasonal naive (mae ")
    assert message.endswith(f"promote one with `forecast promote --model {v1.name} --version VERSION --why ...`")
    with pytest.raises(ForecastingError, match="no registered model 'ghost'"):
        promotion.require_champion("ghost")

    # The next version that passes the gate is the name's first champion.
    v2 = register(good)
    second = promote(v2)
    assert second.promote and "first model of this name" in second.reason, second.reason
    assert promotion.require_champion(v1.name).version == v2.version


def test_first_model_without_out_of_sample_origins_is_rejected_unless_the_gate_is_empty(tiny_fit, mlflow_store):
    config, frame, _ = tiny_fit
    history = latest_history(frame, config.window.lookback)
    short = frame.groupby("series_id").head(300)  # the model's test part is gone: every origin is in-sample
    ref = registry.log_and_register(tiny_fit[2].forecaster, history_example=history,
                                    artifacts_dir=mlflow_store / "artifacts", aliases=(registry.CHALLENGER,))
    rejected = promotion.promote_challenger(ref.name, ref.version, short, lock_dir=mlflow_store / "locks", origins=5)
    assert not rejected.promote and rejected.reason.startswith("not backtested: no origin to backtest")
    assert "must beat seasonal_naive" in rejected.reason and rejected.lost_to == ("not backtested",)
    assert registry.champion_or_none(ref.name) is None
    assert registry.version_tags(ref.name, ref.version)["promotion.origins"] == "0"

    again = registry.log_and_register(tiny_fit[2].forecaster, history_example=history,
                                      artifacts_dir=mlflow_store / "artifacts", aliases=(registry.CHALLENGER,))
    accepted = promotion.promote_challenger(again.name, again.version, short, lock_dir=mlflow_store / "locks", origins=5,
                                            must_beat=[])
    assert accepted.promote and "not backtested" in accepted.reason and "must_beat is empty" in accepted.reason
    assert registry.resolve(again.name).version == again.version


def test_better_wins_worse_loses_and_rollback(lifecycle):
    good, register, promote, store = lifecycle
    naive = _naive_copy(good)

    v1 = register(naive)
    first = promote(v1, must_beat=[])  # no gate: a weak first champion to beat
    assert first.promote and "first model" in first.reason
    assert registry.resolve(v1.name).version == v1.version

    v2 = register(good)
    better = promote(v2)
    assert better.promote, better.reason
    assert registry.resolve(v1.name).version == v2.version
    tags = registry.version_tags(v2.name, v2.version)
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.previous_champion"] == v1.version
    assert float(tags["promotion.challenger_score"]) < float(tags["promotion.champion_score"])
    assert float(tags["promotion.challenger_score"]) < float(tags["promotion.baseline.seasonal_naive"])

    v3 = register(naive)
    worse = promote(v3)
    assert not worse.promote
    assert registry.resolve(v1.name).version == v2.version
    tags = registry.version_tags(v3.name, v3.version)
    assert tags["promotion.decision"] == "rejected"
    # It forecasts the naive value: it ties naive (the gate), or else loses to the champion.
    assert "lost to seasonal naive" in tags["promotion.reason"] or f"champion v{v2.version}" in tags["promotion.reason"]

    old, restored = promotion.rollback(v1.name, why="bad forecasts on Monday", lock_dir=store / "locks")
    assert (old, restored) == (v2.version, v1.version)
    assert registry.resolve(v1.name).version == v1.version
    assert registry.version_tags(v2.name, v2.version)["rollback.reason"] == "bad forecasts on Monday"
    with pytest.raises(ForecastingError, match="nothing to roll back to"):
        promotion.rollback(v1.name, why="again", lock_dir=store / "locks")


def _trending_seasonal(n_series: int = 3, length: int = 400, slope: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """A smooth daily cycle on a steady trend: seasonal naive is off by a day's trend at every step, AutoETS
    (additive trend and season) is nearly exact, and a tiny LSTM lands in between."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for i in range(n_series):
        values = 10.0 * (i + 1) + slope * t + 3.0 * np.sin(2 * np.pi * (t + 3 * i) / 24) + 0.05 * rng.standard_normal(length)
        frames.append(pd.DataFrame({"series_id": f"trend/s{i}", "timestamp": pd.date_range("2024-01-01", periods=length, freq="h", tz="UTC"),
                                    "target": values}))
    return pd.concat(frames, ignore_index=True)


def test_gate_with_ets_rejects_a_version_that_beats_seasonal_naive_only(mlflow_store, tmp_path):
    from forecasting.config.model import parse_config
    from forecasting.train import fit

    frame = _trending_seasonal()
    config = parse_config(tiny_config_dict(name="tiny-trend", baseline={"season_length": 24, "statistical": ["ets"]},
                                           promotion={"must_beat": ["seasonal_naive", "ets"]}))
    trained = fit(config, frame, checkpoint_dir=tmp_path).forecaster
    history = latest_history(frame, config.window.lookback)

    def register():
        return registry.log_and_register(trained, history_example=history, artifacts_dir=mlflow_store / "artifacts",
                                         aliases=(registry.CHALLENGER,))

    v1 = register()
    decision = promotion.promote_challenger(v1.name, v1.version, frame, lock_dir=mlflow_store / "locks", origins=5)
    assert not decision.promote
    assert decision.lost_to == ("ets",), decision.reason
    assert decision.reason.startswith("lost to ets (mae ") and "seasonal naive" not in decision.reason
    tags = registry.version_tags(v1.name, v1.version)
    ets, seasonal, model = (float(tags[k]) for k in ("promotion.baseline.ets", "promotion.baseline.seasonal_naive",
                                                     "promotion.challenger_score"))
    assert ets < model < seasonal  # beats seasonal naive, loses to ETS, on the same origins
    assert tags["promotion.must_beat"] == "seasonal_naive,ets" and tags["promotion.lost_to"] == "ets"
    assert registry.champion_or_none(v1.name) is None
    with pytest.raises(promotion.NoChampionError, match=rf"latest v{v1.version}: lost to ets \(mae "):
        promotion.require_champion(v1.name)

    # The same model under the default gate (seasonal naive only) passes, and becomes the first champion.
    v2 = register()
    passed = promotion.promote_challenger(v2.name, v2.version, frame, lock_dir=mlflow_store / "locks", origins=5,
                                          must_beat=["seasonal_naive"])
    assert passed.promote and "first model" in passed.reason
    # A gate naming a baseline the backtest did not compute fails closed.
    v3 = register()
    unscored = promotion.promote_challenger(v3.name, v3.version, frame, lock_dir=mlflow_store / "locks", origins=5,
                                            must_beat=["theta"])
    assert not unscored.promote and "theta not scored" in unscored.reason
    assert registry.version_tags(v3.name, v3.version)["promotion.baseline.theta"] == "not scored"
    # A human may still override the gate.
    previous = promotion.promote(v1.name, v1.version, why="ETS is unfair on this series", lock_dir=mlflow_store / "locks")
    assert previous == v2.version and registry.resolve(v1.name).version == v1.version


def test_manual_promote_records_who_and_why(lifecycle):
    good, register, promote, store = lifecycle
    v1 = register(good)
    assert promote(v1).promote
    v2 = register(_naive_copy(good))
    previous = promotion.promote(v2.name, v2.version, why="hotfix for the holiday", lock_dir=store / "locks")
    assert previous == v1.version
    tags = registry.version_tags(v2.name, v2.version)
    assert tags["promotion.reason"] == "hotfix for the holiday"
    assert tags["promotion.by"]
    with pytest.raises(ForecastingError, match="has no version 99"):
        promotion.promote(v2.name, "99", why="typo", lock_dir=store / "locks")


def test_lineage_tags_on_every_version(lifecycle):
    good, register, _, _ = lifecycle
    ref = register(good)
    tags = registry.version_tags(ref.name, ref.version)
    data = good.meta["data"]
    assert tags["data.rows"] == str(data["rows"])
    assert tags["data.sha1"] == data["sha1"]
    assert tags["data.start"] == data["start"] and tags["data.end"] == data["end"]
    assert tags["seed"] == str(good.config.training.seed)
    assert tags["versions.torch"].startswith("2.13.0")
    assert tags["git_commit"]
    assert tags["target"] and tags["freq"] == "h"


RACER = textwrap.dedent(
    """
    import os, sys, time, pathlib
    from forecasting.registry import promotion
    from forecasting.registry import models as registry
    from forecasting.model.forecaster import TrainedForecaster
    import pandas as pd
    store, saved, go, lock_dir = map(pathlib.Path, sys.argv[1:5])
    registry.configure(os.environ["MLFLOW_TRACKING_URI"])  # SQLite here, PostgreSQL in test_promotion_postgres
    trained = TrainedForecaster.load(saved)
    frame = pd.read_parquet(store / "frame.parquet")
    history = frame.groupby("series_id").tail(trained.spec.lookback)
    ref = registry.log_and_register(trained, history_example=history, artifacts_dir=store / "artifacts",
                                    aliases=(registry.CHALLENGER,))
    while not go.exists():
        time.sleep(0.05)
    decision = promotion.promote_challenger(ref.name, ref.version, frame, lock_dir=lock_dir, origins=5)
    print(ref.version, decision.promote)
    """
)


def test_two_processes_racing_leave_one_consistent_champion(lifecycle, tiny_fit):
    good, register, promote, store = lifecycle
    race_two_challengers(good, register, promote, store, tiny_fit[1], f"sqlite:///{store / 'mlflow.db'}",
                         [store / "locks", store / "locks"])


def race_two_challengers(good, register, promote, store, frame, uri: str, lock_dirs: list) -> None:
    """Register a weak champion, then two racers (processes) that each register a better challenger
    and promote it at the same moment; exactly one may win, the other is judged against the winner."""
    v1 = register(_naive_copy(good))
    # An existing, weak champion both racers will beat; it ties naive, so only a human can make it champion.
    promotion.promote(v1.name, v1.version, why="a weak champion to race against", lock_dir=store / "locks")
    frame.to_parquet(store / "frame.parquet")
    saved = good.save(store / "saved")
    go = store / "go"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(store), str(saved), str(go), str(lock_dir)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for lock_dir in lock_dirs]
    # Both register first; then both promote at once.
    import time
    from mlflow import MlflowClient

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(MlflowClient().search_model_versions(f"name = '{v1.name}'")) < 3:
        time.sleep(0.2)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = dict(line.split() for line in (o[0].strip().splitlines()[-1] for o in outs))
    champion = registry.resolve(v1.name).version
    # The first racer through the lock beats v1; the second meets a champion as good as itself: a tie, rejected.
    assert sorted(results.values()) == ["False", "True"]
    winner = next(v for v, promoted in results.items() if promoted == "True")
    loser = next(v for v, promoted in results.items() if promoted == "False")
    assert champion == winner
    assert registry.version_tags(v1.name, winner)["promotion.previous_champion"] == v1.version
    loser_tags = registry.version_tags(v1.name, loser)
    assert loser_tags["promotion.decision"] == "rejected"
    assert loser_tags["promotion.compared_with"] == winner


def test_a_first_champion_says_why_it_serves_promises_an_error_and_its_report_renders(lifecycle, tiny_fit):
    """Issue 20, item 6: the version's description carries the decision and the backtest against the baselines;
    the first champion gets a promised MASE for monitoring; the report is one HTML page with its plots inline."""
    from mlflow import MlflowClient

    from forecasting.ops.monitor import promised_mase

    good, register, _, store = lifecycle
    ref = register(good)
    decision = promotion.promote_and_attach_report(ref, tiny_fit[1], lock_dir=store / "locks", metric="mae", margin=0.0,
                                                   origins=5)
    assert decision.promote and "first model" in decision.reason
    tags = registry.version_tags(ref.name, ref.version)
    assert np.isfinite(promised_mase(tags)) and promised_mase(tags) == float(tags["monitor.promised_mase"]) > 0

    description = MlflowClient().get_model_version(ref.name, ref.version).description
    assert description.startswith("LSTM forecaster of `synthetic`")  # what it is, kept
    assert "**Promotion: promoted**" in description and decision.reason in description
    assert f"| this version | {decision.challenger:.4g} |" in description
    assert f"| seasonal_naive | {float(tags['promotion.baseline.seasonal_naive']):.4g} |" in description
    assert f"MASE {tags['monitor.promised_mase']}" in description
    registry.describe_decision(ref.name, ref.version, "decided again")  # replaces, never piles up
    again = MlflowClient().get_model_version(ref.name, ref.version).description
    assert again.count("<!-- promotion decision -->") == 1 and again.endswith("decided again")
    assert "**Promotion:" not in again

    local = MlflowClient().download_artifacts(ref.run_id, "backtest/report.html", str(store / "download"))
    page = open(local).read()
    assert page.count("<img") == 2 and page.count('src="data:image/png;base64,') == 2
    assert "<table>" in page and "error_by_step.png" not in page
