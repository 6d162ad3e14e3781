"""Issue 20, item 4: a training killed part-way resumes from its last checkpoint, and registers one version.

The kill is a real SIGKILL of a real training process; the rerun is another real process. The script does
what the train flow does (open the MLflow run, fit with live epoch logging, register from that run).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from forecasting.config.model import parse_config
from forecasting.train import RESUME_PREFIX, fit, remove_orphaned_checkpoints, training_key
from tests.conftest import synthetic_frame, tiny_config_dict

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 8

TRAIN = textwrap.dedent(
    f"""
    import logging, os, sys
    from pathlib import Path
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("forecasting").setLevel(logging.INFO)
    from forecasting.config.model import parse_config
    from forecasting.predict import latest_history
    from forecasting.registry import models as registry
    from forecasting.train import fit
    from tests.conftest import synthetic_frame, tiny_config_dict

    home = Path(sys.argv[1])
    registry.configure(sys.argv[2])  # importing tests.conftest pointed MLFLOW_TRACKING_URI at its own store
    config = parse_config(tiny_config_dict(name="resumable", training={{"max_epochs": {EPOCHS}, "patience": 50}}))
    frame = synthetic_frame(n_series=3, length=1500)  # ~1 s an epoch: time to kill it part-way
    run_id = registry.start_training_run(config, artifacts_dir=home / "artifacts")
    result = fit(config, frame, checkpoint_dir=home / "checkpoints", on_epoch=registry.epoch_logger(run_id))
    ref = registry.log_and_register(result.forecaster, history_example=latest_history(frame, 48),
                                    artifacts_dir=home / "artifacts", aliases=(registry.CHALLENGER,), run_id=run_id)
    print("registered", ref.version, ref.run_id, len(result.forecaster.history), flush=True)
    """
)


def _start(home: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", TRAIN, str(home), f"sqlite:///{home / 'mlflow.db'}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


@pytest.mark.slow
def test_a_sigkilled_training_resumes_from_its_checkpoint_and_registers_one_version(tmp_path):
    first = _start(tmp_path)
    deadline = time.monotonic() + 600
    last = None
    while last is None:
        found = list((tmp_path / "checkpoints").glob(f"{RESUME_PREFIX}*/last.ckpt"))
        if found and (tmp_path / "checkpoints").exists():
            last = found[0]
        elif first.poll() is not None:
            raise AssertionError(f"the training exited {first.returncode} before a checkpoint: {first.communicate()[1][-3000:]}")
        elif time.monotonic() > deadline:
            first.kill()
            raise AssertionError("no checkpoint after 600 s")
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert last.parent.is_dir(), "the checkpoint of a killed training must be kept to resume from"

    second = _start(tmp_path)
    out, err = second.communicate(timeout=900)
    assert second.returncode == 0, err[-3000:]
    import re

    said = re.search(r"resuming training of 'resumable' after epoch (\d+) of 8, from checkpoint (\S+)", err)
    assert said, err[-3000:]
    resumed_after = int(said.group(1))
    assert 0 < resumed_after < EPOCHS
    epochs_run = [int(e) for e in re.findall(r"resumable: epoch (\d+)/8", err)]
    assert epochs_run and epochs_run[0] == resumed_after + 1 and epochs_run[-1] == EPOCHS, err[-3000:]
    _, version, run_id, history = out.split()[-4:]
    assert int(history) == EPOCHS  # the loss history of the epochs before the kill came back with the checkpoint
    assert not list((tmp_path / "checkpoints").glob(f"{RESUME_PREFIX}*")), "a finished training's checkpoints stay"

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'resumable'")
    assert [str(v.version) for v in versions] == [version] == ["1"]
    runs = client.search_runs([client.get_experiment_by_name("resumable").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]  # the killed run is marked FAILED
    finished = next(r for r in runs if r.info.status == "FINISHED")
    assert finished.info.run_id == run_id == versions[0].run_id
    steps = [m.step for m in client.get_metric_history(run_id, "train_loss")]
    assert steps == list(range(resumed_after, EPOCHS))  # logged live, epoch by epoch, in the run that registered


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def _leave_keyed_folder(root: Path, key: str, *, pid: int, checkpoint: bytes | None = b"torn") -> Path:
    folder = root / f"{RESUME_PREFIX}{key}"
    folder.mkdir(parents=True)
    (folder / "owner.json").write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": "1"}))
    if checkpoint is not None:
        (folder / "last.ckpt").write_bytes(checkpoint)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("fresh", [False, True])
def test_fresh_or_a_torn_checkpoint_starts_over_and_cleans_up(tmp_path, caplog, fresh):
    config = parse_config(tiny_config_dict(training={"max_epochs": 1}))
    frame = synthetic_frame(n_series=1, length=200)
    from forecasting.prep.prepare import prepare

    folder = _leave_keyed_folder(tmp_path, training_key(config, prepare(config, frame).frame), pid=_dead_pid())
    with caplog.at_level("INFO", logger="forecasting"):
        result = fit(config, frame, checkpoint_dir=tmp_path, fresh=fresh, progress=False)
    assert result.forecaster.meta["resumed_after_epoch"] == 0
    said = "--fresh: deleting the checkpoints" if fresh else f"checkpoint {folder / 'last.ckpt'} cannot be resumed from"
    assert said in caplog.text
    assert not folder.exists()


def test_abandoned_resumable_checkpoints_are_removed_and_live_or_recent_ones_kept(tmp_path):
    dead = _dead_pid()
    old = _leave_keyed_folder(tmp_path, "a" * 16, pid=dead)
    recent = _leave_keyed_folder(tmp_path, "b" * 16, pid=dead)
    live = _leave_keyed_folder(tmp_path, "c" * 16, pid=os.getpid())
    (live / "owner.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                 "started": Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]}))
    week_ago = time.time() - 8 * 24 * 3600
    for folder in (old, live):
        for path in folder.iterdir():
            os.utime(path, (week_ago, week_ago))
    assert remove_orphaned_checkpoints(tmp_path) == [old]
    assert recent.exists() and live.exists()
    assert remove_orphaned_checkpoints(tmp_path, abandoned_after=0.0) == [recent]


@pytest.mark.slow
def test_a_timed_out_fit_resumes_in_the_same_process_and_a_failed_one_leaves_nothing(tmp_path, caplog):
    """A timeout (or Ctrl-C) keeps the checkpoint, and a rerun in the same process (a Prefect flow retry) resumes it;
    any other error removes it: resumed, it would fail the same way."""
    import pytorch_lightning as pl

    class StopAfter(pl.Callback):
        def __init__(self, epoch: int, error: type[BaseException]) -> None:
            self.epoch, self.error = epoch, error

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            if trainer.current_epoch == self.epoch:
                raise self.error("stopped by the test")

    config = parse_config(tiny_config_dict(training={"max_epochs": 4, "patience": 50}))
    frame = synthetic_frame(n_series=1, length=300)
    with pytest.raises(TimeoutError):
        fit(config, frame, checkpoint_dir=tmp_path, callbacks=[StopAfter(1, TimeoutError)], progress=False)
    assert list(tmp_path.glob(f"{RESUME_PREFIX}*/last.ckpt"))
    with caplog.at_level("INFO", logger="forecasting"):
        result = fit(config, frame, checkpoint_dir=tmp_path, progress=False)
    assert "resuming training of 'tiny-synthetic' after epoch 1 of 4" in caplog.text  # epoch 2 never completed
    assert result.forecaster.meta["resumed_after_epoch"] == 1 and len(result.forecaster.history) == 4
    assert not list(tmp_path.glob(f"{RESUME_PREFIX}*"))

    with pytest.raises(ValueError, match="stopped by the test"):
        fit(config, frame, checkpoint_dir=tmp_path, callbacks=[StopAfter(1, ValueError)], progress=False)
    assert not list(tmp_path.iterdir())
