"""What the figures were measured on: CPU, flags that matter to torch, threads and package versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata

PACKAGES: tuple[str, ...] = (
    "torch", "pytorch-lightning", "numpy", "pandas", "darts", "neuralforecast", "forecasting",
)
FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
"""CPU flags that decide which GEMM kernels oneDNN and MKL can use."""


def cpu() -> dict:
    """Model name and the flags of ``FLAGS`` the CPU has, from ``/proc/cpuinfo`` (Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": {f: f in flags for f in FLAGS}}


def versions() -> dict[str, str | None]:
    """Installed version of each package in ``PACKAGES`` (None when absent: the peers are an extra)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def describe() -> dict:
    """Cores, CPU, torch's threads and parallel back-ends, versions. Import torch only here."""
    import torch

    info = torch.__config__.parallel_info().splitlines()
    keep = ("ATen parallel backend", "OpenMP", "omp_get_max_threads", "Intel(R)", "mkl_get_max_threads")
    return {
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "parallel_info": [line.strip() for line in info if line.strip().startswith(keep)],
        "versions": versions(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }
