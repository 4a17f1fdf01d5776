"""Run-time helpers of the evaluator: seconds per stage, and a pause of the garbage collector."""
from __future__ import annotations

import contextlib
import gc
import time
from collections import Counter


class StageTimer:
    """Seconds spent per named stage, summed over calls: ``with timer("masks"): ...``."""

    def __init__(self):
        self.seconds: Counter = Counter()

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0

    def rounded(self, digits: int = 4) -> dict[str, float]:
        return {k: round(v, digits) for k, v in self.seconds.items()}


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector: the evaluator makes many short-lived containers,
    and a full collection walks every object of the ground truth (0.2 s for 1,700 people)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
