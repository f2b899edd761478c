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


def io_wait_seconds() -> float | None:
    """Seconds the machine's CPUs have sat idle waiting for the disk since boot (``/proc/stat``'s iowait),
    or None where there is no ``/proc/stat``."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    return fields[4] / os.sysconf("SC_CLK_TCK")


def disk_read_mib() -> float | None:
    """MiB read from the machine's whole disks since boot (``/proc/diskstats``, partitions and virtual
    devices left out), or None where there is none."""
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return None
    total = 0
    for line in lines:
        f = line.split()
        name = f[2]
        if Path(f"/sys/block/{name}/device").exists():  # a whole disk, not a partition, loop or ram device
            total += int(f[5])  # 512-byte sectors read
    return total * 512 / 2**20
