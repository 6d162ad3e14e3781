"""What this machine's processor can compute natively: decides precision where the config says 'auto'."""

from __future__ import annotations

import torch


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
