"""A pytest plugin that records the CPU time of the whole machine during each test (Linux ``/proc/stat``), so
that a test's cost includes the processes it starts: study workers, forkservers, Ray workers, browsers.

The suite is CPU-bound on 2 cores, so its wall time under ``-n auto`` is about its total CPU / 2; this shows
where that CPU goes. Run the suite serially on an otherwise idle machine (in parallel, the other worker's
CPU would be counted too) and summarise::

    PYTHONPATH=benchmarks python -m pytest -n 0 -p pytest_cpu_per_test -p no:cacheprovider
    python benchmarks/pytest_cpu_per_test.py /tmp/labelsmooth-cpu-per-test.jsonl   # top modules and tests

Each line of the output file (``LABELSMOOTH_CPU_LOG``, default ``/tmp/labelsmooth-cpu-per-test.jsonl``) is
``[nodeid, wall seconds, machine CPU seconds]``; setup and teardown count with their test.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time

from _machine import busy_seconds

if busy_seconds() is None:
    raise RuntimeError("pytest_cpu_per_test reads /proc/stat (Linux)")

_LOG = os.environ.get("LABELSMOOTH_CPU_LOG", "/tmp/labelsmooth-cpu-per-test.jsonl")
_started: dict[str, tuple[float, float]] = {}
_out = None


def pytest_runtest_logstart(nodeid, location):
    _started[nodeid] = (time.perf_counter(), busy_seconds())


def pytest_runtest_logfinish(nodeid, location):
    global _out
    if _out is None:
        _out = open(_LOG, "w", encoding="utf-8")
    t, b = _started.pop(nodeid)
    _out.write(json.dumps([nodeid, time.perf_counter() - t, busy_seconds() - b]) + "\n")
    _out.flush()


def summarise(path: str, top: int = 25) -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    print(f"{len(rows)} tests: wall {sum(r[1] for r in rows):.0f} s, machine CPU {sum(r[2] for r in rows):.0f} s")
    modules: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for nodeid, wall, cpu in rows:
        m = modules[nodeid.split("::")[0]]
        m[0] += wall
        m[1] += cpu
    print("\nCPU s  wall s  module")
    for name, (wall, cpu) in sorted(modules.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"{cpu:6.1f} {wall:6.1f}  {name}")
    print("\nCPU s  wall s  test")
    for nodeid, wall, cpu in sorted(rows, key=lambda r: -r[2])[:top]:
        print(f"{cpu:6.1f} {wall:6.1f}  {nodeid}")


if __name__ == "__main__":
    summarise(sys.argv[1] if len(sys.argv) > 1 else _LOG)
