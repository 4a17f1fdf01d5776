"""CPU facts that set how inference runs: bf16 support (precision ``auto``) and the thread count."""
from __future__ import annotations

import functools
import os

import torch

from densepose.errors import UserError

#: fp32, bf16 autocast (1.5x faster on CPUs with AVX512-BF16/AMX, same accuracy: MODELS.md), or auto:
#: bf16 on such CPUs, fp32 elsewhere (bf16 is emulated, hence slower, on older CPUs).
PRECISIONS = ("auto", "fp32", "bf16")

#: Upper bound of the default thread count: beyond it the small model gains nothing.
MAX_DEFAULT_THREADS = 8


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU lists AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo; False elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with fast bf16, else ``fp32``; other values unchanged."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"
    return precision


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """Half the usable CPUs, at least 1 and at most `MAX_DEFAULT_THREADS`.

    Half, because a machine is rarely idle: when other processes hold the cores, each extra
    intra-op thread waits for a core at every parallel region, and on a loaded 2-core machine two
    threads ran several times slower than one (benchmarks/bench_predict.py ``--threads``).
    """
    return max(1, min(MAX_DEFAULT_THREADS, usable_cpus() // 2))
