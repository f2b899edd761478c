"""The machine's CPU time, for benchmarks whose work runs in processes they do not wait for (forkserver
workers, Ray workers, browsers), which ``getrusage`` of the children misses."""

from __future__ import annotations

import os
from pathlib import Path


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux ``/proc/stat``: user to softirq; not
    idle, iowait or steal, the host's), or None where there is no ``/proc/stat``."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
