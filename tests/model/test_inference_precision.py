"""``inference.precision: auto``: bf16 autocast exactly where the hardware computes bf16, float32 elsewhere."""

from __future__ import annotations

import numpy as np
import torch

from forecasting.config.model import parse_config
from forecasting.hardware import cpu_has_native_bf16, inference_autocast, resolve_inference_precision
from tests.conftest import tiny_config_dict


def test_auto_follows_the_hardware_and_explicit_settings_are_kept():
    cpu = torch.device("cpu")
    assert resolve_inference_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "32")
    assert resolve_inference_precision("32", cpu) == "32" and resolve_inference_precision("bf16", cpu) == "bf16"
    assert inference_autocast("auto", cpu)._enabled is cpu_has_native_bf16()  # noqa: SLF001 - what autocast will do
    assert inference_autocast("32", cpu)._enabled is False  # noqa: SLF001


def test_auto_predicts_as_the_setting_it_resolves_to():
    from forecasting.model.forecaster import build_network

    config = parse_config(tiny_config_dict())
    torch.manual_seed(0)
    net = build_network(config, 3).eval()
    for p in net.parameters():
        torch.nn.init.uniform_(p, -0.3, 0.3)
    past = torch.randn(16, 48, net.encoder.input_size)
    outputs = {}
    for precision in ("auto", "32", "bf16"):
        with torch.no_grad(), inference_autocast(precision, torch.device("cpu")):
            outputs[precision] = net(past).float().numpy()
    same = resolve_inference_precision("auto", torch.device("cpu"))
    np.testing.assert_array_equal(outputs["auto"], outputs[same])
    if cpu_has_native_bf16():  # bf16 really ran: the forecasts moved, a little
        assert 0 < np.abs(outputs["bf16"] - outputs["32"]).max() < 0.1
