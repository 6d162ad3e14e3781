"""What this machine's processor can compute natively: decides precision where the config says 'auto'."""

from __future__ import annotations

import logging

import torch

_log = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX).

    There oneDNN runs the LSTM in bf16 ~1.6-1.7x faster than in float32; on AVX2-only CPUs it cannot
    build a bf16 LSTM at all ("could not create a primitive descriptor"), so bf16 must never be
    chosen there.
    """
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())  # noqa: SLF001 - no public probe
    except AttributeError:  # another torch: assume not, float32 is always right
        return False


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA device with bf16, a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return device.type == "cpu" and cpu_has_native_bf16()


CPU_INFERENCE_BATCH = 128
"""Windows per forward pass on a CPU for ``inference.batch_size: auto``: the fastest of 32-4,096 in float32 on a
2-core AMD EPYC with AVX512-BF16 (1.26x the speed of 1,024; in bf16 1.07x, where 256 was best at 1.18x), its
recurrent state and gates staying in cache (benchmarks/inference_batch.py, docs/forecaster.md)."""
ACCELERATOR_INFERENCE_BATCH = 4096
"""Windows per forward pass on a GPU for ``inference.batch_size: auto``: a small batch leaves it mostly idle."""


def resolve_inference_batch(batch_size: int | str, device: torch.device) -> int:
    """``inference.batch_size`` for ``device``: 'auto' is ``CPU_INFERENCE_BATCH`` on a CPU, else
    ``ACCELERATOR_INFERENCE_BATCH``; a number is kept."""
    if batch_size == "auto":
        return CPU_INFERENCE_BATCH if device.type == "cpu" else ACCELERATOR_INFERENCE_BATCH
    return int(batch_size)


def resolve_inference_precision(precision: str, device: torch.device) -> str:
    """``inference.precision`` for ``device``: 'auto' is bf16 where it is native, else '32'."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "32"
    return precision


def inference_autocast(precision: str, device: torch.device) -> torch.autocast:
    """The autocast context for ``inference.precision`` on ``device``: bfloat16 for ``"bf16"`` (and for
    ``"auto"`` where bf16 is native), a no-op for ``"32"``.

    On a CPU without native bf16 a model set to bf16 still serves, in float32 with a warning, since
    oneDNN cannot build its LSTM in bf16 there.
    """
    precision = resolve_inference_precision(precision, device)
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        _log.warning("inference.precision is bf16 but this CPU has no native bf16: predicting in float32")
        precision = "32"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
