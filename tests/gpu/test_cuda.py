"""The GPU path is the same code (issue 18): forking, bf16 and ensembles on CUDA are chosen by the CPU's rules.

Opt-in: ``pytest -m gpu`` (or ``make gpu-check``) on a machine with a CUDA device; without one every
test here is skipped with that reason, and the plain suite (``-m "not gpu"`` is not needed) counts them
as skips, like the stack tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting.config.model import load_config, parse_config
from forecasting.train import fit, resolve_forking, resolve_precision, uses_cuda
from tests.config.test_config import CONFIGS
from tests.conftest import synthetic_frame, tiny_config_dict

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="opt-in: needs a CUDA device (pytest -m gpu, make gpu-check)"),
]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_take_the_same_path_on_cuda_in_bf16(path):
    config = load_config(path)
    assert uses_cuda(config)
    cpu = config.model_copy(update={"training": config.training.model_copy(update={"accelerator": "cpu"})})
    assert resolve_forking(config) == resolve_forking(cpu)
    assert resolve_precision(config) == ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed")


def test_forked_forward_on_cuda_matches_the_cpu():
    from forecasting.model.forecaster import build_network

    config = parse_config(tiny_config_dict(model={"quantiles": [0.1, 0.5, 0.9]}, window={"min_length": 24}))
    torch.manual_seed(0)
    net = build_network(config, 3).eval()
    past = torch.randn(4, 48 + 7 * 2, net.encoder.input_size)
    with torch.no_grad():
        on_cpu = net.forward_forked(past, lookback=48, stride=2)
        on_cuda = net.cuda().forward_forked(past.cuda(), lookback=48, stride=2).cpu()
    torch.testing.assert_close(on_cuda, on_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"window": {"min_length": 24}}, {"data": {"target_transform": "log-return"}}, {"model": {"ensemble": {"members": 2}}}],
    ids=["levels", "padded", "log-return", "ensemble"],
)
def test_fit_on_cuda_forks_in_bf16(overrides):
    config = parse_config(tiny_config_dict(**overrides, training={"max_epochs": 2}))
    trained = fit(config, synthetic_frame()).forecaster
    members = trained.members or [trained]
    for m in members:
        assert m.meta["hardware"]["device"].startswith("cuda")
        assert m.meta["hardware"]["precision"] == resolve_precision(config)
        assert m.meta["training_path"]["forked_windows"] == 8
    assert np.isfinite(trained.metrics["val_mae"])


def test_bf16_inference_auto_on_cuda_and_its_forecasts():
    from forecasting.hardware import resolve_inference_batch, resolve_inference_precision
    from forecasting.predict import forecast

    assert resolve_inference_precision("auto", torch.device("cuda")) == ("bf16" if torch.cuda.is_bf16_supported() else "32")
    assert resolve_inference_batch("auto", torch.device("cuda")) == 4096
    config = parse_config(tiny_config_dict(training={"max_epochs": 2}))
    frame = synthetic_frame()
    trained = fit(config, frame).forecaster
    f32 = forecast(trained, frame)["mean"].to_numpy()
    trained.config = config.model_copy(update={"inference": config.inference.model_copy(update={"precision": "bf16"})})
    bf16 = forecast(trained, frame)["mean"].to_numpy()
    assert np.abs(bf16 - f32).max() < 0.02 * np.abs(f32).mean()


def test_ddp_spawn_on_one_device_trains():
    config = parse_config(tiny_config_dict(training={"max_epochs": 1, "accelerator": "gpu", "devices": 1, "strategy": "ddp_spawn"}))
    trained = fit(config, synthetic_frame()).forecaster
    assert trained.meta["hardware"]["world_size"] == 1
    assert float(trained.state_dict["head.weight"].abs().sum()) > 0
