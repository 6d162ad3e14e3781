"""`forecast tune`: the search space, the pruning callback, and the command end to end (real Optuna,
Lightning, Prefect harness and MLflow on SQLite; no mocks)."""

from __future__ import annotations

import math

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from forecasting.cli.app import app
from forecasting.config.model import parse_config
from forecasting.errors import ConfigError
from forecasting.tune import (
    SearchSpace,
    TrialJob,
    load_space,
    run_trial,
    suggest_overrides,
    trial_config,
)
from tests.conftest import REPO, synthetic_frame, tiny_config_dict


def _tiny_raw(**overrides) -> dict:
    raw = tiny_config_dict(name="tune-tiny", **overrides)
    raw["model"] = {**raw["model"], "hidden_size": 8}
    raw["training"] = {**raw["training"], "max_epochs": 2, "num_threads": 1, "patience": 2}
    raw["baseline"] = {**raw["baseline"], "statistical": []}  # the promotion backtest stays seconds
    return raw


TINY_SPACE = {
    "lookback_seasons": [1.5, 2.0], "hidden_size": [4, 8], "num_layers": [1, 2], "dropout": [0.0, 0.2],
    "learning_rate": [0.003, 0.03], "pruning": {"startup_trials": 1, "warmup_epochs": 0},
}


def test_example_space_file_is_the_default():
    assert load_space(REPO / "configs/tune/space.yaml") == SearchSpace()


def test_bad_space_lists_every_problem(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"dropout": [0.5, 0.1], "hidden_size": [], "learning_rate": [0, 0.1]}))
    with pytest.raises(ConfigError) as err:
        load_space(path)
    text = str(err.value)
    for part in ("dropout: low 0.5 is above high 0.1", "hidden_size: an empty list", "learning_rate: 0.0 must be positive"):
        assert part in text
    path.write_text(yaml.safe_dump({"tune": {"hiden_size": [8]}}))
    with pytest.raises(ConfigError, match="hiden_size: Extra inputs are not permitted"):
        load_space(path)


def test_suggestions_are_valid_configs_within_the_space():
    raw = _tiny_raw()
    base = parse_config(raw)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(25):
        trial = study.ask()
        overrides = suggest_overrides(trial, base, SearchSpace(), positive=False)
        config = trial_config(raw, overrides, source="test")
        # Season 24: lookback 1.5x-4x of it (36..96), never below the horizon.
        assert 36 <= config.window.lookback <= 96
        assert config.model.hidden_size in (16, 32, 64, 128) and config.model.num_layers in (1, 2, 3)
        assert 3e-4 <= config.training.learning_rate <= 1e-2 and 0.0 <= config.model.dropout <= 0.3
        assert config.data.target_transform == "none"  # not every target positive: log is never tried
        assert "target_transform" not in trial.params
        assert config.training.max_epochs == 2 and config.name == "tune-tiny"  # the YAML's own settings stay
        study.tell(trial, 1.0)
    positive = suggest_overrides(optuna.trial.FixedTrial({"lookback": 48, "hidden_size": 16, "num_layers": 1, "dropout": 0.1,
                                                          "learning_rate": 1e-3, "target_transform": "log", "anchor": "delta"}),
                                 base, SearchSpace(), positive=True)
    assert positive == {"window": {"lookback": 48}, "model": {"hidden_size": 16, "num_layers": 1, "dropout": 0.1, "anchor": "delta"},
                        "training": {"learning_rate": 1e-3}, "data": {"target_transform": "log"}}


def test_differencing_configs_only_try_valid_anchors():
    raw = _tiny_raw(data={"target_transform": "difference"})
    base = parse_config(raw)
    trial = optuna.create_study().ask()
    overrides = suggest_overrides(trial, base, SearchSpace(), positive=True)
    assert overrides["model"]["anchor"] == "none" and "target_transform" not in overrides.get("data", {})
    trial_config(raw, overrides, source="test")


@pytest.mark.slow
def test_pruning_callback_stops_a_trial_worse_than_the_median():
    """A real Lightning training reports each epoch; against an earlier trial at loss 0 it is pruned at once."""
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    earlier = study.ask()
    for step in range(5):
        earlier.report(0.0, step)
    study.tell(earlier, 0.0)
    trial = study.ask()
    config = parse_config(_tiny_raw(training={"max_epochs": 3}))
    outcome = run_trial(TrialJob(trial, config, synthetic_frame(n_series=2, length=300)))
    assert outcome.state == "pruned", outcome
    assert "pruned at epoch 0" in outcome.error
    assert list(study.trials[1].intermediate_values) == [0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trials", "0"], "--trials must be a whole number >= 1, got '0'"),
        (["--trials", "three"], "--trials must be a whole number >= 1, got 'three'"),
        (["--trials", "3", "--timeout", "-5"], "--timeout must be a number of seconds > 0, got '-5'"),
        (["--trials", "3", "--timeout", "nan"], "--timeout must be a number of seconds > 0, got 'nan'"),
    ],
)
def test_bad_budget_is_one_clear_error(tmp_path, args, message):
    result = CliRunner().invoke(app, ["tune", "--config", str(tmp_path / "any.yaml"), *args, "--home", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.fixture
def tune_home(tmp_path, monkeypatch, prefect_harness):
    from forecasting.data.store import ObservationStore

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    ObservationStore(tmp_path / "store").upsert("synthetic", synthetic_frame(n_series=2, length=300))
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(_tiny_raw()))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"tune": TINY_SPACE}))
    return tmp_path, config, space


@pytest.mark.slow
def test_tune_logs_trials_under_one_parent_and_writes_a_trainable_best_config(tune_home):
    from mlflow import MlflowClient

    from forecasting.registry import models as registry
    from forecasting.registry.tuning import child_runs
    from forecasting.train import fit

    home, config, space = tune_home
    out = home / "best.yaml"
    result = CliRunner().invoke(app, ["tune", "-c", str(config), "--trials", "3", "--timeout", "600", "--space", str(space),
                                      "--out", str(out), "--register", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "Tuning tune-tiny: 3 trials" in result.output and "best trial" in result.output

    registry.configure(f"sqlite:///{home / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("tuning")
    parents = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'tuning'")
    assert len(parents) == 1
    parent = parents[0]
    children = child_runs(parent.info.run_id)
    assert [c.data.tags["optuna.trial"] for c in children] == ["0", "1", "2"]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert parent.info.status == "FINISHED"

    # The parent holds the best trial's parameters and value.
    best_number = int(parent.data.tags["best_trial"])
    best_child = children[best_number]
    complete = [c for c in children if c.data.tags["optuna.state"] == "complete"]
    assert best_child.data.metrics["val_mase"] == min(c.data.metrics["val_mase"] for c in complete)
    assert parent.data.metrics["best_val_mase"] == pytest.approx(best_child.data.metrics["val_mase"])
    tuned = {k: v for k, v in best_child.data.params.items() if k != "overrides"}
    assert tuned and {f"best.{k}": v for k, v in tuned.items()}.items() <= parent.data.params.items()
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_config.yaml", "trials.csv", "plots"} <= artifacts
    plots = [a.path for a in client.list_artifacts(parent.info.run_id, "plots")]
    assert "plots/optimization_history.png" in plots

    # The best config: overrides form, parse_config loads it, and it trains.
    raw = yaml.safe_load(out.read_text())
    assert set(raw) == set(_tiny_raw())  # the YAML's own keys, not the fully resolved dump
    best = parse_config(raw, source=str(out))
    assert best.window.lookback == int(best_child.data.params["lookback"])
    assert best.model.hidden_size == int(best_child.data.params["hidden_size"])
    again = fit(best.model_copy(update={"training": best.training.model_copy(update={"max_epochs": 1})}),
                synthetic_frame(n_series=2, length=300))
    assert math.isfinite(again.forecaster.metrics["val_mase"])

    # --register trained and registered it through the train flow.
    version = client.get_registered_model("tune-tiny").latest_versions
    assert version, "no registered version of the tuned model"
    assert "tune-tiny" in result.output and "Validation, original units" in result.output
