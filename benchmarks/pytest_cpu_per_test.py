"""A pytest plugin that records the CPU time of the whole machine during each test (Linux ``/proc/stat``), so
that a test's cost includes the processes it starts: study workers, forkservers, Ray workers, browsers.

The suite is CPU-bound on 2 cores, so its wall time under ``-n auto`` is about its total CPU / 2; this shows
where that CPU goes. Run the suite serially on an otherwise idle machine (in parallel, the other worker's
CPU would be counted too) and summarise::

    PYTHONPATH=benchmarks python -m pytest -n 0 -p pytest_cpu_per_test -p no:cacheprovider
    python benchmarks/pytest_cpu_per_test.py /tmp/labelsmooth-cpu-per-test.jsonl   # top modules and tests

Each line of the output file (``LABELSMOOTH_CPU_LOG``, default ``/tmp/labelsmooth-cpu-per-test.jsonl``) is
``[nodeid, wall seconds, machine CPU seconds, seconds the CPUs sat waiting on the disk, MiB read from the
disk]``; setup and teardown count with their test. The last two show a test that pays for reading files
(libraries, a browser) that the machine's page cache no longer holds.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time

from _machine import busy_seconds, disk_read_mib, io_wait_seconds

if busy_seconds() is None:
    raise RuntimeError("pytest_cpu_per_test reads /proc/stat (Linux)")

_LOG = os.environ.get("LABELSMOOTH_CPU_LOG", "/tmp/labelsmooth-cpu-per-test.jsonl")
_started: dict[str, tuple[float, float]] = {}
_out = None


def _now() -> tuple[float, float, float, float]:
    return time.perf_counter(), busy_seconds(), io_wait_seconds() or 0.0, disk_read_mib() or 0.0


def pytest_runtest_logstart(nodeid, location):
    _started[nodeid] = _now()


def pytest_runtest_logfinish(nodeid, location):
    global _out
    if _out is None:
        _out = open(_LOG, "w", encoding="utf-8")
    now = _now()
    _out.write(json.dumps([nodeid, *(round(b - a, 3) for a, b in zip(_started.pop(nodeid), now))]) + "\n")
    _out.flush()


def summarise(path: str, top: int = 25) -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    rows = [r + [0.0] * (5 - len(r)) for r in rows]  # logs of the older, 3-column form
    totals = [sum(r[i] for r in rows) for i in range(1, 5)]
    print(
        f"{len(rows)} tests: wall {totals[0]:.0f} s, machine CPU {totals[1]:.0f} s, "
        f"waiting on the disk {totals[2]:.0f} s, {totals[3]:.0f} MiB read"
    )
    modules: dict[str, list[float]] = collections.defaultdict(lambda: [0.0] * 4)
    for nodeid, *values in rows:
        m = modules[nodeid.split("::")[0]]
        for i, v in enumerate(values):
            m[i] += v
    header = " CPU s  wall s  iowait s  MiB read"
    print(f"\n{header}  module")
    for name, (wall, cpu, iow, mib) in sorted(modules.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"{cpu:6.1f} {wall:7.1f} {iow:9.1f} {mib:9.0f}  {name}")
    print(f"\n{header}  test")
    for nodeid, wall, cpu, iow, mib in sorted(rows, key=lambda r: -r[2])[:top]:
        print(f"{cpu:6.1f} {wall:7.1f} {iow:9.1f} {mib:9.0f}  {nodeid}")


if __name__ == "__main__":
    summarise(sys.argv[1] if len(sys.argv) > 1 else _LOG)
