"""The machine's CPU time, for benchmarks whose work runs in processes they do not wait for (forkserver
workers, Ray workers, browsers), which ``getrusage`` of the children misses."""

from __future__ import annotations

import functools
import os
from pathlib import Path


def _cpu_ticks() -> list[int] | None:
    """The first line of ``/proc/stat`` (user, nice, system, idle, iowait, irq, softirq), or None."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux ``/proc/stat``: user to softirq; not
    idle, iowait or steal, the host's), or None where there is no ``/proc/stat``."""
    t = _cpu_ticks()
    return None if t is None else (sum(t) - t[3] - t[4]) / os.sysconf("SC_CLK_TCK")


def io_wait_seconds() -> float | None:
    """Seconds the machine's CPUs have sat idle waiting for the disk since boot (``/proc/stat``'s iowait),
    or None where there is no ``/proc/stat``."""
    t = _cpu_ticks()
    return None if t is None else t[4] / os.sysconf("SC_CLK_TCK")


@functools.cache
def _is_whole_disk(name: str) -> bool:
    """A whole disk, not a partition, loop or ram device (asked once per name, not at every reading)."""
    return Path(f"/sys/block/{name}/device").exists()


def disk_read_mib() -> float | None:
    """MiB read from the machine's whole disks since boot (``/proc/diskstats``, partitions and virtual
    devices left out), or None where there is none."""
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return None
    sectors = sum(int(f[5]) for f in map(str.split, lines) if _is_whole_disk(f[2]))  # 512-byte sectors read
    return sectors * 512 / 2**20
