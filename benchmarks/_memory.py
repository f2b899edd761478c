"""Helpers for the kernel benchmarks: one configuration per fresh process, peak RSS above the inputs.

Method (CPU; torch has no ``max_memory_allocated`` there):

1. The parent spawns ``python bench_x.py --one CONFIG`` per configuration with
   ``MALLOC_MMAP_THRESHOLD_=65536`` (every tensor-sized allocation is its own ``mmap`` and goes back to
   the OS on free, so RSS follows live memory instead of glibc's heap high-water mark) and
   ``MALLOC_ARENA_MAX=2``.
2. The child allocates and touches the inputs, runs the method once (warm-up: one-off allocations,
   kernels, compilation), drops every result, then resets the kernel's peak-RSS counter
   (``echo 5 > /proc/self/clear_refs``) and reads ``VmRSS`` as the baseline.
3. It runs one forward+backward and reads ``VmHWM`` (the peak RSS since the reset): *peak extra memory*
   is ``VmHWM - baseline``, i.e. every byte the step needed above the live inputs, the gradients it
   returns included. ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` gives the same number; it is
   printed as a cross-check.
4. Then it times ``repeats`` more steps and reports the median.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

MiB = 1 << 20


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, val = line.split(":")
                out[key] = int(val.split()[0]) * 1024
    return out


def reset_peak() -> int:
    """Reset the peak-RSS counter; return the current RSS in bytes (the baseline)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status()["VmRSS"]


def peak() -> tuple[int, int]:
    """(VmHWM, ru_maxrss) in bytes since the last reset."""
    return _status()["VmHWM"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(step: Callable[[], None], setup: Callable[[], None] | None = None, repeats: int = 3) -> dict:
    """Peak extra memory of one ``step`` after a warm-up, and the median time of ``repeats`` steps.

    ``setup`` runs before every step, outside the timing and before the baseline (e.g. refill
    logits that an in-place step consumes, or clear ``.grad``).
    """
    setup = setup or (lambda: None)
    setup()
    t0 = time.perf_counter()
    step()  # warm-up (and compilation for torch.compile)
    warm = time.perf_counter() - t0
    setup()
    base = reset_peak()
    step()
    hwm, maxrss = peak()
    times = []
    for _ in range(repeats):
        setup()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "peak_extra": hwm - base,
        "peak_extra_maxrss": maxrss - base,
        "time": statistics.median(times),
        "times": times,
        "warmup_time": warm,
    }


def run_child(script: str, config: dict, timeout: float = 600) -> dict:
    """Run ``python script --one JSON`` in a fresh process with the allocator settings above."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_ARENA_MAX="2")
    proc = subprocess.run(
        [sys.executable, script, "--one", json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {config} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_mib(n: float) -> str:
    return f"{n / MiB:,.0f} MiB"
