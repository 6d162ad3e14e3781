"""Issue 20, item 1: training is never silent. A bar on a terminal; one log line per epoch when piped.

Both run a real training in a real subprocess, since what is tested is what reaches the terminal or the pipe.
"""

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

TRAIN = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("forecasting").setLevel(logging.INFO)
from forecasting.config.model import parse_config
from forecasting.train import fit
from tests.conftest import synthetic_frame, tiny_config_dict

config = parse_config(tiny_config_dict(training={"max_epochs": 2, "patience": 5}))
fit(config, synthetic_frame(n_series=2, length=300), checkpoint_dir=sys.argv[1])
print("trained", flush=True)
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "120"}


def test_a_piped_training_logs_one_line_per_epoch(tmp_path):
    out = subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path)], capture_output=True, text=True,
                         env=_env(), cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = re.findall(r"tiny-synthetic: epoch (\d)/2: train_loss [\d.e+-]+, val_loss [\d.e+-]+, elapsed \d+:\d\d, "
                       r"ETA \d+:\d\d", out.stderr)
    assert lines == ["1", "2"], out.stderr[-3000:]
    assert "it/s" not in out.stderr and "\r" not in out.stderr  # no bar drawn into a pipe


def test_a_training_on_a_terminal_draws_a_progress_bar(tmp_path):
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a terminal has a size
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(tmp_path)], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env=_env(), cwd=REPO, close_fds=True)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0 and "trained" in text, text[-3000:]
    assert "Epoch 1/2" in text and "Epoch 2/2" in text, text[-3000:]
    assert re.search(r"\d+/\d+ \[\d+:\d\d<\d+:\d\d", text), text[-3000:]  # batches done/total [elapsed<left
    assert "it/s" in text and "train_loss=" in text and "val_loss=" in text, text[-3000:]
    assert not re.search(r"INFO .*epoch \d/2:", text)  # the bar replaces the per-epoch lines
