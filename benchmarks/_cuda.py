"""Timing helper shared by the GPU benchmark scripts."""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch


def timed(fn: Callable[[], object], setup: Callable[[], object] | None = None, reps: int = 10) -> float:
    """Median milliseconds of ``fn`` over ``reps`` calls after 3 warm-ups, with CUDA events.

    ``setup`` runs before each call, outside the timing (e.g. refilling logits that a call overwrites).
    """
    for _ in range(3):
        if setup:
            setup()
        fn()
    out = []
    for _ in range(reps):
        if setup:
            setup()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b))
    return statistics.median(out)
